"""One clip's explanation, as `--mode=explain` and `--mode=predict` draw it: occlusion attributions
over regions and time, integrated gradients over joints and frames (asd_jax/evaluation/attribution.py),
computed per evaluation window and laid back onto the clip's frames; for a model that also reads
the clip's gait features, their occlusion by region and how much each stream carries.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from asd_jax.base import preprocess
from asd_jax.base.gait import CLINICAL_FEATURE_NAMES, region_feature_groups
from asd_jax.base.skeleton import NUM_JOINTS, REGIONS
from asd_jax.evaluation import attribution


def joint_weights(region_by_frame: np.ndarray) -> np.ndarray:
    """[R, frames] -> [frames, 17]: each joint takes its region's value (0 outside regions)."""
    weights = np.zeros((region_by_frame.shape[1], NUM_JOINTS))
    for r, joints in enumerate(REGIONS.values()):
        weights[:, list(joints)] = region_by_frame[r][:, None]
    return weights


@dataclasses.dataclass
class ClipExplanation:
    """A clip's attributions for the class the model predicts for it."""

    target: int  # the predicted class (mean logits over the clip's windows)
    region_time: np.ndarray  # [regions, frames] occlusion: drop in log p(target) when hidden
    joint_frame: np.ndarray | None  # [frames, joints] integrated gradients (when asked for)
    completeness_gap: float  # |sum of IG - (f(input) - f(baseline))|, averaged over windows
    feature_groups: np.ndarray | None = None  # [FEATURE_GROUPS] gait-feature occlusion (models that read them)
    streams: np.ndarray | None = None  # [attribution.STREAMS] the whole pose, every gait feature hidden
    stream_probs: np.ndarray | None = None  # [attribution.STREAMS, classes] each stream's own diagnosis ('sum' models)

    @property
    def region(self) -> np.ndarray:
        """[regions] mean occlusion attribution over the clip."""
        return self.region_time.mean(-1)


FEATURE_GROUPS = tuple(region_feature_groups())  # the rater regions' gait features, and the knees'


def feature_group_masks() -> np.ndarray:
    """[FEATURE_GROUPS, CLINICAL_FEATURE_NAMES] true for each group's columns."""
    masks = np.zeros((len(FEATURE_GROUPS), len(CLINICAL_FEATURE_NAMES)), bool)
    for g, columns in enumerate(region_feature_groups().values()):
        masks[g, columns] = True
    return masks


def windows_to_frames(values: np.ndarray, starts: np.ndarray, num_frames: int, window: int) -> np.ndarray:
    """[W, ..., window] per-window values -> [..., frames], overlaps averaged."""
    total = np.zeros((*values.shape[1:-1], max(num_frames, window)))
    count = np.zeros(total.shape[-1])
    for value, start in zip(values, starts, strict=True):
        total[..., start : start + window] += value
        count[start : start + window] += 1
    return (total / np.maximum(count, 1))[..., :num_frames]


def bins_to_frames(values: np.ndarray, window: int) -> np.ndarray:
    """[..., bins] -> [..., window]: each frame takes the value of the occlusion bin it lies in
    (the bins of attribution.occlusion_masks)."""
    edges = np.linspace(0, window, values.shape[-1] + 1).round().astype(int)
    return values[..., np.searchsorted(edges[1:], np.arange(window), side="right")]


def clip_windows(pose: np.ndarray, fps: float, data) -> tuple[np.ndarray, np.ndarray]:
    """(windows [W, window, 17, 3], their starts) of a stored clip, unmirrored, as evaluation cuts them."""
    pose = preprocess.resample_fps(np.asarray(pose, np.float32), float(fps), data.fps)
    starts = preprocess.eval_window_starts(pose.shape[0], data.window, data.eval_stride)
    return np.stack([preprocess.eval_window(pose, s, data.window, False, data.pad) for s in starts]), starts


def explain_clip(
    apply, pose: np.ndarray, fps: float, prior: np.ndarray, data, *, features: np.ndarray | None = None, bins: int = 8,
    integrated: bool = False, target: int | None = None, streams_apply=None,
) -> ClipExplanation:
    """Attributions of one stored clip (pose [T, 17, 3] at `fps`, and its gait features [F] for a
    model that reads them) for its predicted class (or `target`), over the windows evaluation cuts
    (`data`: the run's config.data); with `streams_apply` (attribution.stream_apply) also each
    stream's own diagnosis of the clip."""
    windows, starts = clip_windows(pose, fps, data)
    frames = preprocess.resampled_length(len(pose), float(fps), data.fps)
    priors, gait = window_inputs(prior, features, len(windows))
    if target is None:
        target = int(np.argmax(in_chunks(apply, windows, priors, gait).mean(0)))
    targets = np.full(len(windows), target, np.int32)
    occluded = in_chunks(functools.partial(attribution.occlusion, apply, bins=bins), windows, priors, gait, targets)  # [W, R, bins]
    region_time = windows_to_frames(bins_to_frames(occluded, data.window), starts, frames, data.window)
    joint_frame, gap = None, float("nan")
    if integrated:
        ig, delta = in_chunks(functools.partial(attribution.integrated_gradients, apply), windows, priors, gait, targets)
        joint_frame = windows_to_frames(ig.transpose(0, 2, 1), starts, frames, data.window).T
        gap = float(np.abs(ig.sum((1, 2)) - delta).mean())
    groups, streams = feature_evidence(apply, windows, priors, gait, targets) if features is not None else (None, None)
    readings = None if streams_apply is None else stream_diagnoses(in_chunks(streams_apply, windows, priors, gait))
    return ClipExplanation(target, region_time, joint_frame, gap, groups, streams, readings)


def clip_stream_probs(streams_apply, pose: np.ndarray, fps: float, prior: np.ndarray, data, features: np.ndarray) -> np.ndarray:
    """[STREAMS, C]: each stream's own diagnosis of one stored clip, over the windows evaluation cuts."""
    windows, _ = clip_windows(pose, fps, data)
    priors, gait = window_inputs(prior, features, len(windows))
    return stream_diagnoses(in_chunks(streams_apply, windows, priors, gait))


def stream_diagnoses(window_stream_logits: np.ndarray) -> np.ndarray:
    """[W, STREAMS, C] -> [STREAMS, C]: each stream's probabilities for the clip, the softmax of its
    mean logits over the windows, as a clip's prediction is made (preprocess.clip_probabilities)."""
    return np.stack([preprocess.clip_probabilities(window_stream_logits[:, s]) for s in range(window_stream_logits.shape[1])])


def stream_reading_text(stream_probs: np.ndarray, class_names: tuple[str, ...]) -> str:
    """'pose alone: DHS 71%, gait features alone: LCS_HipOA 55%', for figure titles."""
    return ", ".join(
        f"{stream.replace('_', ' ')} alone: {class_names[int(p.argmax())]} {p.max():.0%}"
        for stream, p in zip(attribution.STREAMS, stream_probs, strict=True)
    )


def clip_evidence(
    apply, pose: np.ndarray, fps: float, prior: np.ndarray, target: int, data, *, features: np.ndarray | None = None, bins: int = 8
) -> dict[str, np.ndarray]:
    """One clip's attributions for `target`, averaged over its windows (window-relative time), the
    unit the cohort statistics and sanity checks compare: "regions" [regions, bins] and, with
    `features`, "feature_groups" [FEATURE_GROUPS] and "streams" [STREAMS]."""
    windows, _ = clip_windows(pose, fps, data)
    priors, gait = window_inputs(prior, features, len(windows))
    targets = np.full(len(windows), target, np.int32)
    evidence = {"regions": in_chunks(functools.partial(attribution.occlusion, apply, bins=bins), windows, priors, gait, targets).mean(0)}
    if features is not None:
        evidence["feature_groups"], evidence["streams"] = feature_evidence(apply, windows, priors, gait, targets)
    return evidence


def window_inputs(prior: np.ndarray, features: np.ndarray | None, num_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """A clip's prior and gait features (none: [W, 0]) repeated for each of its windows."""
    priors = np.repeat(np.asarray(prior, np.float32)[None], num_windows, axis=0)
    if features is None:
        return priors, attribution.no_features(num_windows)
    return priors, np.repeat(np.asarray(features, np.float32)[None], num_windows, axis=0)


def feature_evidence(
    apply, windows: np.ndarray, priors: np.ndarray, gait: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """([FEATURE_GROUPS], [STREAMS]) occlusions of a gait-feature model, averaged over the windows."""
    groups = functools.partial(attribution.feature_occlusion, apply, groups=feature_group_masks())
    return (in_chunks(groups, windows, priors, gait, targets).mean(0),
            in_chunks(functools.partial(attribution.stream_occlusion, apply), windows, priors, gait, targets).mean(0))


CHUNK = 8  # windows per jitted call: one compiled shape whatever a clip's length


def in_chunks(fn, *arrays: np.ndarray):
    """`fn(*arrays)` over fixed-size chunks of the leading axis (the last one padded by repeating
    its final row, then cut), so the jitted attributions compile once instead of once per clip
    length. Returns an array, or a tuple of arrays when `fn` returns a tuple."""
    outputs = []
    for start in range(0, len(arrays[0]), CHUNK):
        chunk = [a[start : start + CHUNK] for a in arrays]
        pad = CHUNK - len(chunk[0])
        padded = [np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) if pad else c for c in chunk]
        result = fn(*padded)
        parts = result if isinstance(result, tuple) else (result,)
        outputs.append([np.asarray(p)[: len(chunk[0])] for p in parts])
    joined = tuple(np.concatenate(column) for column in zip(*outputs))
    return joined if len(joined) > 1 else joined[0]
