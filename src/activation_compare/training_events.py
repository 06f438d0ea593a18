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


@dataclass(frozen=True)
class EpochEnd:
    """One finished epoch: ``epoch`` counts from 0 and ``epochs`` is the total planned."""

    epoch: int
    epochs: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainingStart:
    """A model's training starts, resumes from a checkpoint, or is skipped as already done.

    Published by the training state (:mod:`activation_compare.pipelines.modelling.checkpoints`)
    before ``fit``, once it has decided what to do with the model's checkpoint.

    Attributes:
        epochs: The number of epochs the model will have in the end.
        initial_epoch: The first epoch (0-based) that will be trained now.
        mode: ``"fresh"`` (from scratch), ``"resume"`` (continues after
            ``initial_epoch`` epochs) or ``"reuse"`` (already trained; nothing
            is trained).
        previous_run_id: The tracking run that recorded this model's earlier
            epochs, if one was stored with the checkpoint.
        history: One row per epoch already trained (``epoch``, the metrics and
            ``time_ms``, the wall-clock time of its end in ms): what a tracker
            back-fills.
        attach_run: A tracker calls it with the id of the run that records this
            model from now on, so the checkpoint remembers it.
    """

    epochs: int
    initial_epoch: int
    mode: str
    previous_run_id: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    attach_run: Callable[[str], None] | None = None


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
        """Keras callback that publishes an :class:`EpochEnd` after every epoch."""

        def __init__(self, epochs: int) -> None:
            super().__init__()
            self._epochs = epochs

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {key: float(value) for key, value in (logs or {}).items()}
            publish(EpochEnd(epoch=epoch, epochs=self._epochs, metrics=metrics))

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
