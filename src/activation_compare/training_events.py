"""Per-epoch events from the training node to whoever listens.

The training node stays pure: it publishes "training starts" and "epoch
finished" events and knows nothing about MLflow or consoles. Hooks (tracking, progress) subscribe for the
duration of one node run. Subscriptions are per thread because Kedro's
ThreadRunner runs nodes in worker threads, and hooks for a node run in the
node's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from activation_compare.identity import FIRST_EPOCH, ModelKey


@dataclass(frozen=True)
class EpochEnd:
    """One finished epoch of the model ``key``.

    Attributes:
        key: The model.
        epoch: The epoch, numbered from :data:`~activation_compare.identity.FIRST_EPOCH` (1).
        epochs: The number of epochs the model will have in the end.
        metrics: The epoch's metrics (loss, accuracy, val_loss, val_accuracy, epoch_time_s).
    """

    key: ModelKey
    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingStart:
    """A model's training starts, resumes from a checkpoint, or is skipped as already done.

    Published by the training state (:mod:`activation_compare.training_state`)
    before ``fit``, once it has decided what to do with the model's checkpoint.

    Attributes:
        key: The model.
        epochs: The number of epochs the model will have in the end.
        initial_epoch: Epochs already trained (as Keras' ``initial_epoch``): the
            first epoch trained now is ``initial_epoch + 1``.
        mode: ``"fresh"`` (from scratch), ``"resume"`` (continues after
            ``initial_epoch`` epochs) or ``"reuse"`` (already trained; nothing
            is trained).
        fingerprint: The training fingerprint (the checkpoint folder's name):
            with the model's name, what identifies one training across
            processes and reruns (a tracker finds the model's run by it).
        history: One row per epoch already trained (``epoch`` from 1, the
            metrics and ``time_ms``, the wall-clock time of its end in ms):
            what a tracker back-fills.
    """

    key: ModelKey
    epochs: int
    initial_epoch: int
    mode: str
    fingerprint: str
    history: list[dict[str, float]] = field(default_factory=list)


Event = EpochEnd | TrainingStart
Listener = Callable[[Any], None]
_local = threading.local()


def _listeners() -> list[tuple[Listener, type]]:
    if not hasattr(_local, "listeners"):
        _local.listeners = []
    return _local.listeners


def subscribe(listener: Listener, kind: type = EpochEnd) -> Listener:
    """Deliver this thread's events of type ``kind`` to ``listener`` until :func:`unsubscribe`.

    ``kind`` defaults to :class:`EpochEnd`; pass :class:`TrainingStart` for those.
    """
    _listeners().append((listener, kind))
    return listener


def unsubscribe(listener: Listener) -> None:
    """Stop delivering events to ``listener``; unknown listeners are ignored."""
    listeners = _listeners()
    listeners[:] = [(known, kind) for known, kind in listeners if known is not listener]


def publish(event: Event) -> None:
    """Send ``event`` to every listener subscribed to its type in this thread."""
    for listener, kind in list(_listeners()):
        if isinstance(event, kind):
            listener(event)


def _epoch_events_callback() -> type:
    import keras

    class EpochEventsCallback(keras.callbacks.Callback):
        """Keras callback that publishes an :class:`EpochEnd` after every epoch of ``key``."""

        def __init__(self, key: ModelKey, epochs: int) -> None:
            super().__init__()
            self._key = key
            self._epochs = epochs

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {name: float(value) for name, value in (logs or {}).items()}
            # Keras counts epochs from 0; every event counts them from FIRST_EPOCH.
            publish(EpochEnd(key=self._key, epoch=epoch + FIRST_EPOCH, epochs=self._epochs, metrics=metrics))

    EpochEventsCallback.__module__ = __name__
    return EpochEventsCallback


def __getattr__(name: str) -> Any:
    # Keras (and TensorFlow, tens of seconds to import) only once the callback is
    # used: the MLflow hook and its tools import this module without training.
    if name == "EpochEventsCallback":
        callback = _epoch_events_callback()
        globals()[name] = callback
        return callback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
