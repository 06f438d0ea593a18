"""ParallelRunner: nodes and their hooks run in worker processes, and MLflow records the same tree.

A fake pipeline under ParallelRunner in this process (worker processes with
the project's hooks), then real ``kedro run --runner=ParallelRunner``
processes in the smoke environment: one run checked against the same
per-model expectations as the sequential run (``test_tracking_runs.py``), and
one killed with SIGKILL mid-training and run again, which continues the
killed model runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from conftest import test_env
from mlflow import MlflowClient


def test_worker_processes_find_their_runs_in_mlflow(tmp_path, tracking, scratch_store):
    """The fake pipeline under ParallelRunner: every node hook runs in a worker process.

    Workers build their hooks from the project's ``settings.HOOKS`` (as Kedro
    does), so they share nothing with the driver's hook but the catalog.
    """
    from activation_compare.identity import ComparePlan

    plan = ComparePlan.of(["relu", "rrelu"], [0, 1])
    tracking.run_fake_in_parallel_in_a_new_interpreter(tmp_path, "parallel-1", scratch_store, ["relu", "rrelu"], [0, 1])

    client = MlflowClient(scratch_store)
    runs = tracking.runs_by_session(client, "parallel-1")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 5 and sorted(c.info.run_name for c in children) == [k.run_name for k in plan.models]
    assert {r.info.status for r in runs} == {"FINISHED"}
    for child in children:
        assert child.data.tags["kedro.pid"] != parent.data.tags["kedro.pid"]  # made in a worker
        for metric in ("loss", "accuracy"):
            assert sorted(m.step for m in client.get_metric_history(child.info.run_id, metric)) == [1, 2, 3]
        assert child.data.metrics["test_accuracy"] == 0.5
        assert {f.path for f in client.list_artifacts(child.info.run_id)} >= {"history.csv", "report.json", "figures"}
    assert "comparison.md" in {f.path for f in client.list_artifacts(parent.info.run_id)}


PARALLEL = ("run", "--env", "smoke", "--pipeline=compare", "--runner=ParallelRunner")
# The whole compare pipeline under ParallelRunner through the real CLI: nodes pickle
# (pipelines/binding.py) and in-memory data crosses worker processes
# (datasets/handover.py), so the MLflow tree must be the sequential run's.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_parallel_runner_records_the_same_tree_as_the_sequential_run(tmp_path, tracking):
    project = tracking.copy_project(tmp_path / "project")
    result = tracking.kedro_cli(project, *PARALLEL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    parent, children = tracking.split_tree(tracking.runs_of(client))
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    for child in children:  # each epoch at its step exactly once, the model logged, the report
        tracking.assert_model_run(client, child, activation=child.data.tags["activation"], seed=0, epochs=2)
        # Created in a worker process, not in the driver.
        assert child.data.tags["kedro.pid"] != parent.data.tags["kedro.pid"]
    files = tracking.artifact_files(client, parent.info.run_id)
    assert {"comparison.csv", "comparison.md", "accuracy_curves.png", "comparison_summary.json"} <= set(files)
    assert {k for k in parent.data.metrics} >= {"test_accuracy_relu", "test_accuracy_rrelu"}


def _kill_when_training(process: subprocess.Popen, client_uri: str, experiment: str, min_step: int) -> None:
    """SIGKILL the whole ``kedro run`` (driver and workers) once a model has logged ``min_step``."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        try:
            client = MlflowClient(client_uri)
            exp = client.get_experiment_by_name(experiment)
            runs = client.search_runs([exp.experiment_id]) if exp else []
        except Exception:  # noqa: BLE001 - the store is being created
            runs = []
        if any(
            max((m.step for m in client.get_metric_history(r.info.run_id, "loss")), default=0) >= min_step
            for r in runs
            if "mlflow.parentRunId" in r.data.tags
        ):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return
        time.sleep(0.2)
    raise AssertionError("no model reached the epoch to kill at")


def test_a_killed_parallel_run_is_continued_by_the_rerun(tmp_path, tracking):
    project = tracking.copy_project(tmp_path / "project")
    epochs = 12  # room for the kill to land mid-training, even with fast (bfloat16) epochs
    params = ("--params", f"training.epochs={epochs}")
    uri = f"sqlite:///{project / 'mlflow.db'}"
    env = test_env()
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [str(tracking.BIN / "kedro"), *PARALLEL, *params],
        cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        _kill_when_training(process, uri, tracking.SMOKE_EXPERIMENT, min_step=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
    client = MlflowClient(uri)
    killed = {r.info.run_name: r for r in tracking.runs_of(client)}
    killed_parent = next(r for r in killed.values() if "mlflow.parentRunId" not in r.data.tags)
    assert {r.info.status for r in killed.values()} == {"RUNNING"}  # SIGKILL: nobody could end them

    result = tracking.kedro_cli(project, *PARALLEL, *params)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    runs = [r for r in tracking.runs_of(client) if r.data.tags["kedro.run_id"] != killed_parent.data.tags["kedro.run_id"]]
    parent, children = tracking.split_tree(runs)
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    continued = [c for c in children if c.info.run_id in {r.info.run_id for r in killed.values()}]
    assert continued, "no killed model run was continued"
    for child in continued:
        assert child.data.tags["kedro.previous_parent_run_id"] == killed_parent.info.run_id
        assert child.data.tags["kedro.training"] == "resumed"
    for child in children:
        tracking.assert_model_run(client, child, activation=child.data.tags["activation"], seed=0, epochs=epochs)
    assert client.get_run(killed_parent.info.run_id).info.status == "KILLED"
