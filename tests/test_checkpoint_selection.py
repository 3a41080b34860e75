"""Checkpoint selection without training: which validation number ranks a checkpoint
(predict.selection_score), and which step a finished run stands for (checkpointing.selected_step),
with a real orbax manager on tiny pytrees. Fast, so mutation testing can run it; test_launch checks
the same against a real training run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import grain
import numpy as np
import pytest

from asd_jax.base.errors import ConfigError, RunStateError
from asd_jax.evaluation import aggregate, predict
from asd_jax.training import checkpointing

SELECT = "patient_macro_f1"


def result_with(**patient: float) -> predict.EvalResult:
    """An EvalResult whose headline numbers are all 0.5 at clip level and 0.25 at patient level,
    except the patient-level ones given."""
    levels = {"clip": dict.fromkeys(("accuracy", "balanced_accuracy", "macro_f1", "auc"), 0.5)}
    levels["patient"] = {**dict.fromkeys(("accuracy", "balanced_accuracy", "macro_f1", "auc"), 0.25), **patient}
    return predict.EvalResult(("a", "b"), {}, levels, {})


def test_selection_score_is_the_named_headline_number():
    result = result_with(macro_f1=0.75, auc=0.625)
    assert predict.selection_score(result, SELECT) == 0.75
    assert predict.selection_score(result, "patient_auc") == 0.625
    assert predict.selection_score(result, "clip_macro_f1") == 0.5
    assert predict.headline(result) == {
        "clip_accuracy": 0.5, "clip_balanced_accuracy": 0.5, "clip_macro_f1": 0.5, "clip_auc": 0.5,
        "patient_accuracy": 0.25, "patient_balanced_accuracy": 0.25, "patient_macro_f1": 0.75, "patient_auc": 0.625,
    }


def test_clip_neg_log_loss_is_minus_the_mean_log_likelihood_of_the_true_classes():
    """The continuous selection score, for validation sets where a dozen patients' macro-F1 ties."""
    clips = aggregate.Predictions(np.array(["c1", "c2", "c3"]), np.array([0, 1, 1]), np.array([[0.8, 0.2], [0.5, 0.5], [0.9, 0.1]]))
    result = predict.EvalResult(("a", "b"), {"clip": clips}, result_with().metrics, {})
    expected = (math.log(0.8) + math.log(0.5) + math.log(0.1)) / 3
    assert predict.selection_score(result, "clip_neg_log_loss") == pytest.approx(expected, rel=1e-12)
    assert predict.selection_score(result, SELECT) == 0.25  # the headline numbers need no predictions


def test_a_nan_score_ranks_below_every_real_one():
    """AUC is NaN when a validation class is missing; such a checkpoint must never be selected."""
    assert predict.selection_score(result_with(auc=float("nan")), "patient_auc") == -math.inf
    assert predict.selection_score(result_with(auc=0.0), "patient_auc") == 0.0  # a real zero stays a zero


def test_an_unknown_select_metric_is_a_config_error():
    with pytest.raises(ConfigError, match=r"train.select_metric='patient_f1': expected one of \['clip_accuracy', .*'clip_neg_log_loss', "):
        predict.selection_score(result_with(), "patient_f1")


def data_iterator() -> grain.DatasetIterator:
    return iter(grain.MapDataset.range(4).to_iter_dataset())


def save_steps(workdir: Path, scores: dict[int, float | None], *, keep: int = 1) -> None:
    """Saves a tiny state at each step, with its validation score (None: a save without validation,
    e.g. train.checkpoint_every), through the manager the training loop uses."""
    manager = checkpointing.make_manager(workdir / checkpointing.CHECKPOINT_DIR, keep=keep, best_metric=SELECT)
    for step, score in scores.items():
        state = {"w": np.full(3, float(step), np.float32)}
        checkpointing.save(manager, step, state, data_iterator(), None if score is None else {SELECT: score})
    manager.wait_until_finished()
    manager.close()


def reopened(workdir: Path, *, keep: int = 1):
    return checkpointing.make_manager(workdir / checkpointing.CHECKPOINT_DIR, keep=keep, best_metric=SELECT)


def test_the_selected_step_is_the_best_on_validation_and_is_kept(tmp_path):
    # Step 20 is best; 40 is the latest; 50 was saved without a validation score.
    save_steps(tmp_path, {10: 0.5, 20: 0.9, 30: 0.7, 40: -math.inf, 50: None})
    manager = reopened(tmp_path)
    assert checkpointing.selected_step(manager, tmp_path) == 20
    # Kept: the latest (resume) and the best (test); the others are deleted.
    assert sorted(manager.all_steps()) == [20, 50]
    restored = checkpointing.restore(manager, 20, {"w": np.zeros(3, np.float32)})
    np.testing.assert_array_equal(restored["w"], [20.0, 20.0, 20.0])
    manager.close()


def test_unvalidated_steps_are_kept_only_while_among_the_latest(tmp_path):
    """Saves without a validation score (train.checkpoint_every) are for resuming: once newer ones
    exist they are deleted, or a long run would keep every one of them."""
    save_steps(tmp_path, {10: None, 20: 0.9, 30: None, 40: 0.5, 50: None})
    manager = reopened(tmp_path)
    assert sorted(manager.all_steps()) == [20, 50]
    assert checkpointing.selected_step(manager, tmp_path) == 20
    manager.close()


def test_the_latest_keep_steps_are_kept_beside_the_best(tmp_path):
    save_steps(tmp_path, {1: 0.9, 2: 0.1, 3: 0.2, 4: 0.3}, keep=2)
    manager = reopened(tmp_path, keep=2)
    assert sorted(manager.all_steps()) == [1, 3, 4]
    assert checkpointing.selected_step(manager, tmp_path) == 1
    manager.close()


def test_restore_puts_the_data_iterator_back_where_it_was_saved(tmp_path):
    """A resumed run sees exactly the data it would have seen: the iterator is saved with the state."""
    manager = checkpointing.make_manager(tmp_path, keep=1, best_metric=SELECT)
    iterator = data_iterator()
    assert [next(iterator), next(iterator)] == [0, 1]
    checkpointing.save(manager, 1, {"w": np.ones(2, np.float32)}, iterator, {SELECT: 0.5})
    manager.wait_until_finished()
    fresh = data_iterator()
    restored = checkpointing.restore(manager, 1, {"w": np.zeros(2, np.float32)}, fresh)
    assert next(fresh) == 2
    np.testing.assert_array_equal(restored["w"], [1.0, 1.0])
    manager.close()


def test_on_a_tie_the_later_step_is_selected(tmp_path):
    """orbax ranks equal scores by step, so the later of two equal validation scores wins. (The
    loop's early-stopping counter keeps the earlier one; the features baseline picks the first.)
    Pinned so a change of that rule, here or in orbax, is seen."""
    save_steps(tmp_path, {1: 0.5, 2: 0.8, 3: 0.8, 4: 0.6}, keep=1)
    manager = reopened(tmp_path)
    assert checkpointing.selected_step(manager, tmp_path) == 3
    manager.close()


def test_imported_weights_stand_for_their_step_only_without_a_validated_one(tmp_path):
    save_steps(tmp_path, {0: None})
    manager = reopened(tmp_path)
    with pytest.raises(RunStateError, match=r"checkpoints: no validated checkpoint; train first \(--mode=train\)"):
        checkpointing.selected_step(manager, tmp_path)
    (tmp_path / checkpointing.IMPORTED_FILE).write_text(json.dumps({"source": "elsewhere", "step": 7}))
    assert checkpointing.selected_step(manager, tmp_path) == 7
    manager.close()
    # Once a step is validated it wins over the imported one.
    save_steps(tmp_path, {5: 0.4})
    manager = reopened(tmp_path)
    assert checkpointing.selected_step(manager, tmp_path) == 5
    manager.close()
