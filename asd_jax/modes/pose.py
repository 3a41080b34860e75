"""`--mode=pose`: walking videos -> a keypoint folder (annotations.pkl + clips.csv), offline.

    python launch.py --mode=pose --input videos/ --out keypoints/

`--input` is one video or a folder of videos (patients in subfolders, see `pose_folder` for how
clip and patient ids are named). The pose model is built and cached on first use
(`asd_jax.data.pose_model`). To train on the result, add a `diagnosis` column to clips.csv.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from asd_jax.base.errors import UserError
from asd_jax.base.skeleton import MIN_SCORE, NUM_JOINTS

if TYPE_CHECKING:  # imported for real inside run(): mediapipe is an optional dependency
    from asd_jax.data.video_pose import VideoPose


def summary_text(poses: list[VideoPose], out: Path) -> str:
    """Videos, frames, and how many joints per frame the training pipeline will keep (score >= MIN_SCORE)."""
    frames = sum(len(pose.score) for pose in poses)
    joints = sum(float((pose.score >= MIN_SCORE).sum()) for pose in poses) / frames
    with_person = sum(int(pose.score.any(axis=1).sum()) for pose in poses) / frames
    return (
        f"{len(poses)} video(s), {frames} frames, a person in {with_person:.0%} of them, "
        f"{joints:.1f} of {NUM_JOINTS} joints detected per frame (score >= {MIN_SCORE})\n"
        f"wrote {out / 'annotations.pkl'} and {out / 'clips.csv'}; add a diagnosis column to clips.csv to train on them"
    )


def extract_keypoints(source: Path, out: Path) -> str:
    """Videos under `source` -> the keypoint folder `out`; returns the summary text."""
    try:
        from asd_jax.data import pose_folder, pose_model, video_pose
    except ImportError as err:
        raise UserError(f"videos need {err.name or err}, a video dependency: pip install -r requirements-video.txt") from None
    videos = video_pose.find_videos(source)
    ids = pose_folder.clip_ids(videos, source)
    pose_folder.check_free(out)
    poses = video_pose.extract_all(videos, pose_model.ensure_bundle())
    pose_folder.write_folder(out, poses, ids)
    return summary_text(poses, out)


def run(invocation) -> None:
    source, out = invocation.input, invocation.out
    if source is None or out is None:
        raise UserError("--mode=pose needs --input <a video or a folder of videos> and --out <folder to write>")
    print(extract_keypoints(source, out))
