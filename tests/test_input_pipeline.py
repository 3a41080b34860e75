"""grain pipelines: shapes, class balance, exact resume and process-count independence."""

from __future__ import annotations

import numpy as np
import pytest

from asd_jax.base.labels import parse_label_map
from asd_jax.data import input_pipeline, splits, transforms
from configs.crossattn import get_config


def make_source(num_patients=12, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for p in range(num_patients):
        diagnosis = ["ASD", "ASD", "ASD", "DHS", "LCS", "HipOA"][p % 6]  # ASD is the majority
        for c in range(3):
            frames = int(rng.integers(20, 90))
            pose = rng.uniform(0.2, 0.6, size=(frames, 17, 3)).astype(np.float32)
            pose[..., 2] = rng.uniform(0.5, 1.0, size=(frames, 17))
            records.append(
                {"clip_id": f"p{p}_c{c}", "patient_id": f"p{p}", "diagnosis": diagnosis, "pose": pose,
                 "prior": rng.dirichlet(np.ones(5)).astype(np.float32), "fps": np.float32(30.0)}
            )
    return records


@pytest.fixture(scope="module")
def setup():
    source = make_source()
    table = splits.ClipTable.from_source(source, parse_label_map("3"))
    config = get_config("smoke")
    config.data.batch_size = 8
    config.data.eval_batch_size = 16
    return source, table, config.data


def test_train_batches_have_the_promised_shapes(setup):
    source, table, data = setup
    batch = next(input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0))
    assert batch["pose"].shape == (8, data.window, 17, 3) and batch["pose"].dtype == np.float32
    assert batch["prior"].shape == (8, 5) and batch["label"].dtype == np.int32
    assert (batch["valid"] == 1).all() and np.isfinite(batch["pose"]).all()


def test_a_batch_holds_exactly_its_examples_made_one_at_a_time(setup):
    """Batches are augmented as a whole (a few array operations): each example in them must be bit
    for bit the one its position gives alone, mirrored or not, joints dropped or not."""
    source, table, data = setup
    iterator = input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=3)
    next(iterator)
    batch = next(iterator)
    examples = input_pipeline.TrainExamples(source, table, np.arange(len(table)), data, 3)
    alone = [examples(position) for position in range(8, 16)]
    for key, value in batch.items():
        assert value.tobytes() == np.stack([example[key] for example in alone]).tobytes(), key
    assert len({bool(examples.draw(position)["mirrored"]) for position in range(8, 16)}) == 2


@pytest.mark.parametrize("sampling", ["over", "under", "none", "patient"])
def test_class_balancing(setup, sampling):
    source, table, data = setup
    data = data.copy_and_resolve_references()
    data.sampling = sampling
    iterator = input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0)
    labels = np.concatenate([next(iterator)["label"] for _ in range(27)])
    share = np.bincount(labels, minlength=3) / len(labels)
    natural = np.bincount(table.label, minlength=3) / len(table)
    if sampling == "none":
        np.testing.assert_allclose(share, natural, atol=0.02)
    else:
        np.testing.assert_allclose(share, np.full(3, 1 / 3), atol=0.02)


def test_patient_sampling_draws_every_patient_of_a_class_equally():
    """Class 0: patient a with 6 clips, b with 2; class 1: patient c with 3 clips. 'over' gives each
    class 8 rows; 'patient' splits class 0's 8 as 4 and 4 (b's two clips twice each, a's four
    distinct) and gives c 8 rows (every clip twice before any a third time)."""
    labels = np.array([0] * 8 + [1] * 3)
    patients = np.array(["a"] * 6 + ["b"] * 2 + ["c"] * 3)
    rows = np.arange(11)
    epoch = input_pipeline.epoch_rows(labels, patients, rows, "patient", np.random.default_rng(0))
    drawn = dict(zip(*np.unique(patients[epoch], return_counts=True)))
    assert drawn == {"a": 4, "b": 4, "c": 8}
    per_clip = np.bincount(epoch, minlength=11)
    assert sorted(per_clip[:6]) == [0, 0, 1, 1, 1, 1] and per_clip[6:8].tolist() == [2, 2]
    assert sorted(per_clip[8:]) == [2, 3, 3]
    over = input_pipeline.epoch_rows(labels, patients, rows, "over", np.random.default_rng(0))
    assert dict(zip(*np.unique(patients[over], return_counts=True)))["b"] == 2  # clips drawn as they come: b weighs 2 of 8
    uneven = input_pipeline.epoch_rows(np.zeros(5, int), np.array(list("aabbc")), np.arange(5), "patient", np.random.default_rng(1))
    assert sorted(np.unique(np.array(list("aabbc"))[uneven], return_counts=True)[1].tolist()) == [1, 2, 2]  # 5 = 2 + 2 + 1


def test_restored_iterator_state_gives_the_same_batches_bitwise(setup):
    source, table, data = setup
    rows = np.arange(len(table))
    iterator = input_pipeline.train_iterator(source, table, rows, data, seed=1)
    for _ in range(3):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(3)]
    fresh = input_pipeline.train_iterator(source, table, rows, data, seed=1)
    fresh.set_state(state)
    for want in expected:
        got = next(fresh)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])


def test_global_batches_do_not_depend_on_the_number_of_processes(setup):
    source, table, data = setup
    rows = np.arange(len(table))
    single = input_pipeline.train_iterator(source, table, rows, data, seed=2)
    halves = [input_pipeline.train_iterator(source, table, rows, data, seed=2, process_index=p, process_count=2) for p in range(2)]
    for _ in range(3):
        whole = next(single)
        parts = [next(h) for h in halves]
        for key in whole:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


def test_eval_covers_every_window_of_every_clip_once_on_every_process_count(setup):
    source, table, data = setup
    rows = np.arange(0, len(table), 2)
    expected = input_pipeline.eval_windows(table, rows, data)
    for process_count in (1, 2):
        seen, batch_counts = [], []
        for p in range(process_count):
            batches = list(input_pipeline.eval_batches(source, table, rows, data, process_index=p, process_count=process_count))
            batch_counts.append(len(batches))
            for batch in batches:
                assert batch["pose"].shape[0] == data.eval_batch_size // process_count
                seen += batch["clip_index"][batch["valid"] > 0].tolist()
                assert (batch["clip_index"][batch["valid"] == 0] == -1).all()
        assert len(set(batch_counts)) == 1
        assert sorted(seen) == sorted(expected[:, 0].tolist())


def test_evaluation_batches_hold_each_window_exactly_as_eval_window_makes_it(setup):
    """Evaluation also mirrors and normalises whole batches; what the model sees must be the window
    the exported predictor and --mode=predict make one at a time (base.preprocess.eval_window)."""
    source, table, data = setup
    data = data.copy_and_resolve_references()
    data.test_flip = True
    rows = np.arange(len(table))
    windows = input_pipeline.eval_windows(table, rows, data)
    poses = np.concatenate([batch["pose"] for batch in input_pipeline.eval_batches(source, table, rows, data)])[: len(windows)]
    for pose, (row, start, mirrored) in zip(poses, windows):
        clip = input_pipeline.load_clip(source, table, int(row), data.fps)["pose"]
        assert pose.tobytes() == transforms.eval_window(clip, int(start), data.window, bool(mirrored), data.pad).tobytes()
    assert windows[:, 2].any() and not windows[:, 2].all()


def test_batch_not_divisible_by_processes_is_an_error(setup):
    source, table, data = setup
    with pytest.raises(ValueError, match="does not divide by the 3 processes"):
        input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0, process_count=3)


def test_prior_dropout_gives_training_clips_the_unannotated_prior(setup):
    source, table, data = setup
    priors = {}
    for rate in (0.0, 0.5, 1.0):
        data = data.copy_and_resolve_references()
        data.augment.prior_dropout = rate
        iterator = input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0)
        priors[rate] = np.concatenate([next(iterator)["prior"] for _ in range(8)])
    uniform = np.all(np.isclose(priors[1.0], 0.2), axis=1)
    assert uniform.all()
    assert not np.all(np.isclose(priors[0.0], 0.2), axis=1).any()  # the source's priors are random Dirichlet draws
    share = np.all(np.isclose(priors[0.5], 0.2), axis=1).mean()
    assert 0.3 < share < 0.7


def test_mixup_blends_each_example_with_its_neighbour_and_keeps_both_labels(setup):
    """With mixup, example 2k and 2k+1 of the global stream are each other's partners: every
    example is its unmixed self blended with its partner by its drawn share, the same on every
    process count; off, a batch carries no mixup fields and is the batch it always was."""
    source, table, data = setup
    rows = np.arange(len(table))
    plain = next(input_pipeline.train_iterator(source, table, rows, data, seed=4))
    assert "mix_weight" not in plain and "mix_label" not in plain
    mixing = data.copy_and_resolve_references()
    mixing.augment.mixup = 0.4
    mixed = next(input_pipeline.train_iterator(source, table, rows, mixing, seed=4))
    partner = np.arange(8) ^ 1
    share = mixed["mix_weight"]
    assert ((share > 0) & (share < 1)).all() and share.std() > 0.05
    np.testing.assert_array_equal(mixed["label"], plain["label"])
    np.testing.assert_array_equal(mixed["mix_label"], plain["label"][partner])
    np.testing.assert_allclose(mixed["prior"], share[:, None] * plain["prior"] + (1 - share[:, None]) * plain["prior"][partner], atol=1e-6)
    seen = (plain["pose"][..., 2] >= transforms.MIN_SCORE) & (plain["pose"][..., 2][partner] >= transforms.MIN_SCORE)
    blend = share[:, None, None, None] * plain["pose"] + (1 - share[:, None, None, None]) * plain["pose"][partner]
    np.testing.assert_allclose(mixed["pose"], np.where(seen[..., None], blend, 0.0), atol=1e-6)
    halves = [input_pipeline.train_iterator(source, table, rows, mixing, seed=4, process_index=p, process_count=2) for p in range(2)]
    parts = [next(h) for h in halves]
    for key in mixed:
        np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), mixed[key])


@pytest.mark.parametrize(("mixup", "batch_size", "message"), [
    (-0.2, 8, r"data.augment.mixup=-0.2: the Beta distribution's parameter, 0 \(off\) or more"),
    (0.2, 6, "it needs an even batch per process, got 3"),
])
def test_mixup_refuses_a_negative_parameter_or_an_odd_batch_per_process(setup, mixup, batch_size, message):
    source, table, data = setup
    data = data.copy_and_resolve_references()
    data.augment.mixup, data.batch_size = mixup, batch_size
    with pytest.raises(ValueError, match=message):
        input_pipeline.train_iterator(source, table, np.arange(len(table)), data, seed=0, process_count=2)


class CountingSource(list):
    """A source that counts how often each record is read."""

    def __init__(self, records):
        super().__init__(records)
        self.reads = np.zeros(len(records), int)

    def __getitem__(self, index):
        self.reads[index] += 1
        return super().__getitem__(index)


def test_each_clip_is_decoded_once_and_its_cached_copy_cannot_be_changed(setup):
    """Training reads a clip tens of times: the pipeline keeps its decoded copy, so the examples are
    the same as from a fresh read, each record is read once, and the shared copy is read-only."""
    source, table, data = setup
    counting = CountingSource(source)
    rows = np.arange(len(table))
    fresh = input_pipeline.TrainExamples(source, table, rows, data, 0)
    expected = []
    for position in range(3 * len(table)):
        input_pipeline.TrainExamples.clip.cache_clear()  # every clip read anew
        expected.append(fresh(position))
    examples = input_pipeline.TrainExamples(counting, table, rows, data, 0)
    for position, reference in enumerate(expected):
        got = examples(position)
        for key in reference:
            np.testing.assert_array_equal(got[key], reference[key])
    assert counting.reads.max() == 1 and counting.reads.sum() == len(np.unique(table.record[rows]))
    windows = input_pipeline.eval_batches(counting, table, rows, data)
    assert sum(len(batch["valid"]) for batch in windows) >= len(table)
    assert counting.reads.max() == 2  # the evaluation pipeline reads each clip once for all its windows
    with pytest.raises(ValueError, match="read-only"):
        examples.clip(0)["pose"][0, 0, 0] = 1.0
