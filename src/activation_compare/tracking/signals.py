"""Ctrl-C, SIGTERM and interpreter exit end a pipeline's runs KILLED instead of leaving them RUNNING.

Kedro does not pass ``KeyboardInterrupt`` (not an ``Exception``) to
``on_pipeline_error``, so while a pipeline runs an :class:`InterruptGuard`
wraps the SIGINT and SIGTERM handlers of the main thread: it ends the runs
from a helper thread (the handler may have interrupted an MLflow call, or a
lock, in this very thread) and raises ``KeyboardInterrupt`` (SIGTERM behaves
as Ctrl-C, so checkpoints stay); inside a call to the store, only once that
call has returned, so no SQLite write is left half done and holding the lock. The helper thread is not a daemon: the
interpreter waits for it before exiting. A SIGKILL leaves runs RUNNING: the
next run that continues the model ends the dead process's parent KILLED
(:mod:`activation_compare.tracking.resume`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Calls ``on_interrupt`` (in a helper thread) when SIGINT or SIGTERM arrives, then interrupts."""

    def __init__(self, on_interrupt: Callable[[], None], defer: Callable[[], bool] | None = None) -> None:
        """``defer``: called in the signal handler; True when the interrupted thread will
        raise ``KeyboardInterrupt`` itself once it may (it is inside a store call)."""
        self._on_interrupt = on_interrupt
        self._defer = defer
        self._previous: dict[int, Any] = {}
        self._closers: list[threading.Thread] = []

    def install(self) -> None:
        """Wrap the handlers; only possible in the main thread (elsewhere nothing happens)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_IGN, None):
                continue  # a process started with SIGINT ignored (``cmd &``) keeps ignoring it
            try:
                signal.signal(signum, self._handler(previous))
            except (ValueError, OSError):
                continue
            self._previous[signum] = previous

    def _handler(self, previous: Any) -> Callable[[int, Any], None]:
        def on_signal(signum: int, frame: Any) -> None:
            closer = threading.Thread(target=self._on_interrupt, name="mlflow-end-killed-runs")
            closer.start()
            self._closers.append(closer)
            # A second signal goes straight to the previous handlers.
            self.restore()
            if signum == signal.SIGTERM:
                logger.warning("SIGTERM received: stopping the run as Ctrl-C would")
            if self._defer is not None and self._defer():
                return  # raised when the store call in progress returns
            if callable(previous):  # Python's own for SIGINT raises KeyboardInterrupt
                previous(signum, frame)
            else:  # SIG_DFL: SIGTERM would end the process on the spot
                raise KeyboardInterrupt

        return on_signal

    def restore(self) -> None:
        """Put the previous handlers back (main thread only; idempotent)."""
        if not self._previous or threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous.items()):
            try:
                signal.signal(signum, previous)
            except (ValueError, OSError, TypeError):
                pass
        self._previous.clear()

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until the runs an interrupt ended are marked (for tests, notebooks, exit)."""
        for closer in list(self._closers):
            closer.join(timeout=timeout)
        self._closers.clear()
