"""Walking videos -> COCO-17 keypoints in pixels, with MediaPipe's PoseLandmarker, offline.

Frames are decoded with OpenCV (RGB, the container's frame rate), tracked by BlazePose in VIDEO
mode (the detector runs only when tracking is lost), and its 33 landmarks are reduced to the 17
COCO joints the rest of the project uses, with each landmark's `visibility` as the joint's score.
A frame without a person keeps zero coordinates and zero scores. Every problem with a video is one
`UserDataError` naming the file; all videos are opened and checked before the first is processed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions
from tqdm import tqdm

from asd_jax.base.errors import UserDataError, UserError
from asd_jax.base.skeleton import NUM_JOINTS
from asd_jax.data.pose_model import BUILD_COMMAND

# BlazePose landmark index of each COCO-17 joint (nose, eyes, ears, shoulders, elbows, wrists,
# hips, knees, ankles; BlazePose's eye centres stand in for COCO's eyes).
BLAZEPOSE_TO_COCO = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


@dataclasses.dataclass(frozen=True)
class VideoPose:
    """One video's keypoints: `keypoint` [T, 17, 2] pixels, `score` [T, 17] in [0, 1]."""

    path: Path
    fps: float
    height: int
    width: int
    keypoint: np.ndarray
    score: np.ndarray


def find_videos(source: Path) -> list[Path]:
    """`source` itself if it is a file, else every video under it (sorted; hidden files skipped,
    such as the `._name.mp4` files macOS leaves on external drives)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UserDataError(source, "not found")
    videos = sorted(
        path
        for path in source.rglob("*")
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not any(p.startswith(".") for p in path.relative_to(source).parts)
    )
    if not videos:
        raise UserDataError(source, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder or its subfolders")
    return videos


@contextlib.contextmanager
def _native_logs_silenced() -> Iterator[None]:
    """Native libraries write straight to file descriptor 2: MediaPipe ~50 INFO/WARNING lines
    (model loading, LiteRT set-up) when a landmarker is created, first run or closed, FFmpeg its
    view of a file it cannot open. They would bury the progress bar and the one error line; errors
    still arrive, as Python exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[cv2.VideoCapture]:
    """A capture of `path` with a frame rate, or a `UserDataError` saying why not."""
    if not path.is_file():
        raise UserDataError(path, "file not found")
    with _native_logs_silenced():  # FFmpeg's own complaint ("moov atom not found") would precede ours
        capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise UserDataError(path, "cannot be opened as a video (corrupt, unsupported format, or no frames)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        if not np.isfinite(fps) or fps <= 0:
            raise UserDataError(path, "the video does not state its frame rate")
        yield capture
    finally:
        capture.release()


def probe(path: Path) -> int:
    """Checks that `path` opens and decodes one frame; returns the container's frame count
    (an estimate for the progress bar)."""
    with _opened(path) as capture:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if not capture.read()[0]:
            raise UserDataError(path, "no frame could be decoded (empty or corrupt video)")
    return max(count, 1)


@contextlib.contextmanager
def landmarker(model_path: Path) -> Iterator[vision.PoseLandmarker]:
    """A fresh single-person PoseLandmarker in VIDEO mode (tracking state must not carry over
    from one video to the next)."""
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)), running_mode=vision.RunningMode.VIDEO, num_poses=1
    )
    try:
        with _native_logs_silenced():
            detector = vision.PoseLandmarker.create_from_options(options)
    except (RuntimeError, ValueError, OSError) as err:
        raise UserError(f"cannot load the pose model {model_path} ({err}); delete it and run `{BUILD_COMMAND}`") from None
    try:
        yield detector
    finally:
        with _native_logs_silenced():
            detector.close()


def extract(path: Path, model_path: Path, bar: tqdm | None = None) -> VideoPose:
    """Keypoints of every frame of one video; `bar` advances by one per frame."""
    keypoints, scores = [], []
    with _opened(path) as capture, landmarker(model_path) as detector:
        fps = capture.get(cv2.CAP_PROP_FPS)
        height = width = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            height, width = bgr.shape[:2]
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            timestamp_ms = int(len(keypoints) * 1000.0 / fps)  # from the frame index: containers' own clocks can stall
            with _native_logs_silenced() if not keypoints else contextlib.nullcontext():  # the first call logs set-up too
                result = detector.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), timestamp_ms)
            xy, score = np.zeros((NUM_JOINTS, 2), np.float32), np.zeros(NUM_JOINTS, np.float32)
            if result.pose_landmarks:
                landmarks = result.pose_landmarks[0]
                for joint, index in enumerate(BLAZEPOSE_TO_COCO):
                    mark = landmarks[index]
                    xy[joint] = (mark.x * width, mark.y * height)
                    score[joint] = mark.visibility or 0.0
            keypoints.append(xy)
            scores.append(score)
            if bar is not None:
                bar.update()
    if not keypoints:
        raise UserDataError(path, "no frame could be decoded (empty or corrupt video)")
    score = np.clip(np.stack(scores), 0.0, 1.0)
    if not score.any():
        raise UserDataError(path, f"no person detected in any of its {len(keypoints)} frames")
    return VideoPose(path=path, fps=float(fps), height=height, width=width, keypoint=np.stack(keypoints), score=score)


def extract_all(paths: list[Path], model_path: Path) -> list[VideoPose]:
    """Keypoints of every video, after checking that all of them decode, with one progress bar."""
    total = sum(probe(path) for path in paths)
    poses = []
    with tqdm(total=total, unit="frame", dynamic_ncols=True) as bar:
        for i, path in enumerate(paths):
            bar.set_description(f"video {i + 1}/{len(paths)} {path.name}")
            poses.append(extract(path, model_path, bar))
    return poses
