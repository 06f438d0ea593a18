"""Writing run outputs safely: atomic file replacement, clear errors for unwritable or full disks.

Two things go wrong with disks in long runs, and both should fail with one
sentence that names the path, not a traceback from deep inside h5py or
TensorFlow:

* the output folder cannot be written (permissions, a read-only mount, a file
  where a folder should be): :func:`check_writable` probes every output folder
  of a pipeline before anything runs (``TrainingStateHooks.before_pipeline_run``);
* the disk fills up (or a quota is hit) in the middle of a run:
  :func:`storage_error` turns ``OSError`` ENOSPC/EDQUOT/EACCES/EPERM/EROFS/ENOTDIR
  into a :class:`StorageError` naming the file that could not be written.

:func:`atomic_write_bytes` writes a small file under a temporary name in the
same folder, flushes it to disk and renames it into place, so a crash (or a
``SIGKILL``) leaves either the old file or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from kedro.io import DatasetError

from activation_compare.errors import UserError

# errno values that mean "this location cannot take the write", with what to do.
_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space (old checkpoints, mlartifacts/) and run again",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run again",
    errno.EACCES: "permission denied: make the folder writable for this user",
    errno.EPERM: "operation not permitted: make the folder writable for this user",
    errno.EROFS: "the file system is read-only: point data/ at a writable disk",
    errno.ENOTDIR: "a file is in the way where a folder is expected: move it away",
    errno.EEXIST: "a file is in the way where a folder is expected: move it away",
}
STORAGE_ERRNOS = frozenset(_ADVICE)
_ERRNO_IN_MESSAGE = re.compile(r"errno\s*=\s*(\d+)", re.IGNORECASE)
# Enough to notice a disk that is full to the last block; small enough to be free.
_PROBE_BYTES = 64 * 1024


class StorageError(DatasetError, UserError):
    """An output could not be written: names the path, the reason and what to do.

    A :class:`kedro.io.DatasetError`, so Kedro shows the message unchanged when
    a dataset's save raises it; a :class:`UserError`, so ``kedro run`` prints it
    without a traceback.
    """

    def __init__(self, message: str, *, path: Path | str, error_number: int | None = None) -> None:
        super().__init__(message)
        self.path = Path(path)
        self.errno = error_number


def error_number(exc: BaseException) -> int | None:
    """The errno of an ``OSError``; h5py/TensorFlow sometimes only put it in the message."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int):
        return number
    match = _ERRNO_IN_MESSAGE.search(str(exc))
    return int(match.group(1)) if match else None


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``OSError`` about the location (full, read-only, denied...)."""
    return isinstance(exc, OSError) and error_number(exc) in STORAGE_ERRNOS


def storage_cause(exc: BaseException | None) -> OSError | None:
    """The storage ``OSError`` behind ``exc`` (itself, or its cause: Kedro wraps save errors)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if is_storage_error(exc):
            return exc  # type: ignore[return-value]
        exc = exc.__cause__ or exc.__context__
    return None


def storage_error(exc: BaseException, path: Path | str, what: str = "file") -> StorageError:
    """A :class:`StorageError` for ``exc`` raised while writing ``what`` at ``path``."""
    number = error_number(exc)
    name = errno.errorcode.get(number, "?") if number is not None else "?"
    reason = os.strerror(number) if number is not None else str(exc)
    advice = _ADVICE.get(number, "check the folder")
    return StorageError(
        f"Cannot write the {what} {path}: {reason} ({name}); {advice}.",
        path=path,
        error_number=number,
    )


@contextlib.contextmanager
def translated_storage_errors(path: Path | str, what: str = "file") -> Iterator[None]:
    """Re-raise a storage ``OSError`` in the block as a :class:`StorageError` naming ``path``."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        cause = storage_cause(exc)
        if cause is not None:
            raise storage_error(cause, path, what) from exc
        raise


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_sibling(path: Path, suffix: str = ".tmp") -> Path:
    """A unique hidden name next to ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}{suffix}")


def atomic_write_bytes(path: Path, data: bytes, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically; a storage error names ``path``."""
    path = Path(path)
    temporary = temporary_sibling(path)
    with translated_storage_errors(path, what):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            fsync_directory(path.parent)
        finally:
            temporary.unlink(missing_ok=True)


def _probe(folder: Path) -> str | None:
    """None if ``folder`` can be created and written; else why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as handle:
                handle.write(b"\0" * _PROBE_BYTES)
                handle.flush()
        finally:
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return str(storage_error(exc, folder, "folder"))
    return None


def check_writable(folders: Iterable[Path]) -> None:
    """Raise one :class:`StorageError` listing every folder that cannot be written.

    Each folder is created if missing and a small file is written and removed
    in it: that catches permissions, read-only mounts, files in the way and a
    disk that is already full, which ``os.access`` does not (it answers yes to
    root, and knows nothing of read-only mounts or free space).
    """
    problems = [(folder, reason) for folder in dict.fromkeys(Path(f) for f in folders)
                if (reason := _probe(folder)) is not None]
    if not problems:
        return
    lines = "\n".join(f"  - {reason}" for _, reason in problems)
    raise StorageError(
        f"The run cannot write its outputs ({len(problems)} folder(s)); nothing was run:\n{lines}",
        path=problems[0][0],
        error_number=None,
    )
