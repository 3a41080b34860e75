"""MediaPipe's BlazePose (full) as a PoseLandmarker `.task` bundle, built from PyPI, cached, offline.

mediapipe 1.2.x ships no model, and its Tasks API only loads `.task` bundles, which Google serves
from a model hub. The same two networks are inside the mediapipe 0.10.21 wheel on PyPI
(Apache-2.0, (c) Google / The MediaPipe Authors): `pose_detection.tflite` (finds the person) and
`pose_landmark_full.tflite` (33 landmarks). We download that wheel with pip without installing it
(0.10.21 cannot share a venv with numpy 2), check the two files' SHA-256, give the landmark model
the image-normalisation metadata the Tasks graph refuses to run without, and zip both under the
names the PoseLandmarker looks for. Only the first use needs PyPI; for a machine that will be
offline, build ahead of time and copy the file into its cache:

    python -m asd_jax.data.pose_model --build

Cache folder: $ASD_JAX_CACHE, else $XDG_CACHE_HOME/asd_jax, else ~/.cache/asd_jax.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import flatbuffers
from absl import logging
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_fb
from mediapipe.tasks.metadata import schema_py_generated as tflite_fb
from mediapipe.tasks.python.metadata.metadata_writers import metadata_info, model_asset_bundle_utils, writer_utils

from asd_jax.base.errors import UserError
from asd_jax.base.files import atomic_path

BUNDLE_NAME = "pose_landmarker_full.task"
BUILD_COMMAND = "python -m asd_jax.data.pose_model --build"
SOURCE_WHEEL = "mediapipe==0.10.21"
# Any platform's wheel holds the same model files; pinning one makes the download reproducible.
WHEEL_PLATFORM, WHEEL_PYTHON = "manylinux_2_28_x86_64", "3.11"
# Bundle member name -> (path inside the wheel, SHA-256 of that file).
MODELS = {
    "pose_detector.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "pose_landmarks_detector.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
# The landmark model reads RGB scaled to [0, 1]: (pixel - 0) / 255. The detector's file already
# carries its own metadata ((pixel - 127.5) / 127.5), so it is bundled as shipped.
LANDMARK_NORM_MEAN, LANDMARK_NORM_STD = 0.0, 255.0


def cache_dir() -> Path:
    """Where built models live: $ASD_JAX_CACHE, else the user's cache folder."""
    if os.environ.get("ASD_JAX_CACHE"):
        return Path(os.environ["ASD_JAX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asd_jax"


def bundle_path() -> Path:
    return cache_dir() / BUNDLE_NAME


def ensure_bundle() -> Path:
    """The cached bundle, built first if it is not there yet."""
    path = bundle_path()
    if not path.exists():
        logging.info("building the pose model once (downloads %s from PyPI) into %s", SOURCE_WHEEL, path)
        build_bundle(path)
    return path


def build_bundle(path: Path) -> Path:
    """Downloads the source wheel, checks and converts its two models, writes `path` atomically."""
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(Path(tmp), path)
        with zipfile.ZipFile(wheel) as archive:
            models = {name: _checked_member(archive, member, sha256, wheel) for name, (member, sha256) in MODELS.items()}
    landmarks = "pose_landmarks_detector.tflite"
    models[landmarks] = with_image_metadata(models[landmarks], LANDMARK_NORM_MEAN, LANDMARK_NORM_STD)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:  # a process building at the same time writes its own
        model_asset_bundle_utils.create_model_asset_bundle(models, str(tmp))
    return path


def _download_wheel(dest: Path, target: Path) -> Path:
    """`pip download` of the source wheel (the user's pip settings apply: index, proxy, certificates)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check"]
    command += ["--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON, "--dest", str(dest), SOURCE_WHEEL]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("mediapipe-*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"pip exited with status {result.returncode}"
        raise UserError(
            f"cannot build the pose model {target}: pip could not download {SOURCE_WHEEL} from PyPI ({reason}). "
            f"Run `{BUILD_COMMAND}` on a machine with access to PyPI and copy {BUNDLE_NAME} into {target.parent} "
            "(or point $ASD_JAX_CACHE at the folder that holds it)."
        )
    return wheels[0]


def _checked_member(archive: zipfile.ZipFile, member: str, sha256: str, wheel: Path) -> bytes:
    try:
        data = archive.read(member)
    except KeyError:
        raise UserError(f"{wheel.name} has no {member}; cannot build the pose model") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(f"{member} in {wheel.name} does not have the expected SHA-256; refusing to build the pose model")
    return data


def with_image_metadata(model: bytes, mean: float, std: float) -> bytes:
    """A TFLite model with TFLite-metadata saying its one input is an RGB image normalised as
    (pixel - mean) / std, which is how the Tasks graph learns to preprocess frames for it.

    mediapipe 1.2.x ships the metadata schema and `metadata_info`, but its `MetadataWriter` cannot
    be imported (its `metadata` module needs a native extension the wheel lacks), so the few steps
    of `MetadataPopulator` that matter here are done with the shipped flatbuffer classes.
    """
    buffer = bytearray(model)
    image = metadata_info.InputImageTensorMd(
        name="image",
        norm_mean=[mean],
        norm_std=[std],
        color_space_type=metadata_fb.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(buffer)[0],
    )
    subgraph = metadata_fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image.create_metadata()]
    outputs = writer_utils.get_output_tensor_names(buffer)
    subgraph.outputTensorMetadata = [metadata_info.TensorMd(name=name).create_metadata() for name in outputs]
    metadata = metadata_info.GeneralMd().create_metadata()
    metadata.subgraphMetadata = [subgraph]
    metadata.minParserVersion = "1.0.0"  # only fields of schema 1.0.0 (image input, normalisation) are used
    builder = flatbuffers.Builder(0)
    builder.Finish(metadata.Pack(builder), b"M001")

    tflite = tflite_fb.ModelT.InitFromObj(tflite_fb.Model.GetRootAsModel(buffer, 0))
    entry = tflite_fb.BufferT()
    entry.data = builder.Output()
    tflite.buffers.append(entry)
    field = tflite_fb.MetadataT()
    field.name, field.buffer = "TFLITE_METADATA", len(tflite.buffers) - 1
    tflite.metadata = [*(tflite.metadata or []), field]
    builder = flatbuffers.Builder(0)
    builder.Finish(tflite.Pack(builder), b"TFL3")
    return bytes(builder.Output())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="store_true", help="(re)build the bundle in the cache folder now")
    args = parser.parse_args(argv)
    path = bundle_path()
    if args.build:
        try:
            build_bundle(path)
        except UserError as err:
            sys.exit(f"error: {err}")
        print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB)")
    else:
        print(f"{path}: {'present' if path.exists() else f'not built yet; run `{BUILD_COMMAND}`'}")


if __name__ == "__main__":
    main()
