"""--mode=pose on videos rendered here: a filled figure walking the kinematic model's gait is found,
its hips and ankles land where they were drawn, the folder written has the keypoint-folder contract,
and bad videos stop with one line naming the file. Offline once the pose model is cached."""

from __future__ import annotations

import csv
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT

from asd_jax import modes
from asd_jax.base.errors import UserDataError, UserError
from asd_jax.base.skeleton import JOINT_INDEX, LEFT_ANKLE, LEFT_HIP, RIGHT_ANKLE, RIGHT_HIP
from asd_jax.data import pose_folder, pose_model, video_pose
from asd_jax.data.synthetic.kinematics import WalkSpec, simulate_body
from asd_jax.data.user_folder import read_user_folder

HEIGHT, WIDTH, FPS, FRAMES = 480, 640, 25.0, 40
PIXELS_PER_METRE = 300 / 1.65  # a 1.65 m walker drawn 300 px tall
BACKGROUND = (235, 235, 235)


def walk_pixels() -> np.ndarray:
    """[T, 17, 2] image coordinates of the kinematic walker, walking to the right."""
    metres = simulate_body(WalkSpec(num_frames=FRAMES, fps=FPS))["keypoints"]
    return np.stack([80 + metres[..., 0] * PIXELS_PER_METRE, HEIGHT - 40 - metres[..., 1] * PIXELS_PER_METRE], -1)


def draw_figure(frame: np.ndarray, points: np.ndarray) -> None:
    """Thick limbs, a trunk and a filled head (a thin stick figure is not taken for a person).
    Walking to the right, the person's left side is the far one: drawn first, darker."""
    at = lambda name: tuple(int(round(v)) for v in points[JOINT_INDEX[name]])  # noqa: E731
    mid = lambda a, b: tuple(int(round(v)) for v in (points[JOINT_INDEX[a]] + points[JOINT_INDEX[b]]) / 2)  # noqa: E731
    skin, shirt = (200, 170, 150), (60, 90, 160)
    for side, leg, arm in (("left", (90, 60, 40), (120, 95, 80)), ("right", (150, 100, 60), skin)):
        if side == "right":
            cv2.line(frame, mid("left_shoulder", "right_shoulder"), mid("left_hip", "right_hip"), shirt, 44, cv2.LINE_AA)
            head = (points[JOINT_INDEX["left_ear"]] + points[JOINT_INDEX["right_ear"]] + 2 * points[JOINT_INDEX["nose"]]) / 4
            cv2.circle(frame, tuple(int(v) for v in head), 24, skin, -1, cv2.LINE_AA)
        cv2.line(frame, at(f"{side}_hip"), at(f"{side}_knee"), leg, 22, cv2.LINE_AA)
        cv2.line(frame, at(f"{side}_knee"), at(f"{side}_ankle"), leg, 18, cv2.LINE_AA)
        ankle = at(f"{side}_ankle")
        cv2.line(frame, ankle, (ankle[0] + 22, ankle[1]), leg, 10, cv2.LINE_AA)  # the foot
        cv2.line(frame, at(f"{side}_shoulder"), at(f"{side}_elbow"), arm, 14, cv2.LINE_AA)
        cv2.line(frame, at(f"{side}_elbow"), at(f"{side}_wrist"), arm, 12, cv2.LINE_AA)


def write_video(path: Path, points: np.ndarray | None, num_frames: int = FRAMES) -> Path:
    """An mp4 of the figure at `points` per frame, or of the bare background when None."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for t in range(num_frames):
        frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
        if points is not None:
            draw_figure(frame, points[t])
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The pose model, built once into the user's cache ($ASD_JAX_CACHE) from the wheel on PyPI."""
    return pose_model.ensure_bundle()


@pytest.fixture(scope="session")
def walk_video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "walk.mp4", walk_pixels())


def side_agnostic_error(found: np.ndarray, drawn: np.ndarray, left: int, right: int) -> np.ndarray:
    """Per-frame pixel error of a left/right joint pair, whichever labelling fits better: in a
    side view the two sides overlap and a swap is the model's most common, harmless mistake."""
    same = np.linalg.norm(found[:, [left, right]] - drawn[:, [left, right]], axis=-1).mean(-1)
    swapped = np.linalg.norm(found[:, [right, left]] - drawn[:, [left, right]], axis=-1).mean(-1)
    return np.minimum(same, swapped)


def test_the_rendered_walker_is_found_where_it_was_drawn(walk_video, bundle):
    pose = video_pose.extract(walk_video, bundle)
    assert pose.keypoint.shape == (FRAMES, 17, 2) and pose.score.shape == (FRAMES, 17)
    assert (pose.height, pose.width, pose.fps) == (HEIGHT, WIDTH, FPS)
    found = pose.score.any(axis=1)
    assert found.mean() >= 0.9, f"a person in only {found.mean():.0%} of the frames"
    drawn = walk_pixels()[found]
    hips = side_agnostic_error(pose.keypoint[found], drawn, LEFT_HIP, RIGHT_HIP)
    ankles = side_agnostic_error(pose.keypoint[found], drawn, LEFT_ANKLE, RIGHT_ANKLE)
    # Measured: about 4 px (hips) and 10 px (ankles) on a 300 px tall figure.
    assert np.median(hips) < 20 and np.median(ankles) < 30, (np.median(hips), np.median(ankles))


def test_the_mode_writes_the_keypoint_folder_contract(walk_video, bundle, tmp_path):
    source = tmp_path / "videos"
    (source / "P01").mkdir(parents=True)
    shutil.copyfile(walk_video, source / "P01" / "side_a.mp4")
    shutil.copyfile(walk_video, source / "side_b.mp4")
    (source / "._side_c.mp4").write_bytes(b"macOS resource fork, not a video")
    out = tmp_path / "keypoints"
    modes.run("pose", modes.Invocation(config=None, workdir=None, input=source, out=out))

    with (out / "clips.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["clip_id", "patient_id", "fps"]
        rows = list(reader)
    assert {(r["clip_id"], r["patient_id"], float(r["fps"])) for r in rows} == {("side_a", "P01", FPS), ("side_b", "side_b", FPS)}
    with (out / "annotations.pkl").open("rb") as f:
        annotations = pickle.load(f)["annotations"]
    for ann in annotations:
        assert ann["keypoint"].shape == (1, FRAMES, 17, 2) and ann["keypoint"].dtype == np.float32
        assert ann["keypoint_score"].shape == (1, FRAMES, 17) and ann["keypoint_score"].dtype == np.float32
        assert ann["img_shape"] == ann["original_shape"] == (HEIGHT, WIDTH) and ann["total_frames"] == FRAMES
        assert ann["keypoint"].max() > 1.5  # pixels, not 0-1 coordinates
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())

    # With a diagnosis column added, the folder is training input.
    with (out / "clips.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, ["clip_id", "patient_id", "diagnosis", "fps"])
        writer.writeheader()
        writer.writerows({**row, "diagnosis": "ASD"} for row in rows)
    assert sorted(r["clip_id"] for r in read_user_folder(out)) == ["side_a", "side_b"]

    with pytest.raises(UserError, match="already holds annotations.pkl"):
        modes.run("pose", modes.Invocation(config=None, workdir=None, input=source, out=out))


def test_patient_ids_follow_the_folder_layout_and_clip_ids_must_be_unique(tmp_path):
    videos = [tmp_path / "P01" / "a.mp4", tmp_path / "P02" / "day1" / "b.mp4", tmp_path / "c.mp4"]
    assert pose_folder.clip_ids(videos, tmp_path) == {videos[0]: ("a", "P01"), videos[1]: ("b", "P02"), videos[2]: ("c", "c")}
    assert pose_folder.clip_ids([videos[0]], videos[0]) == {videos[0]: ("a", "a")}
    with pytest.raises(UserDataError, match="clip id 'a'"):
        pose_folder.clip_ids([videos[0], tmp_path / "P02" / "a.mp4"], tmp_path)


def test_an_undecodable_file_is_one_error_naming_it(tmp_path, bundle):
    path = tmp_path / "x.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UserDataError, match=r"x\.mp4: cannot be opened as a video"):
        video_pose.extract_all([path], bundle)


def test_a_video_without_a_person_is_one_error_naming_it(tmp_path, bundle):
    path = write_video(tmp_path / "empty.mp4", None, num_frames=10)
    with pytest.raises(UserDataError, match=r"empty\.mp4: no person detected in any of its 10 frames"):
        video_pose.extract_all([path], bundle)


def test_launch_writes_the_folder_and_prints_errors_as_one_line(walk_video, bundle, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", ASD_JAX_CACHE=str(bundle.parent))
    launch = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "launch.py", "--mode=pose", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    done = launch(f"--input={walk_video}", f"--out={tmp_path / 'out'}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 video(s), 40 frames" in done.stdout and (tmp_path / "out" / "annotations.pkl").exists()

    bad = tmp_path / "x.mp4"
    bad.write_bytes(b"not a video")
    failed = launch(f"--input={bad}", f"--out={tmp_path / 'out2'}")
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert [line for line in failed.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {bad}: cannot be opened as a video (corrupt, unsupported format, or no frames)"
    ]
    assert not (tmp_path / "out2").exists()


def test_building_the_model_without_pypi_is_one_error_saying_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    target = tmp_path / "cache" / pose_model.BUNDLE_NAME
    with pytest.raises(UserError, match="python -m asd_jax.data.pose_model --build") as caught:
        pose_model.build_bundle(target)
    assert "\n" not in str(caught.value) and not target.exists()
