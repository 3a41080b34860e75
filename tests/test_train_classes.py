"""Training on finer classes than the task reports (data.train_classes): the mapping's checks, the
merge of logits, the training labels and the model's outputs. End to end (train, predict, export,
the bundled predictor) in tests/test_predict.py, whose run trains on LCS and HipOA apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from asd_jax.base.errors import ConfigError, UserDataError
from asd_jax.base.labels import class_groups, parse_label_map
from asd_jax.base.preprocess import merge_class_logits, softmax
from asd_jax.data import input_pipeline, splits
from asd_jax.data.folds import check_training_classes
from asd_jax.models import build_model, reported_logits
from asd_jax.models.features import clip_log_probs
from configs import cnn_clip_diagnoses, crossattn

APART = crossattn.DIAGNOSES  # ASD, DHS, LCS, HipOA; normal left out, as the 3-class task does


def test_each_training_class_names_the_reported_class_it_lies_in():
    assert class_groups("3", APART) == (0, 1, 2, 2)
    assert class_groups("3", "") == ()
    assert class_groups("2", "ASD:ASD,DHS:DHS,LCS:LCS,HipOA:HipOA,LCS_HipOA:LCS,normal:normal") == (0, 1, 1, 1, 1)


@pytest.mark.parametrize(
    ("classes", "train_classes", "message"),
    [
        ("3", "ASD:ASD,DHS:LCS,LCS:LCS,HipOA:HipOA,normal:-", r"class 'LCS' joins diagnoses of two reported classes \('DHS' and"),
        ("3", "ASD:ASD,DHS:DHS,LCS:LCS,HipOA:HipOA,normal:normal", r"trains on 'normal', which data.classes='3' does not report"),
        ("2", APART, r"leaves out 'normal', which data.classes='2' reports"),
        ("ASD:ASD,DHS:DHS,LCS:LCS", "ASD:ASD,LCS:LCS", r"no class inside reported class 'DHS'"),
    ],
)
def test_a_training_mapping_that_does_not_nest_is_one_error(classes, train_classes, message):
    with pytest.raises(ConfigError, match=message):
        class_groups(classes, train_classes)


def test_merged_probabilities_are_the_sums_within_each_reported_class():
    logits = np.random.default_rng(0).normal(scale=5.0, size=(6, 4)).astype(np.float32)
    merged = merge_class_logits(logits, (0, 1, 2, 2))
    fine = softmax(logits)
    np.testing.assert_allclose(softmax(merged), np.stack([fine[:, 0], fine[:, 1], fine[:, 2] + fine[:, 3]], 1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(merge_class_logits(jnp.asarray(logits), (0, 1, 2, 2), xp=jnp)), merged, atol=1e-5)
    assert merge_class_logits(logits, ()) is logits
    far = np.array([[0.0, -200.0, -200.0, -300.0]], np.float32)  # a class far below: finite, ~0 probability
    assert np.isfinite(merge_class_logits(far, (0, 1, 2, 2))).all()


def table_of(diagnoses: list[str], train_classes: str = APART) -> splits.ClipTable:
    records = [
        {"clip_id": f"c{i}", "patient_id": f"P{i}", "diagnosis": d, "pose": np.zeros((8, 17, 3), np.float32), "fps": 30.0}
        for i, d in enumerate(diagnoses)
    ]
    return splits.ClipTable.from_source(records, parse_label_map("3"), train_map=parse_label_map(train_classes, "data.train_classes"))


def test_clips_carry_the_reported_label_and_the_training_label():
    table = table_of(["ASD", "HipOA", "LCS", "DHS", "normal"])
    assert table.label.tolist() == [0, 2, 2, 1]  # normal left out
    assert table.train_label.tolist() == [0, 3, 2, 1]


def test_a_diagnosis_the_training_classes_do_not_name_is_one_error_naming_that_field():
    with pytest.raises(UserDataError, match=r"clip 'c1': diagnosis 'LCS_HipOA' is not in the class mapping .*--config.data.train_classes"):
        table_of(["ASD", "LCS_HipOA"], train_classes=APART)


def test_a_training_class_without_clips_is_one_error_naming_it():
    table = table_of(["ASD", "LCS", "DHS"])
    with pytest.raises(ConfigError, match=r"no clip has a diagnosis of training class 'HipOA' of data.train_classes"):
        check_training_classes(table, parse_label_map(APART), "clips.csv")


def test_training_batches_and_class_balance_use_the_training_classes():
    table = table_of(["ASD", "ASD", "ASD", "HipOA", "LCS", "DHS"])
    data = cnn_clip_diagnoses.get_config("smoke").data
    source = [{"pose": np.zeros((40, 17, 3), np.float32), "prior": np.full(5, 0.2, np.float32), "fps": 30.0}] * len(table)
    examples = input_pipeline.TrainExamples(source, table, np.arange(len(table)), data, seed=0)
    labels = [int(examples(i)["label"]) for i in range(examples.epoch_length)]
    assert sorted(set(labels)) == [0, 1, 2, 3] and np.bincount(labels).tolist() == [3, 3, 3, 3]  # four classes, each as often


def test_the_model_has_a_logit_per_training_class_and_reports_the_task_classes():
    config = cnn_clip_diagnoses.get_config("smoke")
    model = build_model(config, 3, nnx.Rngs(0))
    pose, prior = jnp.zeros((2, config.data.window, 17, 3)), jnp.full((2, 5), 0.2)
    fine = model(pose, prior).logits
    assert fine.shape == (2, 4) and model.class_groups == (0, 1, 2, 2)
    np.testing.assert_allclose(jax.nn.softmax(reported_logits(model, fine)).sum(-1), 1.0, atol=1e-6)
    assert reported_logits(model, fine).shape == (2, 3)
    with pytest.raises(ConfigError, match="merges into 3 classes, but the task has 2"):
        build_model(config, 2, nnx.Rngs(0))


def test_the_features_baseline_sums_its_training_class_probabilities():
    class Fitted:  # what clip_log_probs reads of a fitted scikit-learn classifier
        classes_ = np.array([0, 1, 2, 3])

        def predict_proba(self, x):
            return np.tile([0.1, 0.2, 0.3, 0.4], (len(x), 1))

    log_probs = clip_log_probs(Fitted(), np.zeros((2, 5)), 3, (0, 1, 2, 2))
    np.testing.assert_allclose(np.exp(log_probs), [[0.1, 0.2, 0.7]] * 2, atol=1e-6)


def test_runs_saved_before_the_field_train_on_the_reported_classes():
    from asd_jax.training.checkpointing import ADDED_FIELDS

    assert ADDED_FIELDS["data.train_classes"] == ""
    data = ml_collections.ConfigDict({"classes": "3"})
    from asd_jax.base.labels import task_groups

    assert task_groups(data) == ()
