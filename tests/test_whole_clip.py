"""Whole-clip windows (configs/cnn_clip.py): padding with missing frames, speed jitter that keeps
real frames real, pooling over the present frames only, and the same in the PyTorch twin."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from test_export import smoke_config
from test_input_pipeline import make_source

from asd_jax.base.errors import ConfigError, RunStateError
from asd_jax.base.labels import parse_label_map
from asd_jax.data import input_pipeline, splits, transforms
from asd_jax.models import build_model
from asd_jax.models.layers import pool_time
from asd_jax.models.variables import flat_state
from asd_jax.modes import export
from asd_jax.pytorch import convert
from asd_jax.pytorch.twins.layers import pool_time as torch_pool_time
from asd_jax.training import checkpointing


def clip(frames: int) -> np.ndarray:
    rng = np.random.default_rng(frames)
    pose = rng.uniform(0.2, 0.6, size=(frames, 17, 3)).astype(np.float32)
    pose[..., 2] = rng.uniform(0.5, 1.0, size=(frames, 17))
    return pose


def test_missing_padding_adds_frames_where_nothing_was_seen():
    pose = clip(20)
    window = transforms.crop_window(pose, 0, 32, "missing")
    np.testing.assert_array_equal(window[:20], pose)
    assert not window[20:].any()
    normalised = transforms.eval_window(pose, 0, 32, False, "missing")
    assert np.isfinite(normalised).all() and not normalised[20:].any()


def test_speed_jitter_keeps_a_short_clips_frames_at_the_drawn_speed_and_pads_the_rest():
    pose = clip(20)
    window = transforms.speed_crop(pose, 0, 40, 32, "missing")  # 40 frames asked, 20 there: 16 of 32
    np.testing.assert_allclose(window[:16], transforms.resample_time(pose, 16))
    assert not window[16:].any()
    edge = transforms.speed_crop(pose, 0, 40, 32, "edge")  # the old path, unchanged
    np.testing.assert_array_equal(edge, transforms.resample_time(transforms.crop_window(pose, 0, 40), 32))
    long = clip(90)
    np.testing.assert_array_equal(
        transforms.speed_crop(long, 10, 40, 32, "missing"), transforms.resample_time(long[10:50], 32)
    )


def test_stats_pooling_counts_only_the_present_frames():
    x = jnp.asarray(np.r_[1.0, 2, 3, 4, 5, 6, 9, 9, 9].reshape(1, 9, 1))
    present = jnp.asarray([[True] * 6 + [False] * 3])
    mean, std, drift = np.asarray(pool_time(x, "stats", present))[0]
    assert mean == pytest.approx(3.5)
    assert std == pytest.approx(np.sqrt(17.5 / 6))
    assert drift == pytest.approx((5 + 6) / 2 - (1 + 2) / 2)  # last third of the six minus first third
    everything = jnp.ones((1, 9), bool)
    np.testing.assert_allclose(
        pool_time(x, "stats", everything)[0], [x.mean(), x.std(), x[0, -3:].mean() - x[0, :3].mean()], rtol=1e-6
    )
    torch_pooled = torch_pool_time(torch.tensor(np.asarray(x)), "stats", torch.tensor(np.asarray(present)))
    np.testing.assert_allclose(torch_pooled.numpy()[0], [mean, std, drift], rtol=1e-6)


@pytest.mark.parametrize("name", ("cnn_clip", "stgcn_clip_diagnoses"))
def test_twin_matches_on_padded_whole_clip_windows(name):
    config = smoke_config(name)
    model = build_model(config, 3, nnx.Rngs(0))
    twin = export.torch_twin(config, 3, convert.flax_to_torch(flat_state(nnx.state(model))))
    poses = np.stack([transforms.eval_window(clip(n), 0, config.data.window, False, "missing") for n in (8, 21, 32)])
    prior = np.full((3, 5), 0.2, np.float32)
    flax_logits = np.asarray(model(jnp.asarray(poses), jnp.asarray(prior)).logits)
    with torch.no_grad():
        torch_logits = twin(torch.from_numpy(poses), torch.from_numpy(prior)).numpy()
    np.testing.assert_allclose(torch_logits, flax_logits, atol=1e-5, rtol=1e-5)
    assert len({tuple(np.round(row, 5)) for row in flax_logits}) == 3  # padding changes the answer, not erases it


def test_an_unknown_pad_is_one_config_error():
    source = make_source(num_patients=6)
    table = splits.ClipTable.from_source(source, parse_label_map("3"))
    data = smoke_config("cnn_clip").data
    data.pad = "zeros"
    with pytest.raises(ConfigError, match=r"data.pad='zeros': expected one of \('edge', 'missing'\)"):
        input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0)
    with pytest.raises(ConfigError, match="data.pad='zeros'"):
        input_pipeline.eval_batches(source, table, np.arange(len(table)), data)


def test_a_run_saved_before_pad_existed_loads_and_resumes_with_edge_padding(tmp_path):
    config = smoke_config("cnn")
    saved = json.loads(config.to_json())
    del saved["data"]["pad"]
    (tmp_path / checkpointing.CONFIG_FILE).write_text(json.dumps(saved))
    (tmp_path / checkpointing.CHECKPOINT_DIR / "15").mkdir(parents=True)
    assert checkpointing.load_run_config(tmp_path).data.pad == "edge"
    checkpointing.check_resumable(tmp_path, config)
    config.data.pad = "missing"
    with pytest.raises(RunStateError, match=r"another config \(data.pad 'edge' -> 'missing'\)"):
        checkpointing.check_resumable(tmp_path, config)


def test_stgcn_stats_pooling_widens_its_head_and_an_unknown_pooling_is_one_config_error():
    config = smoke_config("stgcn_clip_diagnoses")
    model = build_model(config, 3, nnx.Rngs(0))
    assert model.head.kernel.shape == (3 * model.blocks[-1].out_dim, 3)  # mean, spread and drift
    config.model.pooling = "max"
    with pytest.raises(ConfigError, match=r"model.pooling='max': expected one of \('mean', 'stats'\)"):
        build_model(config, 3, nnx.Rngs(0))
