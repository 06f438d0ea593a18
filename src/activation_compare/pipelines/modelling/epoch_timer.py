"""The Keras callback that times every epoch (its own module so that Keras loads only when training does)."""

from __future__ import annotations

import time

import keras

from activation_compare.training_state.callback import non_finite_loss


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch, training and validation together: the one measure of epoch time.

    It adds ``epoch_time_s`` to the epoch's logs (the checkpoint, the events
    and the history read it there), and stops training at the first epoch
    whose loss is NaN or infinite (:func:`~activation_compare.training_state.callback.non_finite_loss`),
    so a diverged model does not spend the remaining epochs on NaNs;
    :attr:`diverged` says which epoch (from 0, as Keras counts) and its loss.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.diverged: tuple[int, float] | None = None
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        if logs is not None:
            logs["epoch_time_s"] = self.seconds[-1]
        loss = non_finite_loss(logs)
        if loss is not None and self.diverged is None:
            self.diverged = (epoch, loss)
            self.model.stop_training = True
