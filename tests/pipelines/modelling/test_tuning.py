"""The rigorous protocol's modelling nodes: trial scores, the learning-rate choice, the final model."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from activation_compare.datasets.types import LabelledImages
from activation_compare.identity import ModelKey
from activation_compare.params import TrainingParams, TuningParams
from activation_compare.pipelines.modelling.nodes import build_model, evaluate_model
from activation_compare.pipelines.modelling.tuning import (
    NoUsableTrialError,
    score_trial,
    select_learning_rate,
    train_final,
    train_trial,
    with_learning_rate,
)
from activation_compare.training_state import Checkpoints

TUNING = TuningParams(learning_rates=[0.0003, 0.001, 0.003], epochs=3, validation_size=10)


def _history(val_accuracy):
    epochs = np.arange(1, len(val_accuracy) + 1)
    return pd.DataFrame(
        {"epoch": epochs, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.0,
         "val_accuracy": val_accuracy, "epoch_time_s": 0.1}
    )


def _score(trial, val_accuracy):
    return score_trial(_history(val_accuracy), TUNING, key=ModelKey("relu", 0, trial=trial))


def test_a_trial_scores_its_best_validation_epoch_the_earliest_on_ties():
    score = _score(1, [0.4, 0.6, 0.6, 0.5])
    assert score["learning_rate"] == 0.001 and score["trial"] == 1
    assert score["best_val_accuracy"] == 0.6 and score["best_epoch"] == 2  # epochs from 1
    assert score["val_accuracy"] == [0.4, 0.6, 0.6, 0.5] and not score["diverged"]


def test_the_chosen_learning_rate_has_the_best_validation_score():
    scores = [_score(0, [0.3, 0.5]), _score(1, [0.4, 0.7, 0.65]), _score(2, [0.6, 0.55])]
    rate, selection = select_learning_rate(*reversed(scores))  # order of the inputs does not matter
    assert rate == 0.001 == selection["learning_rate"]
    assert selection["best_val_accuracy"] == 0.7 and selection["best_epoch"] == 2
    assert [t["learning_rate"] for t in selection["trials"]] == [0.0003, 0.001, 0.003]
    assert "0.001 reached the highest validation accuracy, 0.7000 at epoch 2" in selection["reason"]
    assert "0.0003: 0.5000" in selection["reason"] and "0.003: 0.6000" in selection["reason"]
    assert selection["grid_edge"] is None and "extend" not in selection["reason"]


@pytest.mark.parametrize(("winner", "edge", "advice"), [(2, "largest", "a larger one"), (0, "smallest", "a smaller one")])
def test_a_choice_at_the_edge_of_the_grid_says_so(winner, edge, advice):
    scores = [_score(i, [0.9 if i == winner else 0.5]) for i in range(3)]
    _, selection = select_learning_rate(*scores)
    assert selection["grid_edge"] == edge
    assert f"it is the {edge} rate of the grid, so {advice} might score higher" in selection["reason"]


def test_a_tie_goes_to_the_smaller_learning_rate():
    rate, selection = select_learning_rate(_score(2, [0.7]), _score(1, [0.5, 0.7]), _score(0, [0.2]))
    assert rate == 0.001
    assert "tied with [0.003], the smaller rate is kept" in selection["reason"]


def test_a_diverged_trial_is_never_chosen_and_all_diverged_is_an_error():
    diverged = score_trial(_history([]), TUNING, key=ModelKey("relu", 0, trial=2))
    assert diverged["diverged"] and diverged["best_val_accuracy"] is None
    rate, selection = select_learning_rate(_score(0, [0.1]), diverged)
    assert rate == 0.0003 and "0.003: diverged" in selection["reason"]
    with pytest.raises(NoUsableTrialError, match=r"Every learning-rate trial of relu diverged.*0\.0003"):
        select_learning_rate(diverged, {**diverged, "learning_rate": 0.0003})


def test_with_learning_rate_changes_only_the_rate_and_epochs():
    params = TrainingParams(epochs=7, batch_size=32)
    tuned = with_learning_rate(params, 0.003, epochs=2)
    assert tuned.optimizer.learning_rate == 0.003 and tuned.epochs == 2 and tuned.batch_size == 32
    assert params.optimizer.learning_rate == 0.001  # the run's parameters are untouched


# --- real training on tiny data ----------------------------------------------------------------


def _images(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.normal(0.5, 0.15, size=(n, 32, 32, 3)).astype(np.float32)
    images[np.arange(n), labels, :, labels % 3] += 0.8  # a learnable class signal
    return LabelledImages(images=np.clip(images, 0, 1), labels=labels.astype(np.int64))


@pytest.fixture(scope="module")
def data():
    return _images(200, 0), _images(100, 1)


def test_a_trial_trains_with_its_own_learning_rate_and_epochs(data, tmp_path):
    train, validation = data
    key = ModelKey("relu", 0, trial=2)
    model = build_model({"type": "relu"}, _model_params(), key=key)
    history = train_trial(
        model, train, validation, TrainingParams(epochs=9, batch_size=50), TUNING,
        Checkpoints(tmp_path / "relu_trial2_seed0"), key=key,
    )
    assert history["epoch"].tolist() == [1, 2, 3]  # tuning.epochs, not training.epochs
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.003)


def test_a_final_model_keeps_its_best_validation_epoch(data, tmp_path):
    """Evaluated on the validation split, the returned model scores exactly its best val accuracy."""
    train, validation = data
    key = ModelKey("relu", 0)
    model = build_model({"type": "relu"}, _model_params(), key=key)
    # A large rate makes the validation curve go up and down, so the best epoch is rarely the last.
    model, history = train_final(
        model, train, validation, TrainingParams(epochs=6, batch_size=50),
        Checkpoints(tmp_path / "relu_seed0"), 0.02, key=key,
    )
    from activation_compare.params import DataParams, Protocol

    report = evaluate_model(
        model, history, validation, [str(i) for i in range(10)], {"type": "relu"}, _model_params(),
        TrainingParams(epochs=6, batch_size=50), DataParams(source="synthetic"), 0.02,
        key=key, protocol=Protocol.RIGOROUS,
    )
    best = int(history["val_accuracy"].to_numpy().argmax())
    assert report.best_epoch == int(history["epoch"].iloc[best])
    assert report.test_accuracy == pytest.approx(float(history["val_accuracy"].iloc[best]), abs=1e-6)
    # The report records the chosen rate, not training.optimizer.learning_rate.
    assert (report.settings.learning_rate, report.settings.protocol) == (0.02, "rigorous")


def _model_params():
    from activation_compare.params import ModelParams

    return ModelParams()


def test_training_checks_divergence_after_the_nan_check(data, monkeypatch):
    """train_model asks divergence.check_divergence with the model's name, its losses and its rate."""
    from activation_compare.pipelines.modelling import nodes

    calls = []
    monkeypatch.setattr(nodes, "check_divergence", lambda *args: calls.append(args))
    train, validation = data
    key = ModelKey("relu", 0)
    model = build_model({"type": "relu"}, _model_params(), key=key)
    _, history = nodes.train_model(model, train, validation, TrainingParams(epochs=2, batch_size=50), key=key)
    assert calls == [(model.name, history["loss"].tolist(), 0.001)]


def test_a_diverging_trial_is_scored_as_diverged_not_a_failed_run(data, monkeypatch):
    from activation_compare.divergence import check_divergence
    from activation_compare.pipelines.modelling import nodes

    # The softmax cross-entropy of this model is clipped near 16, so a real explosion
    # cannot be provoked on tiny data: the check sees an exploded loss instead.
    monkeypatch.setattr(nodes, "check_divergence", lambda name, losses, rate: check_divergence(name, [2.3, 8e22], rate))
    train, validation = data
    key = ModelKey("relu", 0, trial=2)
    model = build_model({"type": "relu"}, _model_params(), key=key)
    history = train_trial(model, train, validation, TrainingParams(epochs=1, batch_size=50), TUNING, key=key)
    assert history.empty and list(history.columns) == nodes.HISTORY_COLUMNS
    assert score_trial(history, TUNING, key=key)["diverged"]
    with pytest.raises(Exception, match="the model is diverging"):  # a final model's training stops the run
        nodes.train_model(build_model({"type": "relu"}, _model_params(), key=ModelKey("relu", 0)),
                          train, validation, TrainingParams(epochs=1, batch_size=50), key=ModelKey("relu", 0))
