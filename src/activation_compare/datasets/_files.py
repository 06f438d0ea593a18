"""Temporary files for atomic writes (write, then :func:`os.replace` into place)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def create_temporary(directory: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new, exclusively created file in ``directory``: (open descriptor, path).

    Unlike :func:`tempfile.mkstemp` (always mode 0600), the file gets the usual
    permissions (0666 minus the umask), which it keeps once moved into place.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {directory}")
