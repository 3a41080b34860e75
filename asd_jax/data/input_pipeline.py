"""grain input pipelines: infinite, class-balanced, augmented training batches and complete,
never-resampled evaluation batches.

Training is a function of the GLOBAL example position: position -> (epoch, slot) -> clip row ->
example, with randomness seeded by (seed, position). Each process reads only the positions of its
own slice of every global batch, so the sequence of global batches is the same for any number of
processes, and the grain iterator state (one integer) is all a resume needs.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import grain
import ml_collections
import numpy as np
from absl import flags

from asd_jax.base.errors import ConfigError
from asd_jax.base.gait import clinical_features
from asd_jax.base.skeleton import default_prior
from asd_jax.data import transforms
from asd_jax.data.splits import ClipTable

SAMPLING = ("over", "under", "none", "patient")
UNBOUNDED = 2**48  # positions of the infinite training stream


def local_batch_size(batch_size: int, process_count: int) -> int:
    if batch_size % process_count:
        raise ConfigError(f"batch size {batch_size} does not divide by the {process_count} processes")
    return batch_size // process_count


def epoch_rows(labels: np.ndarray, patients: np.ndarray, rows: np.ndarray, sampling: str, rng: np.random.Generator) -> np.ndarray:
    """One epoch of table rows, class-balanced by `sampling`, shuffled. 'patient' balances the
    patients of a class as well (each class as many rows as 'over' gives it, shared equally among
    its patients), so a patient filmed 50 times weighs no more than one filmed 10 times: the unit
    a diagnosis is scored on."""
    if sampling not in SAMPLING:
        raise ConfigError(f"data.sampling={sampling!r}: expected one of {SAMPLING}")
    if sampling == "none":
        return rng.permutation(rows)
    by_class = [rows[labels[rows] == c] for c in np.unique(labels[rows])]
    target = max(map(len, by_class)) if sampling in ("over", "patient") else min(map(len, by_class))
    if sampling == "patient":
        return rng.permutation(np.concatenate([patient_balanced(members, patients, target, rng) for members in by_class]))
    chosen = [
        np.concatenate([rng.permutation(members), rng.choice(members, target - len(members))])
        if target > len(members)
        else rng.permutation(members)[:target]
        for members in by_class
    ]
    return rng.permutation(np.concatenate(chosen))


def patient_balanced(members: np.ndarray, patients: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` rows of `members` (one class's rows), each patient drawn count // patients times
    (a random count % patients of them once more), every clip of a patient once before any twice."""
    ids = np.unique(patients[members])
    shares = np.full(len(ids), count // len(ids)) + np.isin(np.arange(len(ids)), rng.permutation(len(ids))[: count % len(ids)])
    drawn = []
    for patient, share in zip(ids, shares, strict=True):
        clips = members[patients[members] == patient]
        drawn.append(np.concatenate([rng.permutation(clips) for _ in range(-(-share // len(clips)))])[:share])
    return np.concatenate(drawn)


def checked_pad(data: ml_collections.ConfigDict) -> str:
    if data.pad not in transforms.PADS:
        raise ConfigError(f"data.pad={data.pad!r}: expected one of {transforms.PADS}")
    return data.pad


# Decoded clips kept per pipeline: a training run reads each clip tens of times (at 750 steps of 64,
# every clip of the default cohort ~40 times), and decoding and resampling it was a fifth of an
# example's cost. 2048 clips of 10 s at 30 fps are ~125 MB.
CLIP_CACHE_SIZE = 2048


def load_clip(source: Any, table: ClipTable, row: int, target_fps: float, gait_features: bool = False) -> dict[str, Any]:
    """A table row's pose at the target fps and its prior (and, with `gait_features`, the clinical
    gait features of the whole clip as recorded), read-only: what the cache hands out again must
    never be changed in place by a transform."""
    record = source[int(table.record[row])]
    pose = transforms.resample_fps(np.asarray(record["pose"], np.float32), float(record["fps"]), target_fps)
    clip = {"pose": pose, "prior": np.asarray(record["prior"], np.float32)}
    if gait_features:
        clip["features"] = clinical_features(record["pose"], float(record["fps"]))
    for value in clip.values():
        value.setflags(write=False)
    return clip


def cached_loader(source: Any, table: ClipTable, target_fps: float, gait_features: bool = False) -> Callable[[int], dict[str, Any]]:
    """row -> load_clip(...), each row decoded once while it stays among the CLIP_CACHE_SIZE most recent."""
    return functools.lru_cache(maxsize=CLIP_CACHE_SIZE)(lambda row: load_clip(source, table, row, target_fps, gait_features))


@dataclasses.dataclass(frozen=True, eq=False)
class TrainExamples:
    """Global position -> augmented training example (a pure function of seed and position)."""

    source: Any
    table: ClipTable
    rows: np.ndarray
    data: ml_collections.ConfigDict
    seed: int
    gait_features: bool = False  # examples also carry their clip's clinical gait features

    @functools.lru_cache(maxsize=CLIP_CACHE_SIZE)  # on the class, so the examples still pickle for worker processes
    def clip(self, row: int) -> dict[str, Any]:
        return load_clip(self.source, self.table, row, self.data.fps, self.gait_features)

    @functools.cached_property
    def epoch_length(self) -> int:
        return len(epoch_rows(self.table.train_label, self.table.patient_id, self.rows, self.data.sampling, np.random.default_rng(0)))

    @functools.lru_cache(maxsize=4)
    def epoch(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0, index])
        return epoch_rows(self.table.train_label, self.table.patient_id, self.rows, self.data.sampling, rng)

    @functools.cached_property
    def settings(self) -> dict[str, Any]:
        """data.augment and the data fields an example reads, as plain values: a ConfigDict lookup costs
        microseconds, and an example made a dozen."""
        return self.data.augment.to_dict() | {"window": self.data.window, "pad": self.data.pad, "default_prior": self.data.default_prior}

    def draw(self, position: int) -> dict[str, Any]:
        """What is random about one example, drawn in a fixed order from (seed, position): its clip
        row, its window (speed-jittered crop), whether it is mirrored, its rotation, scale, kept
        joints and prior."""
        position = int(position)
        row = int(self.epoch(position // self.epoch_length)[position % self.epoch_length])
        rng = np.random.default_rng([self.seed, 1, position])
        aug = self.settings
        window = aug["window"]
        clip = self.clip(row)
        pose = clip["pose"]
        span = max(2, int(round(window * rng.uniform(1 - aug["speed_jitter"], 1 + aug["speed_jitter"]))))
        start = int(rng.integers(0, max(1, pose.shape[0] - span + 1)))
        pose = transforms.speed_crop(pose, start, span, window, aug["pad"])
        mirrored = rng.random() < aug["flip_prob"]
        angle, scale = rng.uniform(-aug["rotate_deg"], aug["rotate_deg"]), 1 + rng.uniform(-aug["scale"], aug["scale"])
        kept = transforms.kept_joints(pose.shape[0], pose.shape[1], aug["joint_dropout"], rng)
        prior = clip["prior"]
        if aug["prior_dropout"] and rng.random() < aug["prior_dropout"]:  # no draw when off: old runs replay exactly
            prior = default_prior(aug["default_prior"])  # what an unannotated clip gets
        share = rng.beta(aug["mixup"], aug["mixup"]) if aug["mixup"] else 1.0  # drawn last: runs without it replay exactly
        return {
            "row": row, "pose": pose, "mirrored": mirrored, "angle": angle, "scale": scale, "kept": kept, "prior": prior,
            "clip": clip, "share": share,
        }

    def batch(self, positions: Sequence[int]) -> dict[str, np.ndarray]:
        """The examples at `positions`, augmented together: each exactly as it would be alone, in
        a few array operations over the batch instead of dozens per example; with mixup
        (`data.augment.mixup`), blended with its partner (`transforms.mixup_partners`) when that is
        among `positions`."""
        draws = [self.draw(position) for position in positions]
        pose = np.stack([d["pose"] for d in draws])
        mirrored = np.array([d["mirrored"] for d in draws])
        pose[mirrored] = transforms.flip_left_right(pose[mirrored])
        pose = transforms.normalize_pose(pose)
        pose = transforms.rotate_scale(pose, np.array([d["angle"] for d in draws]), np.array([d["scale"] for d in draws]))
        rows = np.array([d["row"] for d in draws])
        arrays = {
            "pose": transforms.drop_joints(pose, np.stack([d["kept"] for d in draws])),
            "prior": np.stack([d["prior"] for d in draws]),
            "label": self.table.train_label[rows].astype(np.int32),  # the class the model is trained on
            "valid": np.ones(len(draws), np.float32),
        }
        if self.gait_features:
            arrays["features"] = np.stack([d["clip"]["features"] for d in draws])
        if self.settings["mixup"]:
            partner = transforms.mixup_partners(np.asarray(positions))
            arrays = transforms.mix_examples(arrays, partner, np.array([d["share"] for d in draws]))
        return arrays

    def __call__(self, position: int) -> dict[str, np.ndarray]:
        return {key: value[0] for key, value in self.batch([position]).items()}


READ_OPTIONS = grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)


def train_iterator(
    source: Any,
    table: ClipTable,
    rows: np.ndarray,
    data: ml_collections.ConfigDict,
    *,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    gait_features: bool = False,
) -> grain.DatasetIterator:
    """This process's slice of every global training batch, forever; checkpointable."""
    global_batch = data.batch_size
    local = local_batch_size(global_batch, process_count)
    checked_pad(data)
    if data.augment.mixup < 0:
        raise ConfigError(f"data.augment.mixup={data.augment.mixup}: the Beta distribution's parameter, 0 (off) or more")
    if data.augment.mixup and local % 2:
        raise ConfigError(f"data.augment.mixup pairs neighbouring examples: it needs an even batch per process, got {local}")
    examples = TrainExamples(source, table, np.asarray(rows), data, seed, gait_features)

    def local_batch(index: int) -> dict[str, np.ndarray]:
        first = int(index) * global_batch + process_index * local
        return examples.batch(range(first, first + local))

    dataset = grain.MapDataset.range(0, UNBOUNDED // global_batch).map(local_batch)
    iter_dataset = dataset.to_iter_dataset(READ_OPTIONS)
    if data.worker_count > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; a caller without absl.app (bench, notebook) has none
            flags.FLAGS.mark_as_parsed()
        iter_dataset = iter_dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.worker_count))
    return iter(iter_dataset)


def eval_windows(table: ClipTable, rows: np.ndarray, data: ml_collections.ConfigDict) -> np.ndarray:
    """[N, 3] (row, start, mirrored) of the windows covering every clip of `rows`, at the target fps;
    with `data.test_flip`, each window also mirrored (left and right swapped), both counting
    towards the clip's mean logits (test-time augmentation)."""
    windows = []
    mirrors = (0, 1) if data.test_flip else (0,)
    for row in np.asarray(rows):
        frames = transforms.resampled_length(int(table.num_frames[row]), float(table.fps[row]), data.fps)
        for start in transforms.eval_window_starts(frames, data.window, data.eval_stride):
            windows.extend((row, start, mirrored) for mirrored in mirrors)
    return np.asarray(windows, np.int64).reshape(-1, 3)


def eval_batches(
    source: Any,
    table: ClipTable,
    rows: np.ndarray,
    data: ml_collections.ConfigDict,
    *,
    process_index: int = 0,
    process_count: int = 1,
    gait_features: bool = False,
) -> grain.MapDataset:
    """Every window of every clip once, padded to whole global batches; re-iterable.

    Padding rows have valid = 0 and clip_index = -1. Each process yields the same number of
    batches (its contiguous part of each global batch).
    """
    pad = checked_pad(data)
    windows = eval_windows(table, rows, data)
    global_batch = data.eval_batch_size
    local = local_batch_size(global_batch, process_count)
    num_batches = max(1, -(-len(windows) // global_batch))
    clip_of = cached_loader(source, table, data.fps, gait_features)  # a clip's windows (and mirror images) share one read

    def local_batch(index: int) -> dict[str, np.ndarray]:
        positions = int(index) * global_batch + process_index * local + np.arange(local)
        valid = positions < len(windows)
        row, start, mirrored = np.where(valid[:, None], windows[np.minimum(positions, len(windows) - 1)], [windows[0, 0], 0, 0]).T
        clips = [clip_of(int(r)) for r in row]
        pose = np.stack([transforms.crop_window(clip["pose"], int(s), data.window, pad) for clip, s in zip(clips, start)])
        mirrored = mirrored.astype(bool)
        pose[mirrored] = transforms.flip_left_right(pose[mirrored])
        batch = {
            "pose": transforms.normalize_pose(pose),  # each window as eval_window makes it alone
            "prior": np.stack([clip["prior"] for clip in clips]),
            "label": table.label[row].astype(np.int32),
            "valid": valid.astype(np.float32),
            "clip_index": np.where(valid, row, -1).astype(np.int32),
        }
        if gait_features:
            batch["features"] = np.stack([clip["features"] for clip in clips])
        return batch

    return grain.MapDataset.range(0, num_batches).map(local_batch)
