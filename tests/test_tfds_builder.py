"""TFDS `asd_gait`: build and read back without TensorFlow, for both builder configs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, TINY_COHORT

from asd_jax.data import dataset
from asd_jax.data.user_folder import UserDataError, read_user_folder
from configs.crossattn import get_config


def files_config(folder, data_dir):
    config = get_config()
    config.data.source = "files"
    config.data.manual_dir = str(folder)
    config.data.data_dir = str(data_dir)
    return config.data


def by_clip(source):
    return {source[i]["clip_id"]: source[i] for i in range(len(source))}


def test_files_round_trip_equals_the_folder_reader(tiny_cohort, tmp_path):
    source, info = dataset.load_source(files_config(tiny_cohort, tmp_path))
    assert info.name == "asd_gait" and info.config_name.startswith("files_")
    stored = by_clip(source)
    expected = {r["clip_id"]: r for r in read_user_folder(tiny_cohort)}
    assert stored.keys() == expected.keys()
    for clip_id, record in expected.items():
        got = stored[clip_id]
        assert (got["patient_id"], got["diagnosis"]) == (record["patient_id"], record["diagnosis"])
        np.testing.assert_array_equal(got["pose"], record["pose"])
        np.testing.assert_array_equal(got["prior"], record["prior"])
        assert got["fps"] == record["fps"]


def test_synthetic_config_builds_the_cohort_of_its_parameters(tmp_path):
    config = get_config()
    config.data.data_dir = str(tmp_path)
    config.data.synthetic.num_patients = TINY_COHORT.num_patients
    config.data.synthetic.num_clips = TINY_COHORT.num_clips
    config.data.synthetic.seed = TINY_COHORT.seed
    source, info = dataset.load_source(config.data)
    assert info.config_name.startswith("synthetic_")
    assert len(source) == TINY_COHORT.num_clips
    rows = dataset.summarize(source)
    assert rows[-1] == {"diagnosis": "total", "clips": 60, "patients": 15, "frames": rows[-1]["frames"]}
    other = get_config()
    other.data.synthetic.num_patients = 16
    assert dataset.builder_config(other.data).name != info.config_name
    assert dataset.builder_config(get_config().data) == "synthetic"


def test_a_changed_folder_gets_a_new_dataset(tiny_cohort, tmp_path):
    import shutil

    folder = shutil.copytree(tiny_cohort, tmp_path / "copy")
    before = dataset.builder_config(files_config(folder, tmp_path)).name
    (folder / "doctor2.csv").unlink()
    assert dataset.builder_config(files_config(folder, tmp_path)).name != before


def test_bad_folder_error_comes_through_tfds(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "clips.csv").write_text("clip_id,patient_id,diagnosis,fps\nc1,p1,ASD,30\n")
    with pytest.raises(UserDataError, match="annotations.pkl: file not found"):
        dataset.load_source(files_config(tmp_path / "bad", tmp_path / "tfds"))


def test_an_empty_manual_folder_and_a_data_dir_that_is_a_file_are_one_line_before_tfds(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserDataError, match=r"empty: folder is empty \(data.manual_dir\): put annotations.pkl and clips.csv"):
        dataset.load_source(files_config(tmp_path / "empty", tmp_path / "tfds"))
    (tmp_path / "a_file").write_text("")
    with pytest.raises(dataset.ConfigError, match=r"^data.data_dir=.*a_file: a file, not a folder"):
        dataset.load_source(files_config(TINY_COHORT, tmp_path / "a_file"))


def test_a_bad_class_mapping_or_default_prior_names_its_field():
    from asd_jax.base.errors import ConfigError
    from asd_jax.base.labels import parse_label_map
    from asd_jax.base.skeleton import default_prior

    with pytest.raises(ConfigError, match=r"^data.train_classes: bad class mapping entry 'foo' in 'foo'"):
        parse_label_map("foo", "data.train_classes")
    with pytest.raises(ConfigError, match=r"^data.classes: diagnosis 'ASD' is mapped twice"):
        parse_label_map("ASD:a,ASD:b")
    with pytest.raises(ConfigError, match=r"^data.default_prior='knee': expected 'uniform' or one of head, "):
        default_prior("knee")


def test_loading_and_a_pipeline_pass_never_import_tensorflow(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        import asd_jax
        from configs.crossattn import get_config
        from asd_jax.data import dataset
        from asd_jax.data import input_pipeline
        from asd_jax.data import splits
        from asd_jax.base.labels import parse_label_map
        config = get_config("smoke")
        config.data.data_dir = {str(tmp_path)!r}
        source, _ = dataset.load_source(config.data)
        table = splits.ClipTable.from_source(source, parse_label_map(config.data.classes))
        split = splits.make_splits(table, num_folds=3, fold=0, val_fraction=0.2, seed=0)
        next(input_pipeline.train_iterator(source, table, split.train, config.data, seed=0))
        next(iter(input_pipeline.eval_batches(source, table, split.val, config.data)))
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]
