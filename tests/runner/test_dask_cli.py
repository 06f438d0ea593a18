"""``kedro run --runner=activation_compare.runner.DaskRunner`` through the CLI, on real processes.

A scheduler, two single-thread workers and an MLflow server on 127.0.0.1, as
README's "Scale out" starts them; smoke data, 2 epochs.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from conftest import KEDRO, copy_project, kedro_cli, test_env

pytestmark = pytest.mark.slow

RUNNER = "--runner=activation_compare.runner.DaskRunner"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
TAG_WORKER = "activation_compare.worker"
FOUR_MODELS = "compare.activations=relu rrelu,training.seeds=0 1"


def _children(client, experiment: str) -> dict:
    """The experiment's model runs by name, checking there is one parent and it FINISHED."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, experiment
    runs = client.search_runs([exp.experiment_id], max_results=100)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED"]
    return {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}


def _history(client, run, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))


def _run(project, server, experiment: str, *args: str, env: dict | None = None):
    result = kedro_cli(
        project, "run", "--env", "smoke", "--pipeline=compare", "--params", FOUR_MODELS, *args,
        env={"MLFLOW_TRACKING_URI": server.url, "MLFLOW_EXPERIMENT_NAME": experiment, **(env or {})},
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def test_compare_on_two_workers_tracks_every_model_like_the_sequential_run(
    tmp_path, dask_cluster, mlflow_server
):
    client = mlflow_server.client()
    with dask_cluster.client() as dask_client:
        workers = set(dask_cluster.address_of(dask_client).values())

    # TensorFlow sums in an order that depends on its thread count; a worker trains
    # with one thread (its --nthreads), so the reference does too.
    one_thread = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    _run(copy_project(tmp_path / "sequential"), mlflow_server, "sequential", env=one_thread)
    result = _run(
        copy_project(tmp_path / "dask"), mlflow_server, "dask", RUNNER,
        env={"DASK_SCHEDULER_ADDRESS": dask_cluster.address},
    )
    # The workers' progress lines reach the driver's log, each model's every epoch.
    for activation in ("relu", "rrelu"):
        for seed in (0, 1):
            for epoch in (1, 2):
                assert f"{activation}, seed {seed}: epoch {epoch}/2" in result.stdout + result.stderr, (
                    activation, seed, epoch, result.stdout[-3000:])

    sequential, dask = _children(client, "sequential"), _children(client, "dask")
    assert sorted(dask) == ["relu-seed0", "relu-seed1", "rrelu-seed0", "rrelu-seed1"]
    for name, run in dask.items():
        assert run.info.status == "FINISHED", name
        for key in EPOCH_METRICS:
            history = _history(client, run, key)
            assert len({step for step, _ in history}) == len(history) == 2, (name, key)  # every epoch once
            # Deterministic training: the same seed gives the same numbers on a worker.
            assert history == _history(client, sequential[name], key), (name, key)
        assert run.data.metrics["test_accuracy"] == sequential[name].data.metrics["test_accuracy"]
    used = {run.data.tags.get(TAG_WORKER) for run in dask.values()}
    assert used == workers  # each child names the worker that trained it, and both worked


def test_a_worker_killed_mid_training_does_not_fail_the_run(tmp_path, dask_cluster, mlflow_server):
    client = mlflow_server.client()
    project = copy_project(tmp_path / "project")
    epochs = 12  # room for the kill to land mid-training, even with fast (bfloat16) epochs
    with dask_cluster.client() as dask_client:
        names = {address: name for name, address in dask_cluster.address_of(dask_client).items()}
        run = _start(project, mlflow_server, dask_cluster, epochs)
        try:
            victim, model = _worker_mid_training(client, dask_client, names)
            dask_cluster.kill(victim)
            stdout, stderr = run.communicate(timeout=900)
        finally:
            if run.poll() is None:
                run.kill()
    assert run.returncode == 0, stdout[-3000:] + stderr[-6000:]
    # The workers' log lines reach the driver: the model went on from its checkpoint.
    resumed = re.search(rf"resuming at epoch (\d+)/{epochs}", stdout + stderr)
    assert resumed and 2 <= int(resumed.group(1)) <= epochs, stdout[-6000:] + stderr[-6000:]

    children = _children(client, "killed")
    assert len(children) == 4
    survivor = {address for address, name in names.items() if name != victim}
    assert {children[model].data.tags[TAG_WORKER]} == survivor  # the worker that finished it
    for name, child in children.items():
        assert child.info.status == "FINISHED", name
        for key in EPOCH_METRICS:
            steps = [step for step, _ in _history(client, child, key)]
            assert steps == list(range(steps[0], steps[0] + epochs)), (name, key)  # gapless, each once


def _start(project, server, cluster, epochs: int, experiment: str = "killed"):
    env = test_env(
        MLFLOW_TRACKING_URI=server.url, MLFLOW_EXPERIMENT_NAME=experiment,
        DASK_SCHEDULER_ADDRESS=cluster.address,
    )
    return subprocess.Popen(
        [KEDRO, "run", "--env", "smoke", "--pipeline=compare", RUNNER,
         "--params", f"{FOUR_MODELS},training.epochs={epochs}"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _worker_mid_training(
    client, dask_client, names: dict[str, str], experiment: str = "killed"
) -> tuple[str, str]:
    """A worker whose model has logged its first epoch and not its last: (worker name, run name)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs([exp.experiment_id]) if exp else []
        started = {
            r.data.tags.get(TAG_WORKER): r.info.run_name
            for r in runs
            if r.info.status == "RUNNING" and len(client.get_metric_history(r.info.run_id, "loss")) == 1
        }
        busy = {address for address, keys in dask_client.processing().items() if keys}
        for address in started.keys() & busy:
            return names[address], started[address]
        time.sleep(0.2)
    raise AssertionError("no model was seen mid-training")



def test_ctrl_c_on_the_driver_stops_the_workers_and_marks_the_runs_killed(
    tmp_path, dask_cluster, mlflow_server, terminal_sigint
):
    client = mlflow_server.client()
    project = copy_project(tmp_path / "project")
    with dask_cluster.client() as dask_client:
        names = {address: name for name, address in dask_cluster.address_of(dask_client).items()}
        run = _start(project, mlflow_server, dask_cluster, epochs=20, experiment="interrupted")
        try:
            _worker_mid_training(client, dask_client, names, experiment="interrupted")
            run.send_signal(signal.SIGINT)
            stdout, stderr = run.communicate(timeout=300)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode != 0
        assert "Cancelled" in stdout + stderr
        # The workers that trained for the run were restarted: nothing of it runs on.
        deadline = time.monotonic() + 60
        while any(dask_client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(dask_client.processing().values())

    exp = client.get_experiment_by_name("interrupted")
    runs = client.search_runs([exp.experiment_id])
    seen = [(r.info.run_name, r.info.status) for r in runs]
    # Every run still going at Ctrl-C ends KILLED, the parent too; a model that had
    # already trained all its epochs (fast ones do, in bfloat16) stays FINISHED.
    parent = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "KILLED", seen
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert any(r.info.status == "KILLED" for r in children), seen
    for child in children:
        if child.info.status != "KILLED":
            assert child.info.status == "FINISHED", seen
            assert len(client.get_metric_history(child.info.run_id, "loss")) == 20, seen


def test_a_local_cluster_run_shows_each_models_epochs_and_not_dasks_start_up(tmp_path):
    """No scheduler configured: the run's own LocalCluster, whose workers write to this terminal."""
    result = kedro_cli(copy_project(tmp_path / "project"), "run", "--env", "smoke", "--pipeline=compare",
                       RUNNER, "--runner-params", "n_workers=2", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    for activation in ("relu", "rrelu"):
        for epoch in (1, 2):
            assert f"{activation}, seed 0: epoch {epoch}/2" in output, output[-6000:]
    assert "Start worker at" not in output and "Run out-of-band function" not in output, output[-6000:]
