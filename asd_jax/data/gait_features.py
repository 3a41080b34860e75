"""The clinical gait features (asd_jax/base/gait.py) of a table's clips, for the pipelines and
classifiers that read them again and again."""

from __future__ import annotations

import numpy as np

from asd_jax.base.gait import CLINICAL_FEATURE_NAMES, clinical_features
from asd_jax.base.progress import progress_bar


class FeatureCache:
    """Clinical features of a table's clips, computed once per clip on first use."""

    def __init__(self, source, table, target_fps: float):
        self.source, self.table, self.target_fps = source, table, target_fps
        self._by_row: dict[int, np.ndarray] = {}

    def matrix(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), len(CLINICAL_FEATURE_NAMES)] features of the table rows `rows`."""
        missing = [int(r) for r in rows if int(r) not in self._by_row]
        for row in progress_bar(missing, desc="gait features", leave=False, hidden=len(missing) < 50):
            record = self.source[int(self.table.record[row])]
            self._by_row[row] = clinical_features(record["pose"], float(record["fps"]), self.target_fps)
        return np.stack([self._by_row[int(r)] for r in rows]) if len(rows) else np.zeros((0, len(CLINICAL_FEATURE_NAMES)), np.float32)
