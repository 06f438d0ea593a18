"""One process at a time per checkpoint folder: an exclusive ``flock`` on ``<folder>/.lock``.

The lock is released when the ``with`` block ends, however it ends (an error,
Ctrl-C), and by the operating system when the process dies, so a killed run
never leaves a model locked. While it waits, a log line names the holder
(process, host, since when) every few minutes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from activation_compare.storage import translated_storage_errors

try:  # POSIX; elsewhere models are not locked (a warning says so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
# How often a waiting run says that it waits, in seconds.
LOG_EVERY_S = 300.0


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


@contextlib.contextmanager
def folder_lock(
    folder: Path, label: str, *, poll_s: float = 0.5, log_every_s: float | None = None
) -> Iterator[None]:
    """Hold the exclusive lock of ``folder`` for the block (created if missing).

    Args:
        folder: The checkpoint folder.
        label: What the log lines call the model, e.g. ``relu_seed0``.
        poll_s: Seconds between attempts while another process holds it.
        log_every_s: Seconds between "waiting" log lines (default :data:`LOG_EVERY_S`).
    """
    path = Path(folder) / LOCK_FILE
    log_every_s = LOG_EVERY_S if log_every_s is None else log_every_s
    with translated_storage_errors(path, "lock file"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is None:  # pragma: no cover - Windows
            logger.warning("%s: no file locking on this platform; do not train it twice at once", label)
        else:
            started = time.monotonic()
            next_log = 0.0
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= next_log:
                        logger.info(
                            "%s: another process is training this model (%s; lock %s); "
                            "waiting for it to finish (%.0f s so far, Ctrl-C to stop)",
                            label, _holder(fd), path, waited,
                        )
                        next_log = waited + log_every_s
                    time.sleep(poll_s)
            try:
                owner = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                os.ftruncate(fd, 0)
                os.pwrite(fd, owner.encode(), 0)
            except OSError:
                pass  # the name of the holder is a courtesy to waiting runs
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock
