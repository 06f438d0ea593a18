"""A small pool of image-decoding worker processes that speak a pipe protocol.

Why not :mod:`multiprocessing`? Its ``spawn``/``forkserver`` start methods re-run
the caller's ``__main__`` module in every worker (a script without an
``if __name__ == "__main__":`` guard would run twice, side effects included), and
``fork`` is unsafe in a process that holds threads (TensorFlow, Kedro hooks).
These workers are plain ``python -c`` subprocesses that load ``_decode.py`` from
its file (NumPy and Pillow only, so they start in a fraction of a second), read
batches of file bytes or paths on stdin and answer with raw pixels and a JSON
list of problems on stdout — no pickle either way.

Each worker is driven by one thread of a :class:`ThreadPoolExecutor`; the pipe
I/O releases the GIL, so the caller keeps reading its source meanwhile.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import _decode

logger = logging.getLogger(__name__)

# Loads _decode.py by path without putting its folder (which holds a ``types.py``)
# on sys.path, and drops the current directory from sys.path first.
_BOOTSTRAP = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "import importlib.util as u; "
    "s = u.spec_from_file_location('_activation_compare_decode', sys.argv[1]); "
    "m = u.module_from_spec(s); s.loader.exec_module(m); m.serve(sys.argv[2:])"
)


class WorkerError(RuntimeError):
    """A worker could not start, died, or broke the protocol."""


class DecoderPool:
    """``workers`` decoding subprocesses; :meth:`submit` returns a Future per batch."""

    def __init__(self, workers: int, max_pixels: int, max_file_bytes: int) -> None:
        if not sys.executable:
            raise WorkerError("no Python executable to start workers with (sys.executable)")
        env = dict(os.environ)
        # The workers import exactly what this process can (numpy, PIL), from the same places.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        command = [
            sys.executable,
            "-c",
            _BOOTSTRAP,
            str(Path(_decode.__file__).resolve()),
            str(max_pixels),
            str(max_file_bytes),
        ]
        self._processes: list[subprocess.Popen[bytes]] = []
        self._idle: queue.SimpleQueue[subprocess.Popen[bytes] | None] = queue.SimpleQueue()
        try:
            for _ in range(workers):
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and file
                    command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
                )
                self._processes.append(process)
                self._idle.put(process)
        except OSError as exc:
            self.close()
            raise WorkerError(f"cannot start a decoding worker ({exc})") from exc
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="image-decode")

    def submit(self, items: list[bytes | str]) -> Future[tuple[np.ndarray, list[tuple[int, str]]]]:
        return self._threads.submit(self._run, _decode.encode_request(items))

    def _run(self, request: bytes) -> tuple[np.ndarray, list[tuple[int, str]]]:
        process = self._idle.get()
        if process is None:  # a worker failed earlier: fail fast, and tell the next waiter
            self._idle.put(None)
            raise WorkerError("the decoding pool is broken (a worker failed earlier)")
        try:
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(request)
            process.stdin.flush()
            result = _decode.read_response(process.stdout)
        except (OSError, EOFError, ValueError) as exc:
            self._idle.put(None)
            code = process.poll()
            raise WorkerError(
                f"decoding worker {process.pid} failed ({type(exc).__name__}: {exc}"
                f"{'' if code is None else f'; exit code {code}'})"
            ) from exc
        self._idle.put(process)  # only a healthy worker goes back
        return result

    def close(self) -> None:
        """Stop the workers (they exit at end of input) and the threads."""
        threads = getattr(self, "_threads", None)
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        for process in self._processes:
            try:
                if process.stdin is not None:
                    process.stdin.close()
            except OSError:
                pass
        for process in self._processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        self._processes = []


# --- parallel decoding -----------------------------------------------------


class Decoder:
    """Decodes added images in chunks, in worker processes once there are enough of them.

    Chunks are submitted while the caller is still reading (overlapping the archive
    scan with decoding). If the workers cannot start or one fails, the remaining
    chunks are decoded in this process.
    """

    def __init__(
        self, workers: int, chunk: int, parallel_min: int, max_pixels: int, max_file_bytes: int
    ) -> None:
        self._workers = workers
        self._chunk = chunk
        self._parallel_min = parallel_min
        self._args = (max_pixels, max_file_bytes)
        self._items: list[bytes | str | None] = []
        self._submitted = 0
        self._futures: list[tuple[int, int, Future]] = []
        self._pool: DecoderPool | None = None
        self._pool_failed = False
        self.used_workers = 0

    def __enter__(self) -> Decoder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def add(self, item: bytes | str) -> int:
        self._items.append(item)
        if (
            self._pool is None
            and not self._pool_failed
            and self._workers > 1
            and len(self._items) >= self._parallel_min
        ):
            try:
                self._pool = DecoderPool(self._workers, *self._args)
                self.used_workers = self._workers
            except WorkerError as exc:
                self._give_up_pool(exc)
        if self._pool is not None:
            self._submit(final=False)
        return len(self._items) - 1

    def _submit(self, final: bool) -> None:
        while self._pool is not None and (
            len(self._items) - self._submitted >= self._chunk
            or (final and self._submitted < len(self._items))
        ):
            start = self._submitted
            stop = min(start + self._chunk, len(self._items))
            future = self._pool.submit(self._items[start:stop])  # type: ignore[arg-type]
            self._futures.append((start, stop, future))
            self._submitted = stop
            # Back-pressure: bound the bytes queued for the workers.
            pending = [f for _, _, f in self._futures if not f.done()]
            if len(pending) > 3 * self._workers:
                pending[0].exception()  # waits; a failure is handled in finish()

    def _give_up_pool(self, exc: BaseException) -> None:
        logger.warning(
            "Parallel image decoding failed (%s: %s); decoding in this process instead",
            type(exc).__name__,
            exc,
        )
        self._pool_failed = True
        self.used_workers = 0

    def finish(self) -> tuple[np.ndarray, dict[int, str]]:
        """All images, in the order added (failed ones zero), and index → problem."""
        self._submit(final=True)
        images = np.empty((len(self._items), _decode.SIDE, _decode.SIDE, 3), dtype=np.uint8)
        problems: dict[int, str] = {}
        done = 0
        for start, stop, future in self._futures:
            try:
                batch, batch_problems = future.result()
            except WorkerError as exc:
                if not self._pool_failed:
                    self._give_up_pool(exc)
                batch, batch_problems = _decode.decode_batch(self._items[start:stop], *self._args)
            images[start:stop] = batch
            problems.update((start + i, why) for i, why in batch_problems)
            self._items[start:stop] = [None] * (stop - start)  # free the bytes early
            done = stop
        if done < len(self._items):
            batch, batch_problems = _decode.decode_batch(self._items[done:], *self._args)  # type: ignore[arg-type]
            images[done:] = batch
            problems.update((done + i, why) for i, why in batch_problems)
        return images, problems
