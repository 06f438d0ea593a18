"""The Keras callback that times every epoch (its own module so that Keras loads only when training does)."""

from __future__ import annotations

import math
import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds per epoch, training and validation together.

    It also stops training at the first epoch whose loss is NaN or infinite,
    so a diverged model does not spend the remaining epochs on NaNs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        if logs is not None:
            logs["epoch_time_s"] = self.seconds[-1]
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.model.stop_training = True
