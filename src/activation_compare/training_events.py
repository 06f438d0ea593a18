"""Per-epoch events from the training node to whoever listens.

The training node stays pure: it publishes "epoch finished" events and knows
nothing about MLflow or consoles. Hooks (tracking, progress) subscribe for the
duration of one node run. Subscriptions are per thread because Kedro's
ThreadRunner runs nodes in worker threads, and hooks for a node run in the
node's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras


@dataclass(frozen=True)
class EpochEnd:
    """One finished epoch: ``epoch`` counts from 0 and ``epochs`` is the total planned."""

    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)


Listener = Callable[[EpochEnd], None]
_local = threading.local()


def _listeners() -> list[Listener]:
    if not hasattr(_local, "listeners"):
        _local.listeners = []
    return _local.listeners


def subscribe(listener: Listener) -> Listener:
    """Deliver this thread's epoch events to ``listener`` until :func:`unsubscribe`."""
    _listeners().append(listener)
    return listener


def unsubscribe(listener: Listener) -> None:
    """Stop delivering events to ``listener``; unknown listeners are ignored."""
    listeners = _listeners()
    if listener in listeners:
        listeners.remove(listener)


def publish(event: EpochEnd) -> None:
    """Send ``event`` to every listener subscribed in this thread."""
    for listener in list(_listeners()):
        listener(event)


class EpochEventsCallback(keras.callbacks.Callback):
    """Keras callback that publishes an :class:`EpochEnd` after every epoch."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self._epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        metrics = {key: float(value) for key, value in (logs or {}).items()}
        publish(EpochEnd(epoch=epoch, epochs=self._epochs, metrics=metrics))
