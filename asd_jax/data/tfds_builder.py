"""The TFDS builder of `asd_gait`: walking clips as array_record files, readable without TensorFlow.

Configs:
- `synthetic`: the built-in synthetic cohort (asd_jax.data.synthetic) with its default parameters;
  other parameters get their own config name (`synthetic_<hash>`), so cohorts never collide.
- `files`: a user's folder (annotations.pkl, clips.csv, doctor*.csv, or the reference's files) given as the manual dir.

It lives in the library so that an installed asd_jax needs nothing outside it;
`datasets/asd_gait/` exposes it where the `tfds` command-line tool looks:

  tfds build datasets/asd_gait --config synthetic
  tfds build datasets/asd_gait --config files --manual_dir /path/to/folder
"""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS
from asd_jax.data import synthetic
from asd_jax.data.problems import Problems
from asd_jax.data.user_folder import read_user_folder

SKIPPED = "skipped"  # metadata key: the clips and rows data.on_error=skip left out (problems.Problems.skipped)
MANUAL_DOWNLOAD_INSTRUCTIONS = """
Put your folder (annotations.pkl, clips.csv and optional doctor*.csv, or the reference's
whole_annotations.pkl and doctor CSVs; see the project README) in the manual dir, or pass
--manual_dir=/path/to/folder.
"""


@dataclasses.dataclass
class BuilderConfig(tfds.core.BuilderConfig):
    """`source` is 'synthetic' or 'files'; `cohort` holds non-default synthetic parameters;
    `on_error` is what a malformed clip of a folder does (problems.py)."""

    source: str = "synthetic"
    cohort: tuple[tuple[str, Any], ...] = ()
    default_prior: str = "uniform"
    on_error: str = "raise"


class Builder(tfds.core.GeneratorBasedBuilder):
    """One record per clip: ids, diagnosis, pose [T, 17, 3], clinical prior [5], fps; the clips
    `on_error='skip'` left out are listed in the metadata under SKIPPED."""

    name = "asd_gait"  # fixed, so built datasets keep their place whichever module defines the class

    # Bump with every change of the synthetic generator, so a stale cohort is never reused.
    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release.",
        "1.1.0": "Synthetic walks: 60 % stance phase; raters mark what they see.",
        "1.2.0": "Synthetic walks: the camera pans with walks longer than the frame.",
        "2.0.0": "Synthetic cohort recalibrated: raters mark the visible signs of each walk, never the diagnosis; "
        "signatures and severities from the clinical literature.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = [
        BuilderConfig(name="synthetic", description="Built-in synthetic cohort (default parameters).", source="synthetic"),
        BuilderConfig(name="files", description="A user's folder in the reference's formats.", source="files"),
    ]
    DEFAULT_CONFIG_NAME = "synthetic"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("file_format", "array_record")
        super().__init__(*args, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "clip_id": tfds.features.Text(),
                    "patient_id": tfds.features.Text(),
                    "diagnosis": tfds.features.Text(),
                    "pose": tfds.features.Tensor(shape=(None, NUM_JOINTS, 3), dtype=np.float32),
                    "prior": tfds.features.Tensor(shape=(NUM_REGIONS,), dtype=np.float32),
                    "fps": tfds.features.Scalar(dtype=np.float32),
                }
            ),
            homepage="https://github.com/ChenKaiXuSan/ClinicalGait-CrossAttention_ASD_PyTorch",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        if self.builder_config.source == "files":
            return {"clips": self._generate_examples(dl_manager.manual_dir)}
        folder = tempfile.mkdtemp(prefix="asd_gait_synthetic_")
        params = synthetic.CohortParams(**dict(self.builder_config.cohort))
        synthetic.generate_cohort(folder, params)
        return {"clips": self._generate_examples(folder)}

    def _generate_examples(self, folder):
        problems = Problems(self.builder_config.on_error)
        records = list(read_user_folder(folder, default_prior_spec=self.builder_config.default_prior, problems=problems))
        self.info.metadata[SKIPPED] = problems.skipped  # saved with the dataset, once every record is written
        for record in records:
            yield record["clip_id"], record
