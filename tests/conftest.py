"""Shared fixtures: throwaway copies of the project, so runs never touch ./data or ./mlflow.db."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# One project copy for the tests and the benchmarks (config and an empty data tree).
from benchmarks.project_copy import copy_project  # noqa: F401 - re-exported to the tests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))

# Nothing in the tests may wait on a network.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh project copy for one test."""
    return copy_project(tmp_path / "project")


def kedro_cli(project: Path, *args: str, timeout: float = 600, env: dict | None = None):
    """Run the real ``kedro`` command in ``project``; returns the CompletedProcess."""
    # A developer's own tracking server must not receive test runs.
    run_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    run_env.update(env or {})
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def terminal_sigint():
    """Python's own Ctrl-C handler for the test, restored afterwards.

    A shell starts background jobs (``pytest &``, ``nohup``) with SIGINT ignored,
    as POSIX asks; a run started there could not be stopped with Ctrl-C either.
    Tests that send a real SIGINT need the handler a run from a terminal has.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def run_output(path: Path, version: str | None = None) -> Path:
    """The file a run saved at a versioned catalog path: ``<path>/<version>/<name>``.

    ``version`` is the run's session id; without it, the latest version.
    """
    path = Path(path)
    if version is None:
        versions = sorted(p.name for p in path.iterdir() if p.is_dir())
        assert versions, f"no version of {path}"
        version = versions[-1]
    return path / version / path.name


class _Messages(logging.Filter):
    """Records what a logger logs. A filter, not a handler: Kedro's logging set-up
    (``dictConfig``) removes the handlers of the project's child loggers, not their filters."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.lines.append(record.getMessage())
        return True


@contextlib.contextmanager
def logged_messages(*names: str) -> Iterator[list[str]]:
    """The INFO-and-above messages of the named loggers while the block runs."""
    recorder = _Messages()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addFilter(recorder)
        logger.setLevel(logging.INFO)
    try:
        yield recorder.lines
    finally:
        for logger, level in zip(loggers, levels):
            logger.removeFilter(recorder)
            logger.setLevel(level)
