"""The deployable predictor: one clip's detector keypoints -> class probabilities, and clips -> a
patient, with the preprocessing and aggregation of asd_jax.base.preprocess and the exported
weights run by the PyTorch twin or by onnxruntime.

`--mode=export` writes this module, with the modules it needs, into `export/asd_predictor.py`
(numpy only; torch or onnxruntime are imported by the backend chosen) and the twins into
`export/asd_twins.py` (torch and numpy): neither needs JAX or this repository. Their contract:

    predictor = Predictor(folder)                    # the export folder: config.json + model.pt / model.onnx
    clip = predictor.predict(keypoints, scores, fps, prior=None, img_shape=None)
    clip.probabilities, clip.prediction               # [classes] float64, the most probable class name
    predictor.patient([clip, ...])                    # a patient: the mean of their clips' probabilities
    Ensemble([folder, ...])                            # several exports (e.g. one per training seed) as one
                                                       # predictor: a clip's probabilities are their mean

- keypoints [T, 17, 2] (or [M, T, 17, 2]: the most confident person is used), COCO-17 order,
  in pixels or 0-1 per image axis; scores [T, 17] (or [M, T, 17]) in [0, 1]; a joint scoring
  below MIN_SCORE (0.3) counts as missing. img_shape (height, width) is needed for 0-1
  coordinates (it restores the aspect ratio); pixel coordinates may omit it.
- fps: the clip's frame rate; it is resampled to the model's.
- prior: None (the run's default prior for unannotated clips), a vector over REGION_NAMES, or a
  list of region names (each gets an equal share), as one rater's doctor*.csv row gives them.
- A model that reads the clinical gait features (`model.gait_features`) gets them measured here
  from the whole clip (asd_jax/base/gait.py, bundled: numpy and scipy), as in training.

This is `--mode=predict`'s arithmetic, window for window: the same clips give the same
probabilities (to float32 rounding of the two runtimes).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.gait import clinical_features
from asd_jax.base.preprocess import clip_probabilities, clip_windows, mean_probabilities, merge_class_logits, stored_pose
from asd_jax.base.skeleton import NUM_JOINTS, NUM_REGIONS, REGION_NAMES, default_prior

BACKENDS = ("torch", "onnx")


@dataclasses.dataclass(frozen=True)
class ClipPrediction:
    """One clip's result: class probabilities (softmax of the mean window logits, merged into the
    reported classes when the model was trained on finer ones; for an Ensemble, the mean of its
    members' probabilities, each member's result in `members`)."""

    class_names: tuple[str, ...]
    probabilities: np.ndarray
    window_logits: np.ndarray | None  # None for an Ensemble's clip: its members cut their own windows
    members: tuple[ClipPrediction, ...] = ()

    @property
    def prediction(self) -> str:
        return self.class_names[int(np.argmax(self.probabilities))]

    def as_dict(self) -> dict[str, Any]:
        return {"prediction": self.prediction, "probabilities": dict(zip(self.class_names, self.probabilities.tolist()))}


def prior_vector(prior: Any, fallback: np.ndarray) -> np.ndarray:
    """[5] float32 summing to 1 from None, a vector over REGION_NAMES, or region names."""
    if prior is None:
        vector = np.asarray(fallback, np.float64)
    elif len(prior) and all(isinstance(p, str) for p in prior):
        unknown = [p for p in prior if p not in REGION_NAMES]
        if unknown:
            raise ValueError(f"unknown region(s) {unknown}; expected {list(REGION_NAMES)}")
        vector = np.array([sum(p == name for p in prior) for name in REGION_NAMES], np.float64)
    else:
        vector = np.asarray(prior, np.float64).reshape(-1)
        if vector.shape != (NUM_REGIONS,) or not np.isfinite(vector).all() or (vector < 0).any() or vector.sum() <= 0:
            raise ValueError(f"prior must be {NUM_REGIONS} non-negative numbers over {list(REGION_NAMES)}, got {prior!r}")
    return (vector / vector.sum()).astype(np.float32)


class Predictor:
    """An exported model with its preprocessing; `backend` 'torch' (the twin and model.pt) or
    'onnx' (model.onnx under onnxruntime, no torch needed)."""

    def __init__(self, folder: str | Path = ".", backend: str = "torch"):
        folder = Path(folder)
        manifest = json.loads((folder / "config.json").read_text())
        self.class_names: tuple[str, ...] = tuple(manifest["class_names"])
        self.class_groups: tuple[int, ...] = tuple(manifest.get("class_groups", ()))  # bundles before it: none
        self.preprocessing: dict[str, Any] = manifest["preprocessing"]
        self.default_prior = default_prior(self.preprocessing["default_prior"])
        self.reads_gait_features = bool(manifest["model"].get("gait_features", 0))
        if backend == "torch":
            self._logits = self._torch_model(folder, manifest)
        elif backend == "onnx":
            self._logits = self._onnx_model(folder)
        else:
            raise ValueError(f"backend={backend!r}: expected one of {BACKENDS}")

    def _torch_model(self, folder: Path, manifest: dict[str, Any]):
        import torch

        from asd_jax.pytorch.twins import build_twin

        model = build_twin(manifest["model"], len(self.class_groups) or len(self.class_names))
        model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))

        def logits(pose: np.ndarray, prior: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
            extra = () if features is None else (torch.from_numpy(features),)
            with torch.no_grad():
                return model(torch.from_numpy(pose), torch.from_numpy(prior), *extra).numpy()

        return logits

    def _onnx_model(self, folder: Path):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])

        def logits(pose: np.ndarray, prior: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
            inputs = {"pose": pose, "prior": prior} | ({} if features is None else {"features": features})
            return session.run(["logits"], inputs)[0]

        return logits

    def windows(self, keypoints: np.ndarray, scores: np.ndarray, fps: float, img_shape: Sequence[float] | None = None) -> np.ndarray:
        """[W, window, 17, 3] the clip's normalised evaluation windows, as the model sees them."""
        pre = self.preprocessing
        return clip_windows(
            self._stored(keypoints, scores, fps, img_shape), float(fps), target_fps=pre["fps"], window=pre["window"],
            stride=pre["eval_stride"], test_flip=pre["test_flip"],
            pad=pre.get("pad", "edge"),  # bundles exported before data.pad existed padded by repeating the last frame
        )

    @staticmethod
    def _stored(keypoints: np.ndarray, scores: np.ndarray, fps: float, img_shape: Sequence[float] | None) -> np.ndarray:
        """The clip as the project stores it (preprocess.stored_pose), after checking its shapes."""
        keypoints, scores = np.asarray(keypoints, np.float32), np.asarray(scores, np.float32)
        if keypoints.shape[-2:] != (NUM_JOINTS, 2) or keypoints.shape[:-1] != scores.shape or keypoints.ndim not in (3, 4):
            raise ValueError(
                f"keypoints must be [T, {NUM_JOINTS}, 2] and scores [T, {NUM_JOINTS}], got {keypoints.shape} and {scores.shape}"
            )
        if keypoints.shape[-3] == 0 or not (np.isfinite(keypoints).all() and np.isfinite(scores).all()):
            raise ValueError("keypoints and scores must be finite, with at least one frame")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps!r}")
        return stored_pose(keypoints, scores, img_shape)

    def gait_features(
        self, keypoints: np.ndarray, scores: np.ndarray, fps: float, img_shape: Sequence[float] | None = None
    ) -> np.ndarray | None:
        """[F] float32 the clip's clinical gait features (NaN where a measure has no data), or None
        for a model that does not read them."""
        if not self.reads_gait_features:
            return None
        return clinical_features(self._stored(keypoints, scores, fps, img_shape), float(fps))

    def predict(
        self, keypoints: np.ndarray, scores: np.ndarray, fps: float, prior: Any = None, img_shape: Sequence[float] | None = None
    ) -> ClipPrediction:
        """One clip: every evaluation window scored once, mean logits -> softmax."""
        windows = self.windows(keypoints, scores, fps, img_shape)
        priors = np.repeat(prior_vector(prior, self.default_prior)[None], len(windows), axis=0)
        features = self.gait_features(keypoints, scores, fps, img_shape)
        per_window = None if features is None else np.repeat(features[None], len(windows), axis=0)
        logits = np.concatenate([
            self._logits(windows[i : i + 64], priors[i : i + 64], None if per_window is None else per_window[i : i + 64])
            for i in range(0, len(windows), 64)
        ])
        logits = merge_class_logits(logits, self.class_groups)
        return ClipPrediction(self.class_names, clip_probabilities(logits), logits)

    def patient(self, clips: Sequence[ClipPrediction]) -> np.ndarray:
        """A patient's class probabilities: the mean of their clips' probabilities."""
        return mean_probabilities(np.stack([clip.probabilities for clip in clips]))


class Ensemble:
    """Several exported runs of one task (e.g. the same config trained with several seeds) as one
    predictor with Predictor's `predict`, `patient` and `class_names`: a clip's probabilities are the equal-weight mean of the
    members' clip probabilities, a patient's the mean of those over their clips, the fusion of
    `python -m asd_jax.modes.ensemble`. The members may be different models; they must report the
    same classes. The bundle this class is imported from runs every member."""

    def __init__(self, folders: Sequence[str | Path], backend: str = "torch"):
        if len(folders) < 2:
            raise ValueError(f"an ensemble needs at least two export folders, got {len(folders)}")
        self.members = [Predictor(folder, backend) for folder in folders]
        self.class_names = self.members[0].class_names
        for folder, member in zip(folders, self.members):
            if member.class_names != self.class_names:
                raise ValueError(f"{folder}: reports classes {list(member.class_names)}, {folders[0]} {list(self.class_names)}")

    def predict(
        self, keypoints: np.ndarray, scores: np.ndarray, fps: float, prior: Any = None, img_shape: Sequence[float] | None = None
    ) -> ClipPrediction:
        """One clip scored by every member (each with its own windows, prior default and features)."""
        results = tuple(member.predict(keypoints, scores, fps, prior, img_shape) for member in self.members)
        probabilities = mean_probabilities(np.stack([result.probabilities for result in results]))
        return ClipPrediction(self.class_names, probabilities, None, results)

    patient = Predictor.patient  # a patient: the mean of their clips' fused probabilities


_DEFAULT: dict[str, Predictor] = {}


def predict(
    keypoints: np.ndarray, scores: np.ndarray, fps: float, prior: Any = None, img_shape: Sequence[float] | None = None
) -> ClipPrediction:
    """`Predictor(<the folder this file lies in>).predict(...)`: the entry point of an export folder."""
    if "torch" not in _DEFAULT:
        _DEFAULT["torch"] = Predictor(Path(__file__).resolve().parent)
    return _DEFAULT["torch"].predict(keypoints, scores, fps, prior, img_shape)
