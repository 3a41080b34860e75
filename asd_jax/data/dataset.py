"""The TFDS `asd_gait` dataset for a config: built on first use, read without TensorFlow.

Builder configs are named after what they hold, so different cohorts or folders never share files
on disk: `synthetic` (default cohort), `synthetic_<hash of its parameters>`, and
`files_<hash of the folder's path, file sizes and modification times>` (a changed folder is
rebuilt), ending in `_skip` when data.on_error='skip', so a lenient build never stands in for a
strict one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import jax
import ml_collections
import tensorflow_datasets as tfds
from absl import logging
from jax.experimental import multihost_utils

from asd_jax.base.errors import ConfigError, UserDataError
from asd_jax.data import synthetic
from asd_jax.data.problems import summary_lines
from asd_jax.data.skeletons import skeleton_file
from asd_jax.data.tfds_builder import SKIPPED, Builder, BuilderConfig
from asd_jax.data.user_folder import CLIPS

SPLIT = "clips"
TEXT_FIELDS = ("clip_id", "patient_id", "diagnosis")


class DecodedSource:
    """Random access to clip records with text fields as `str` (TFDS returns bytes)."""

    def __init__(self, source: Any):
        self._source = source

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = dict(self._source[index])
        for key in TEXT_FIELDS:
            if isinstance(record[key], bytes):
                record[key] = record[key].decode()
        return record


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def folder_fingerprint(folder: Path) -> str:
    """Changes whenever a file of the folder is added, removed, resized or touched."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return _digest([str(folder.resolve())] + [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def builder_config(data: ml_collections.ConfigDict):
    """The BuilderConfig that `data` (config.data) asks for (by name when it is a predefined one)."""
    if data.source == "synthetic":
        params = synthetic.CohortParams.from_config(data.synthetic)
        changed = tuple(
            (f.name, getattr(params, f.name))
            for f in dataclasses.fields(params)
            if getattr(params, f.name) != f.default
        )
        if not changed and data.default_prior == "uniform":
            return "synthetic"
        name = f"synthetic_{_digest([changed, data.default_prior])}"
        return BuilderConfig(name=name, source="synthetic", cohort=changed, default_prior=data.default_prior)
    if data.source == "files":
        if not data.manual_dir:
            raise ConfigError("data.source='files' needs --config.data.manual_dir=/path/to/folder")
        folder = Path(data.manual_dir).expanduser()
        if not folder.is_dir():
            raise UserDataError(folder, "folder not found (data.manual_dir)")
        if not any(folder.iterdir()):
            raise UserDataError(folder, "folder is empty (data.manual_dir): put annotations.pkl and clips.csv in it, "
                                        "or the reference's whole_annotations.pkl and doctor CSVs (README, Bring your own data)")
        return BuilderConfig(
            name=f"files_{folder_fingerprint(folder)}_{_digest(data.default_prior)}" + ("_skip" if data.on_error == "skip" else ""),
            source="files",
            default_prior=data.default_prior,
            on_error=data.on_error,
        )
    raise ConfigError(f"data.source={data.source!r}: expected 'synthetic' or 'files'")


def make_builder(data: ml_collections.ConfigDict):
    if data.data_dir and Path(data.data_dir).expanduser().exists() and not Path(data.data_dir).expanduser().is_dir():
        raise ConfigError(f"data.data_dir={data.data_dir}: a file, not a folder; give the folder TFDS keeps datasets in")
    return Builder(config=builder_config(data), data_dir=data.data_dir or None)


def load_source(data: ml_collections.ConfigDict) -> tuple[DecodedSource, tfds.core.DatasetInfo]:
    """Builds the dataset if needed and returns its clips as a random-access source."""
    builder = make_builder(data)
    download_config = None
    if data.source == "files":
        download_config = tfds.download.DownloadConfig(manual_dir=str(Path(data.manual_dir).expanduser()))
    if jax.process_index() == 0:  # one writer; the other processes wait, then read
        builder.download_and_prepare(download_config=download_config)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("asd_jax dataset built")
        builder = make_builder(data)
    for line in summary_lines(skipped(builder.info)):  # every run says what its dataset lacks
        logging.warning("%s", line)
    return DecodedSource(builder.as_data_source(split=SPLIT)), builder.info


def diagnosis_origin(data: ml_collections.ConfigDict) -> str:
    """Where the clips' diagnoses come from, for errors about them: the folder's clips.csv, else
    its skeleton file (the reference's labels), else the synthetic cohort."""
    if data.source != "files":
        return "the synthetic cohort"
    folder = Path(data.manual_dir).expanduser()
    return str(folder / CLIPS if (folder / CLIPS).exists() else skeleton_file(folder))


def skipped(info: tfds.core.DatasetInfo) -> list[dict[str, str]]:
    """What data.on_error=skip left out of the dataset when it was built (problems.Problems.skipped)."""
    return list((info.metadata or {}).get(SKIPPED, []))


def summarize(source: DecodedSource) -> list[dict[str, Any]]:
    """Clips, patients and frames per diagnosis (and in total)."""
    clips, frames, patients = Counter(), Counter(), {}
    for i in range(len(source)):
        record = source[i]
        diagnosis = record["diagnosis"]
        clips[diagnosis] += 1
        frames[diagnosis] += int(record["pose"].shape[0])
        patients.setdefault(diagnosis, set()).add(record["patient_id"])
    rows = [
        {"diagnosis": d, "clips": clips[d], "patients": len(patients[d]), "frames": frames[d]}
        for d in sorted(clips)
    ]
    rows.append(
        {
            "diagnosis": "total",
            "clips": sum(clips.values()),
            "patients": len(set().union(*patients.values())),
            "frames": sum(frames.values()),
        }
    )
    return rows
