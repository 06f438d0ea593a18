"""The Keras callback that commits every finished epoch to the model's checkpoint.

Fault tolerance as one object handed to ``fit``, as Keras' own
``BackupAndRestore``: it starts ``fit`` at the resumed epoch and, at the end of
every epoch, saves the weights and the metrics row before anything publishes
the epoch, so a tracker never has an epoch the checkpoint lacks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras

from activation_compare.identity import FIRST_EPOCH

if TYPE_CHECKING:
    from .checkpoints import TrainingSession


def non_finite_loss(logs: Mapping[str, Any] | None) -> float | None:
    """An epoch's loss when it is NaN or infinite, else None: the one test of a diverged epoch.

    Such an epoch stops the training (``EpochTimer``), is never committed
    (:class:`EpochCheckpoint`), and the training node raises ``NonFiniteLossError``.
    """
    loss = (logs or {}).get("loss")
    if loss is None:
        return None
    value = float(loss)
    return None if math.isfinite(value) else value


class EpochCheckpoint(keras.callbacks.Callback):
    """Commit every finished epoch to the session's checkpoint folder.

    Put it after the callback that adds ``epoch_time_s`` to the logs (the
    training node's ``EpochTimer``: epochs are timed there only) and before the
    one that publishes the epoch. An epoch with a non-finite loss
    (:func:`non_finite_loss`) is never committed: the last good epoch stays the checkpoint.
    """

    def __init__(self, session: TrainingSession) -> None:
        super().__init__()
        self.session = session

    def on_train_begin(self, logs: dict | None = None) -> None:
        # What BackupAndRestore does: fit() reads it after on_train_begin.
        self.model._initial_epoch = self.session.initial_epoch or None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if non_finite_loss(logs) is not None:
            return
        row: dict[str, float] = {}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        # Keras counts epochs from 0; every record counts them from FIRST_EPOCH.
        self.session.commit_epoch(self.model, epoch + FIRST_EPOCH, row)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.model._initial_epoch = None


class BestWeightsInMemory(keras.callbacks.Callback):
    """The best validation epoch's weights, in memory: a training without checkpoints.

    The same choice as the checkpoint store (:func:`.store.best_epoch`): the
    highest ``val_accuracy``, the earliest epoch on ties.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: int | None = None
        self._value = -math.inf
        self._weights: list | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get("val_accuracy")
        if value is not None and math.isfinite(float(value)) and float(value) > self._value:
            self._value, self.epoch = float(value), epoch + FIRST_EPOCH
            self._weights = self.model.get_weights()

    def restore(self, model: Any) -> int:
        """Put the best epoch's weights back into ``model``; return the epoch (from 1)."""
        if self._weights is None or self.epoch is None:
            raise FileNotFoundError("no epoch of this training had a validation accuracy")
        model.set_weights(self._weights)
        return self.epoch
