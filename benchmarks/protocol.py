"""The turn-taking protocol between the benchmark driver and its workers.

A worker prints ``@@bench {json}`` lines on stdout (anything else it prints is
ignored) and, before each epoch, waits for a ``go`` line on stdin: only one
worker trains at a time, and the driver decides the order. Standard library
and NumPy only: the original code's worker imports this under TF 2.15.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PREFIX = "@@bench "


def emit(message: dict[str, Any]) -> None:
    """Send one message to the driver."""
    sys.stdout.write(PREFIX + json.dumps(message, default=float) + "\n")
    sys.stdout.flush()


def wait_go() -> None:
    """Block until the driver lets this worker train its next epoch; exit if it is gone."""
    line = sys.stdin.readline()
    if not line or line.strip() != "go":
        raise SystemExit(0)


def load_images(path: str | Path) -> dict[str, np.ndarray]:
    """The uint8 train/test images and labels the driver wrote for every worker."""
    with np.load(path) as data:
        return {name: data[name] for name in ("x_train", "y_train", "x_test", "y_test")}


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (VmHWM, not inherited over fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
