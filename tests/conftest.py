"""Shared fixtures: throwaway copies of the project, so runs never touch ./data or ./mlflow.db,
and the real processes the tests start (the ``kedro`` CLI, an ``mlflow server``)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The virtual environment's commands (kedro, mlflow, dask), whatever PATH says.
BIN = Path(sys.executable).parent
KEDRO = str(BIN / "kedro")

# Nothing in the tests may wait on a network; TensorFlow's start-up lines off.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
for _key, _value in QUIET_ENV.items():
    os.environ.setdefault(_key, _value)

# A developer's own choices that must not reach the processes the tests start:
# their tracking server and experiment, Kedro environment, the project's switches, Dask's config.
_DEVELOPER_SETTINGS = ("MLFLOW_", "KEDRO_ENV", "ACTIVATION_COMPARE_", "DASK_")


def test_env(**overrides: str) -> dict[str, str]:
    """The environment for every process a test starts (``kedro``, ``mlflow server``, ``dask``).

    This process's environment without a developer's ``MLFLOW_*``, ``KEDRO_ENV``,
    ``ACTIVATION_COMPARE_*`` and ``DASK_*`` settings, with :data:`QUIET_ENV`, then ``overrides``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DEVELOPER_SETTINGS)}
    env.update(QUIET_ENV)
    env.update(overrides)
    return env


test_env.__test__ = False  # a helper, not a test pytest should collect


def copy_project(destination: Path, source: Path = PROJECT_ROOT) -> Path:
    """A runnable copy of the project for runs that must not touch ./data.

    ``pyproject.toml``, ``conf/`` (without ``local/``) and the empty numbered data
    layers; the code itself is installed in the environment. (The benchmarks keep
    their own copy in ``benchmarks/project_copy.py``: the tests import nothing from there.)
    """
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (source / name).exists():
            shutil.copy2(source / name, destination / name)
    # Kedro checks that the source folder exists; the code itself is installed.
    (destination / "src").mkdir(exist_ok=True)
    shutil.copytree(source / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir(exist_ok=True)
    for layer in sorted((source / "data").iterdir()):
        # The numbered layers only: not data/smoke or data/paper, which the
        # developer's own runs of other environments leave behind.
        if layer.is_dir() and layer.name[:2].isdigit():
            (destination / "data" / layer.name).mkdir(parents=True, exist_ok=True)
    return destination


def stop_process_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process started with ``start_new_session=True``, with everything it started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class MlflowServer:
    """``mlflow server`` on 127.0.0.1: SQLite backend, proxied artifacts, all under ``root``.

    Started when created, waited for on first use of :attr:`url` (so its start
    overlaps other work); always stopped with its whole process group. A second
    server on the same ``root`` continues the first's store.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / "artifacts"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(root / "server.log", "a")  # noqa: SIM115 - closed in stop()
        env = test_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.process = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server",
                "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                "--artifacts-destination", str(self.artifacts),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        self._ready = False

    @property
    def url(self) -> str:
        """The server's address, once it answers ``/health`` (at most 180 s)."""
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while not self._ready:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    self._ready = response.status == 200
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not become healthy in 180 s") from None
                time.sleep(0.5)
        return url

    def client(self):
        """An ``MlflowClient`` of this server."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.url)

    def stop(self) -> None:
        stop_process_group(self.process)
        self.log.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """In CI (``CI=true``), a test marked ``ci`` that skips fails instead, naming why it skipped."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true") and item.get_closest_marker("ci"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} must run in CI, but it skipped: {reason}"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[MlflowServer]:
    """One real MLflow server for the whole session (tests tell their runs apart by Kedro run id)."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A fresh project copy for one test."""
    return copy_project(tmp_path / "project")


def kedro_cli(project: Path, *args: str, timeout: float = 600, env: dict | None = None):
    """Run the real ``kedro`` command in ``project`` in :func:`test_env` (plus ``env``);
    returns the CompletedProcess."""
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=test_env(**(env or {})),
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


def saved_output(project: Path, run_id: str, relative: str) -> Path:
    """The file a Kedro run saved at ``<relative>/<run id>/<name>`` under any environment's data/."""
    name = Path(relative).name
    found = sorted(project.glob(f"data/**/{relative}/{run_id}/{name}"))
    assert len(found) == 1, (relative, run_id, found)
    return found[0]


def run_session(project: Path, runtime_params: dict | None = None, pipeline: str = "compare") -> str:
    """One in-process ``KedroSession`` run in the smoke env; returns its session id.

    The session id (Kedro's run id, tag ``kedro.run_id``) is stored on the
    exception as ``session_id`` when the run raises.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime_params) as session:
        try:
            session.run(pipeline_names=[pipeline])
        except BaseException as exc:
            exc.session_id = session.store["session_id"]
            raise
        return session.store["session_id"]


def metric_steps(client, run_id: str, key: str) -> list[int]:
    """The steps (epochs) an MLflow run logged ``key`` at, sorted."""
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def checkpoint_state(folder: Path) -> dict:
    """A checkpoint folder's committed record (``state.json``)."""
    return json.loads((folder / "state.json").read_text())


def checkpoint_folders(root: Path) -> list[Path]:
    """The checkpoint folders under ``root`` (one per training fingerprint) that hold a record."""
    return sorted(p for p in root.iterdir() if (p / "state.json").is_file()) if root.is_dir() else []


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
