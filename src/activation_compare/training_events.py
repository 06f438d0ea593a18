"""Per-epoch events from the training node to whoever listens.

The training node stays pure: it publishes "training starts" and "epoch
finished" events and knows nothing about MLflow or consoles. Hooks (tracking,
progress) subscribe for the duration of one node run (:class:`NodeListeners`).
Subscriptions are per thread because Kedro's ThreadRunner runs nodes in worker
threads, and hooks for a node run in the node's own thread: this module keeps
that state, the one module-level mutable state of the project (a
``threading.local``: each thread sees only its own listeners).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from activation_compare.identity import FIRST_EPOCH, ModelKey


class Mode(StrEnum):
    """How a model's training begins (``TrainingStart.mode``), as the training state decides it."""

    FRESH = "fresh"
    RESUME = "resume"
    REUSE = "reuse"


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
        mode: :attr:`Mode.FRESH` (from scratch), :attr:`Mode.RESUME` (continues
            after ``initial_epoch`` epochs) or :attr:`Mode.REUSE` (already
            trained; nothing is trained); a plain string is converted.
        fingerprint: The training fingerprint (the checkpoint folder's name):
            with the model's name, what identifies one training across
            processes and reruns (a tracker finds the model's run by it).
        history: One row per epoch already trained (``epoch`` from 1, the
            metrics and ``time_ms``, the wall-clock time of its end in ms):
            what a tracker back-fills.
        learning_rate: The learning rate the model trains with: its
            settings as the node computed them (a tuning trial's rate, a
            rigorous final model's chosen one); with ``epochs``, what a
            tracker records. None where unknown.
    """

    key: ModelKey
    epochs: int
    initial_epoch: int
    mode: Mode
    fingerprint: str
    history: list[dict[str, float]] = field(default_factory=list)
    learning_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))


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


class NodeListeners:
    """The listeners of the node runs in progress, each subscribed in its node's thread.

    A hook opens a node's listeners in ``before_node_run`` and closes them in
    ``after_node_run`` / ``on_node_error``: Kedro calls all three in the
    node's thread, where the node publishes its events.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[Hashable, tuple[int, list[Listener]]] = {}

    def open(
        self, node: Hashable, on_start: Listener | None = None, on_epoch_end: Listener | None = None
    ) -> None:
        """Subscribe, in this thread, ``on_start`` to :class:`TrainingStart` and ``on_epoch_end`` to :class:`EpochEnd`."""
        pairs = ((on_start, TrainingStart), (on_epoch_end, EpochEnd))
        listeners = [subscribe(listener, kind) for listener, kind in pairs if listener is not None]
        with self._lock:
            self._open[node] = (threading.get_ident(), listeners)

    def close(self, node: Hashable) -> bool:
        """Unsubscribe ``node``'s listeners; False if it has none opened in this thread."""
        with self._lock:
            found = self._open.get(node)
            if found is None or found[0] != threading.get_ident():
                return False
            del self._open[node]
        for listener in found[1]:
            unsubscribe(listener)
        return True

    def nodes(self) -> list[Hashable]:
        """The nodes whose listeners are open, in any thread."""
        with self._lock:
            return list(self._open)


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
