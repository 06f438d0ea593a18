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

import os
import queue
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from . import _decode

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
