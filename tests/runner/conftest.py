"""Real processes on 127.0.0.1 for the Dask runner's tests: a scheduler, workers, an MLflow server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DASK_", "KEDRO_ENV"))}
    return {**env, **QUIET_ENV}


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a process started in its own session, with everything it started."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class DaskCluster:
    """``dask scheduler`` and single-thread ``dask worker`` processes, as a user starts them."""

    def __init__(self, root: Path, n_workers: int) -> None:
        self.root = root
        self.scheduler_file = root / "scheduler.json"
        self.logs = []
        self.scheduler = self._start(
            "scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
            "--no-dashboard", "--scheduler-file", str(self.scheduler_file),
        )
        deadline = time.monotonic() + 120
        while not self.scheduler_file.exists():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start: {self.log('scheduler')[-3000:]}")
            time.sleep(0.2)
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        self.workers = {
            f"w{i}": self._start(
                f"w{i}", "worker", self.address, "--nthreads", "1", "--name", f"w{i}",
                "--host", "127.0.0.1", "--no-dashboard",
            )
            for i in range(n_workers)
        }

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.logs.append(log)
        return subprocess.Popen(
            [str(BIN / "dask"), *args], stdout=log, stderr=subprocess.STDOUT,
            env=_environment(), start_new_session=True,
        )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text()

    def client(self):
        """A Dask client of the cluster, once every worker has joined."""
        from distributed import Client

        client = Client(self.address, timeout="60s")
        client.wait_for_workers(len(self.workers), timeout=180)
        return client

    def address_of(self, client) -> dict[str, str]:
        """Worker name (``w0``) → its address."""
        info = client.scheduler_info(n_workers=-1)["workers"]
        return {worker["name"]: address for address, worker in info.items()}

    def kill(self, name: str) -> None:
        """SIGKILL a worker and its nanny: the worker is gone, as after a crash."""
        _stop(self.workers[name], signal.SIGKILL)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            _stop(process)
        for log in self.logs:
            log.close()


class MlflowServer:
    """``mlflow server`` on 127.0.0.1: SQLite backend, artifacts in a local folder."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(root / "mlflow.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--artifacts-destination", str(root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**_environment(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'mlflow.log').read_text()[-3000:]}")
            time.sleep(0.5)

    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.url)

    def stop(self) -> None:
        _stop(self.process)
        self.log.close()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dask_cluster(tmp_path):
    cluster = DaskCluster(tmp_path, n_workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()
