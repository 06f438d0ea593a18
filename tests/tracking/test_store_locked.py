"""A SQLite store locked mid-run by another process: one warning line, no traceback (issue 22, item 9).

Another process holding a write transaction on ``mlflow.db`` (a script, a
``sqlite3`` shell) for longer than SQLite's busy timeout (20 s, MLflow's) made
MLflow log its ~65-line traceback for every call that ran out of time. The
project's client retries such a call and says so in one line; a call that
still finds the store locked after its last retry fails with one line.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from mlflow.exceptions import MlflowException

from activation_compare.tracking import TrackingSettings
from activation_compare.tracking.store import RetryingClient, open_store
from conftest import logged_messages

# Longer than MLflow's busy timeout (20 s), so the first try of each call times out.
HOLD_S = 23

HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@pytest.mark.slow
def test_a_store_locked_by_another_process_is_one_line(tmp_path, capfd):
    path = tmp_path / "mlflow.db"
    store = open_store(TrackingSettings(tracking_uri=f"sqlite:///{path}", experiment_name="locked"))
    run_id = store.client.create_run(store.experiment_id).info.run_id
    impatient = RetryingClient(store.client._client, attempts=1, uri=store.uri)
    capfd.readouterr()

    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(HOLD_S)], stdout=subprocess.PIPE, text=True
    )
    results: dict[str, object] = {}

    def call(name: str, client) -> None:
        try:
            results[name] = client.log_metric(run_id, name, 1.0)
        except MlflowException as exc:
            results[name] = exc

    try:
        assert holder.stdout.readline().strip() == "locked"
        with logged_messages("activation_compare.tracking.store") as messages:
            threads = [
                threading.Thread(target=call, args=("retried", store.client)),
                threading.Thread(target=call, args=("impatient", impatient)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
    finally:
        holder.wait(timeout=60)

    output = "".join(capfd.readouterr())
    assert "Traceback" not in output and "SQLAlchemy database error" not in output, output[-3000:]
    # The retried call waited for the lock and went through, with one warning line.
    assert results["retried"] is None
    warnings = [m for m in messages if "is locked by another process" in m]
    assert len(warnings) == 1 and "\n" not in warnings[0], messages
    assert str(path) in warnings[0] and "log_metric waits and retries" in warnings[0]
    # The call that gave up raised MLflow's error in one line.
    error = results["impatient"]
    assert isinstance(error, MlflowException), error
    assert "database is locked" in str(error) and "\n" not in str(error), str(error)
    assert error.error_code == "TEMPORARILY_UNAVAILABLE"
    metrics = store.client.get_run(run_id).data.metrics
    assert metrics == {"retried": 1.0}
