"""The rigorous protocol's nodes: learning-rate trials, their scores, the choice, the final models.

Every choice is made on the validation split held out of the training set
(``data_processing.hold_out_validation``): a trial's score is the best
validation accuracy of its curve, the chosen learning rate is the best
trial's, and a final model keeps its best validation epoch's weights. None of
these nodes reads the test set.
"""

from __future__ import annotations

import logging
from typing import Any

from activation_compare.datasets.types import LabelledImages
from activation_compare.divergence import LossDivergedError
from activation_compare.errors import UserError
from activation_compare.identity import ModelKey
from activation_compare.lazy_types import DataFrame, Model
from activation_compare.params import TrainingParams, TuningParams
from activation_compare.training_state import Checkpoints

from .nodes import HISTORY_COLUMNS, NonFiniteLossError, train_model

# Keras and pandas load when a trial trains, not when the pipeline is built (lazy_types.py).
logger = logging.getLogger(__name__)

# How the choice is made, in the words the selection record and the report use.
SELECTION_RULE = (
    "the highest best validation accuracy over the trial's epochs; "
    "on a tie, the smaller learning rate (the more conservative step)"
)


class NoUsableTrialError(UserError, RuntimeError):
    """Every learning-rate trial of an activation diverged: there is nothing to choose."""


def with_learning_rate(params: TrainingParams, learning_rate: float, epochs: int | None = None) -> TrainingParams:
    """``params`` with another Adam learning rate (and, if given, another number of epochs)."""
    optimizer = params.optimizer.model_copy(update={"learning_rate": float(learning_rate)})
    update: dict[str, Any] = {"optimizer": optimizer}
    if epochs is not None:
        update["epochs"] = int(epochs)
    return params.model_copy(update=update)


def train_trial(
    model: Model,
    train_set: LabelledImages,
    validation_set: LabelledImages,
    training: TrainingParams,
    tuning: TuningParams,
    checkpoints: Checkpoints | None = None,
    *,
    key: ModelKey,
) -> DataFrame:
    """Train one tuning trial: ``tuning.learning_rates[key.trial]`` for ``tuning.epochs`` epochs.

    Everything else is ``training`` (batch size, determinism …). A trial that
    diverges (NaN or an exploding loss) is a result, not a failure of the run:
    it gets an empty history, so its score says it has none and it is never chosen.

    Returns:
        The trial's per-epoch history (as :func:`~.nodes.train_model`'s).
    """
    learning_rate = tuning.learning_rates[key.trial]
    params = with_learning_rate(training, learning_rate, tuning.epochs or training.epochs)
    try:
        _, history = train_model(model, train_set, validation_set, params, checkpoints, key=key)
    except (NonFiniteLossError, LossDivergedError) as exc:
        logger.warning("%s (learning rate %g) diverged; it gets no score: %s", key.label, learning_rate, exc)
        import pandas as pd

        return pd.DataFrame(columns=HISTORY_COLUMNS)
    return history


def score_trial(history: DataFrame, tuning: TuningParams, *, key: ModelKey) -> dict[str, Any]:
    """A trial's score: its best validation accuracy, that epoch, and the whole validation curve.

    Returns:
        A JSON-serialisable record; ``best_val_accuracy`` is None for a trial
        that diverged (an empty history).
    """
    learning_rate = float(tuning.learning_rates[key.trial])
    curve = [float(v) for v in history["val_accuracy"]] if len(history) else []
    score: dict[str, Any] = {
        "model": key.name,
        "activation": key.activation,
        "trial": key.trial,
        "seed": key.seed,
        "learning_rate": learning_rate,
        "epochs": len(history),
        "best_val_accuracy": None,
        "best_epoch": None,
        "epoch": [int(v) for v in history["epoch"]] if len(history) else [],
        "val_accuracy": curve,
        "diverged": not curve,
    }
    if curve:
        best = int(history["val_accuracy"].to_numpy().argmax())  # the earliest on ties
        score["best_val_accuracy"] = curve[best]
        score["best_epoch"] = int(history["epoch"].iloc[best])
        logger.info(
            "%s: learning rate %g, best validation accuracy %.4f at epoch %d",
            key.label, learning_rate, curve[best], score["best_epoch"],
        )
    return score


def select_learning_rate(*scores: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Choose an activation's learning rate from its trials' scores (:data:`SELECTION_RULE`).

    Args:
        *scores: One :func:`score_trial` record per trial of the activation.

    Returns:
        The chosen learning rate, and the record of the choice: the rate, the
        rule, one sentence saying why, and every trial's score.

    Raises:
        NoUsableTrialError: If every trial diverged.
    """
    trials = sorted(scores, key=lambda s: s["learning_rate"])
    activation = trials[0]["activation"]
    scored = [s for s in trials if s["best_val_accuracy"] is not None]
    if not scored:
        rates = [s["learning_rate"] for s in trials]
        raise NoUsableTrialError(
            f"Every learning-rate trial of {activation} diverged (tuning.learning_rates={rates}); "
            "nothing to choose. Add smaller rates, e.g. --params 'tuning.learning_rates="
            f"{' '.join(f'{r / 10:g}' for r in rates)}'"
        )
    # max() keeps the first of equal keys; trials are in ascending rate, so a tie goes to the smaller rate.
    best = max(scored, key=lambda s: s["best_val_accuracy"])
    tied = [s["learning_rate"] for s in scored if s["best_val_accuracy"] == best["best_val_accuracy"]]
    others = ", ".join(
        f"{s['learning_rate']:g}: {s['best_val_accuracy']:.4f}" if s["best_val_accuracy"] is not None
        else f"{s['learning_rate']:g}: diverged"
        for s in trials if s is not best
    )
    reason = (
        f"learning rate {best['learning_rate']:g} reached the highest validation accuracy, "
        f"{best['best_val_accuracy']:.4f} at epoch {best['best_epoch']} of {best['epochs']}"
        + (f" (the others: {others})" if others else "")
        + (f"; tied with {[r for r in tied if r != best['learning_rate']]}, the smaller rate is kept" if len(tied) > 1 else "")
    )
    edge = _grid_edge(best["learning_rate"], [s["learning_rate"] for s in trials])
    if edge is not None:
        # The best rate may lie beyond the grid: say so rather than let it pass as an optimum.
        reason += (
            f"; it is the {edge} rate of the grid, so a {'larger' if edge == 'largest' else 'smaller'} "
            "one might score higher (extend tuning.learning_rates)"
        )
        logger.warning("%s: %s", activation, reason)
    else:
        logger.info("%s: %s", activation, reason)
    selection = {
        "activation": activation,
        "learning_rate": best["learning_rate"],
        "best_val_accuracy": best["best_val_accuracy"],
        "best_epoch": best["best_epoch"],
        "rule": SELECTION_RULE,
        "reason": reason,
        "grid_edge": edge,
        "trials": trials,
    }
    return float(best["learning_rate"]), selection


def _grid_edge(rate: float, rates: list[float]) -> str | None:
    """"largest" or "smallest" when ``rate`` is at that end of a grid of several rates, else None."""
    if len(rates) < 2:
        return None
    if rate == max(rates):
        return "largest"
    if rate == min(rates):
        return "smallest"
    return None


def train_final(
    model: Model,
    train_set: LabelledImages,
    validation_set: LabelledImages,
    training: TrainingParams,
    checkpoints: Checkpoints | None,
    learning_rate: float,
    *,
    key: ModelKey,
) -> tuple[Model, DataFrame]:
    """Train a final model with its activation's chosen learning rate; keep its best validation epoch.

    ``learning_rate`` (the :func:`select_learning_rate` output) replaces
    ``training.optimizer.learning_rate``; the checkpoint's fingerprint records
    it. The weights returned are those of the best validation epoch, restored
    from the training state (not retrained); the history is complete.
    """
    params = with_learning_rate(training, learning_rate)
    return train_model(model, train_set, validation_set, params, checkpoints, key=key, restore_best=True)
