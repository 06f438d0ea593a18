"""Real processes on 127.0.0.1 for the Dask runner's tests: a scheduler and workers.

The MLflow server they report to is the session's (``mlflow_server`` in tests/conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, stop_process_group, test_env


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
            env=test_env(), start_new_session=True,
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
        stop_process_group(self.workers[name], signal.SIGKILL)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            stop_process_group(process)
        for log in self.logs:
            log.close()


@pytest.fixture
def dask_cluster(tmp_path):
    cluster = DaskCluster(tmp_path, n_workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()
