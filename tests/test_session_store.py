"""Every kedro run gets a run id of its own, even when two start in the same millisecond."""

from __future__ import annotations

import os

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from activation_compare.session_store import UniqueRunSessionStore, unique_run_id


def test_two_processes_with_one_timestamp_get_two_run_ids():
    stamp = "2026-12-01T17.09.11.064Z"
    assert unique_run_id(stamp, pid=101) != unique_run_id(stamp, pid=102)
    assert unique_run_id(unique_run_id(stamp, pid=7), pid=7) == f"{stamp}-7"  # appended once
    # Still ordered by time first, so Kedro's latest version is the newest run.
    assert unique_run_id("2026-12-01T17.09.11.065Z", pid=1) > unique_run_id(stamp, pid=99999)


def test_the_store_rewrites_the_session_id_kedro_writes():
    store = UniqueRunSessionStore(path="unused", session_id="2026-12-01T17.09.11.064Z")
    store.update({"session_id": "2026-12-01T17.09.11.064Z", "env": "smoke"})
    assert store["session_id"] == f"2026-12-01T17.09.11.064Z-{os.getpid()}"
    assert store["env"] == "smoke"


def test_a_session_runs_under_the_unique_id(project_copy):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="smoke") as session:
        assert session.store["session_id"].endswith(f"-{os.getpid()}")
