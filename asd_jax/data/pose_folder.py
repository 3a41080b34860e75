"""Keypoints extracted from videos -> a keypoint folder: `annotations.pkl` (pyskl) and `clips.csv`.

This is the folder format `user_folder` reads, without the `diagnosis` column: for training the
user adds it. Identifiers come from the layout of the input: `clip_id` is the video's file stem;
`patient_id` is the name of the subfolder of the input folder that holds the video (the top-level
one, however deep the video lies), or the stem again for a video given alone or lying directly in
the input folder. Files are written atomically and never over an existing folder's files.
"""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from asd_jax.base.errors import UserDataError, UserError
from asd_jax.base.files import check_output_folder, write_atomically
from asd_jax.data.video_pose import VideoPose

ANNOTATIONS, CLIPS = "annotations.pkl", "clips.csv"
CLIPS_COLUMNS = ("clip_id", "patient_id", "fps")


def clip_ids(videos: list[Path], source: Path) -> dict[Path, tuple[str, str]]:
    """{video: (clip_id, patient_id)} by the rule in the module docstring; clip ids must be unique."""
    ids, first_of = {}, {}
    for video in videos:
        clip_id = video.stem
        if clip_id in first_of:
            raise UserDataError(video, f"clip id {clip_id!r} (the file stem) is also that of {first_of[clip_id]}; rename one of them")
        first_of[clip_id] = video
        nested = source.is_dir() and len(video.relative_to(source).parts) > 1
        ids[video] = (clip_id, video.relative_to(source).parts[0] if nested else clip_id)
    return ids


def check_free(out: Path) -> None:
    """Refuses a folder that already holds extracted keypoints (or a clips.csv a user edited)."""
    check_output_folder(out)
    taken = [name for name in (ANNOTATIONS, CLIPS) if (out / name).exists()]
    if taken:
        raise UserError(f"{out} already holds {' and '.join(taken)}; choose another --out or move them away first")


def annotation(pose: VideoPose, clip_id: str) -> dict[str, Any]:
    """One pyskl skeleton annotation (one person: M = 1)."""
    return {
        "frame_dir": clip_id,
        "keypoint": pose.keypoint[None].astype(np.float32),
        "keypoint_score": pose.score[None].astype(np.float32),
        "img_shape": (pose.height, pose.width),
        "original_shape": (pose.height, pose.width),
        "total_frames": int(pose.keypoint.shape[0]),
    }


def write_folder(out: Path, poses: list[VideoPose], ids: dict[Path, tuple[str, str]]) -> None:
    """Writes annotations.pkl, then clips.csv, each whole or not at all."""
    check_free(out)
    out.mkdir(parents=True, exist_ok=True)
    annotations = [annotation(pose, ids[pose.path][0]) for pose in poses]
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(CLIPS_COLUMNS)
    writer.writerows((*ids[pose.path], f"{pose.fps:g}") for pose in poses)
    write_atomically(out / ANNOTATIONS, pickle.dumps({"annotations": annotations}, protocol=pickle.HIGHEST_PROTOCOL))
    write_atomically(out / CLIPS, table.getvalue())
