"""The skeleton file of a folder (`annotations.pkl` or the reference's `whole_annotations.pkl`) ->
validated poses, one clip at a time.

A pickle is whatever its writer put in it, so every field is checked before it is used: a problem
of the whole file is a `UserDataError` naming the file; a problem of one annotation names its clip
too (and is the caller's to raise or skip, see problems.py).

What is refused, and why rather than repaired:
- keypoint scores outside [0, 1]: both detectors we read (YOLOv8-pose, BlazePose) give
  confidences in [0, 1]; anything else is another scale (percentages, logits), under which the
  missing-joint threshold (skeleton.MIN_SCORE) would mean nothing. Clipping would hide that.
- a confident joint more than one image width or height beyond the image's edges: detectors place
  a joint a little outside the frame (a foot leaving the picture), never that far; such values
  mean a wrong `img_shape` or coordinates in other units. Clamping them to the border or marking
  them missing would feed the model a gait that was never walked.

Security: the pkl files are pickles, and loading a pickle runs code. Only read files from a
trusted source.
"""

from __future__ import annotations

import os
import pickle
import reprlib
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base import preprocess
from asd_jax.base.errors import UserDataError
from asd_jax.base.labels import REFERENCE_LABELS
from asd_jax.base.skeleton import JOINT_NAMES, NUM_JOINTS

ANNOTATIONS, REFERENCE_ANNOTATIONS = "annotations.pkl", "whole_annotations.pkl"
SKELETON_FILES = (ANNOTATIONS, REFERENCE_ANNOTATIONS)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
REQUIRED_FIELDS = ("keypoint", "keypoint_score", "img_shape")


def load_pickle(path: Path) -> Any:
    if not path.exists():
        raise UserDataError(path, "file not found")
    try:  # from memory, not the file: a corrupt length field then reads as truncated instead of allocating what it claims
        return pickle.loads(path.read_bytes())  # noqa: S301 - documented: annotations must come from a trusted source
    except Exception as err:  # a corrupt pickle can raise almost anything
        raise UserDataError(path, f"cannot be read as a pickle ({type(err).__name__}: {err})") from None


def load_annotations(path: Path) -> list[Any]:
    """The pkl's list of skeleton annotations (pyskl: a dict with 'annotations', or a bare list)."""
    data = load_pickle(path)
    annotations = data.get("annotations") if isinstance(data, dict) else data
    if not isinstance(annotations, list):
        raise UserDataError(path, "expected a dict with an 'annotations' list (pyskl format)")
    return annotations


def skeleton_file(folder: Path) -> Path:
    """The folder's annotations.pkl or whole_annotations.pkl (exactly one of them)."""
    present = [folder / name for name in SKELETON_FILES if (folder / name).exists()]
    if len(present) > 1:
        raise UserDataError(folder, f"holds both {ANNOTATIONS} and {REFERENCE_ANNOTATIONS}; keep one of them")
    if not present:
        raise UserDataError(folder / ANNOTATIONS, f"file not found (nor the reference's {REFERENCE_ANNOTATIONS})")
    return present[0]


def strip_video_suffix(name: str) -> str:
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in VIDEO_SUFFIXES else name


def clip_id_of(ann: Any, index: int, path: Path) -> str:
    """The clip id of annotation `index`: the basename of its `frame_dir` (for the reference's
    file, whose frame_dir is a video's path, without the video suffix)."""
    frame_dir = ann.get("frame_dir") if isinstance(ann, dict) else None
    name = Path(frame_dir).name if isinstance(frame_dir, (str, os.PathLike)) else ""
    clip_id = strip_video_suffix(name) if path.name == REFERENCE_ANNOTATIONS else name
    if not clip_id:
        problem = "is not a dict with a 'frame_dir' (a path whose last part names the clip)"
        raise UserDataError(path, f"annotation #{index} {problem}", kind=f"an annotation {problem}")
    return clip_id


def reference_diagnosis(label: Any, clip_id: str, path: Path) -> str:
    """The diagnosis of a whole_annotations.pkl `label` (labels.REFERENCE_LABELS), label 2 refined
    to LCS or HipOA by the clip's name."""
    try:
        index = int(label) if float(label) == int(label) else -1
    except (TypeError, ValueError, OverflowError):
        index = -1
    if not 0 <= index < len(REFERENCE_LABELS):
        known = f"0..{len(REFERENCE_LABELS) - 1} ({', '.join(REFERENCE_LABELS)})"
        raise UserDataError(path, f"label {reprlib.repr(label)} is not one of {known}", clip_id, kind="label outside 0-3")
    diagnosis = REFERENCE_LABELS[index]
    words = set(clip_id.split("_"))
    if diagnosis == "LCS_HipOA" and len(words & {"LCS", "HipOA"}) == 1:
        return (words & {"LCS", "HipOA"}).pop()
    return diagnosis


def _numbers(ann: dict[str, Any], field: str, path: Path, clip_id: str) -> np.ndarray:
    """`ann[field]` as a float64 array, or an error saying it is not an array of real numbers."""
    kind = f"{field} is not an array of numbers"
    try:
        array = np.asarray(ann[field])
    except (ValueError, TypeError, OverflowError):  # ragged nested lists, integers beyond int64
        raise UserDataError(path, f"{field} is not a rectangular array of numbers", clip_id, kind=kind) from None
    if array.dtype.kind not in "iuf":
        problem = f"{field} is not an array of numbers (got {type(ann[field]).__name__} of dtype {array.dtype})"
        raise UserDataError(path, problem, clip_id, kind=kind)
    return array.astype(np.float64)


def _image_size(ann: dict[str, Any], path: Path, clip_id: str) -> tuple[float, float]:
    """(height, width) of `img_shape`, positive and finite."""
    try:
        shape = _numbers(ann, "img_shape", path, clip_id)
    except UserDataError:
        shape = np.zeros(0)
    if shape.ndim != 1 or shape.size < 2 or not (np.isfinite(shape[:2]).all() and (shape[:2] > 0).all()):
        problem = f"img_shape must be (height, width) in pixels, got {reprlib.repr(ann['img_shape'])}"
        raise UserDataError(path, problem, clip_id, kind="img_shape is not (height, width)")
    return float(shape[0]), float(shape[1])


def _check_inside_image(pose: np.ndarray, height: float, width: float, path: Path, clip_id: str) -> None:
    """Refuses confident joints more than one image size beyond the image (module docstring)."""
    longer = max(height, width)
    extent = np.array([width, height]) / longer  # the image in stored units (over the longer side)
    xy = pose[..., :2].astype(np.float64)
    far = (pose[..., 2:] > 0) & ((xy < -extent) | (xy > 2 * extent) | ~np.isfinite(xy))
    if far.any():
        frame, joint, axis = np.argwhere(far)[0]
        value = xy[frame, joint, axis] * longer
        problem = (
            f"{JOINT_NAMES[joint]} at frame {frame} has {'xy'[axis]} = {value:.4g} px, far outside the image "
            f"({width:g} x {height:g}; {int(far.any(-1).sum())} joint(s) in all): check img_shape (height, width) "
            "and that keypoints are pixels or 0-1 per axis"
        )
        raise UserDataError(path, problem, clip_id, kind="keypoints far outside the image")


def pose_from_annotation(ann: dict[str, Any], path: Path, clip_id: str) -> np.ndarray:
    """[T, 17, 3] pose of the most confident person (preprocess.stored_pose), after validation."""
    for key in REQUIRED_FIELDS:
        if key not in ann:
            raise UserDataError(path, f"annotation has no {key!r}", clip_id)
    keypoint, score = _numbers(ann, "keypoint", path, clip_id), _numbers(ann, "keypoint_score", path, clip_id)
    if keypoint.ndim == 3:  # a single person without the M axis
        keypoint, score = keypoint[None], score[None]
    if keypoint.ndim != 4 or keypoint.shape[-1] != 2:
        problem = f"keypoint must be [M, T, 17, 2], got shape {keypoint.shape}"
        raise UserDataError(path, problem, clip_id, kind="keypoint is not [M, T, 17, 2]")
    if keypoint.shape[2] != NUM_JOINTS:
        raise UserDataError(path, f"expected {NUM_JOINTS} COCO joints, got {keypoint.shape[2]}", clip_id, kind="not 17 COCO joints")
    if score.shape != keypoint.shape[:-1]:
        problem = f"keypoint_score shape {score.shape} does not match keypoint {keypoint.shape}"
        raise UserDataError(path, problem, clip_id, kind="keypoint_score does not match keypoint")
    if keypoint.shape[0] == 0:
        raise UserDataError(path, "no person (keypoint holds 0 persons)", clip_id)
    if keypoint.shape[1] == 0:
        raise UserDataError(path, "empty clip (0 frames)", clip_id)
    if not (np.isfinite(keypoint).all() and np.isfinite(score).all()):
        raise UserDataError(path, "NaN or infinite keypoint coordinates or scores", clip_id)
    if score.min() < 0 or score.max() > 1:
        hint = " (percentages? divide them by 100)" if score.max() <= 100 and score.min() >= 0 else ""
        problem = f"keypoint_score must be detector confidences in [0, 1], got {score.min():.4g} to {score.max():.4g}{hint}"
        raise UserDataError(path, problem, clip_id, kind="keypoint_score outside [0, 1]")
    height, width = _image_size(ann, path, clip_id)
    with np.errstate(over="ignore"):  # beyond float32 is far outside any image, reported next
        pose = preprocess.stored_pose(keypoint, score, (height, width))
    _check_inside_image(pose, height, width, path, clip_id)
    return pose
