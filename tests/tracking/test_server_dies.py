"""A tracking server that dies mid-run: training goes on, the checkpoint is kept, the rerun continues the run.

A real ``mlflow server`` (SQLite backend, proxied artifacts) and the real
``kedro run`` of one model (relu, 6 epochs, smoke data): the server is
SIGKILLed once the model's run has logged epoch 2 (the run paused meanwhile). The run trains to the end
with warnings (with the default ``request_max_retries`` each failed call gives
up after about 5 s against a closed port, so no MLFLOW_HTTP_* override is
needed), exits 0, and leaves the finished model in its checkpoint folder. A
server restarted on the same database and artifact folder, and the same
command again: the model is reused (not trained again) and its MLflow run,
left RUNNING by the dead server, is continued, not duplicated: RUNNING again,
re-parented under the rerun's own run, every epoch 1..6 of each curve logged
exactly once (back-filled from the checkpoint), FINISHED.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import metric_steps, test_env
from mlflow import MlflowClient

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EPOCHS = 6
COMMAND = (
    "run", "--env", "smoke", "--pipeline=compare",
    "--params", f"training.epochs={EPOCHS},compare.activations=relu",
)


def _logged_loss(client: MlflowClient, experiment: str) -> int:
    """The highest epoch any run of the experiment has logged (0 while there is none)."""
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return max(
        (m.step for r in runs for m in client.get_metric_history(r.info.run_id, "loss")), default=0
    )


def _kill_server_at(server, process: subprocess.Popen, experiment: str, step: int, log: Path) -> float:
    """SIGKILL the server (its whole process group) once a run has logged ``step``; returns when."""
    client = MlflowClient(server.url)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"kedro ended before the server could be killed:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(Exception):  # the experiment is being created
            if _logged_loss(client, experiment) >= step:
                # The run is paused while its server dies: a fast epoch (bfloat16) would
                # otherwise log the whole training before the kill.
                os.killpg(process.pid, signal.SIGSTOP)
                try:
                    os.killpg(server.process.pid, signal.SIGKILL)
                    server.process.wait(timeout=30)
                finally:
                    os.killpg(process.pid, signal.SIGCONT)
                return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(f"no epoch {step} logged:\n{log.read_text()[-4000:]}")


def test_a_server_that_dies_mid_run_loses_nothing_and_the_rerun_continues_the_run(tmp_path, tracking):
    project = tracking.copy_project(tmp_path / "project")
    root = tmp_path / "server"
    root.mkdir()
    server = tracking.MlflowServer(root)
    log = tmp_path / "first.log"
    try:
        env = test_env(MLFLOW_TRACKING_URI=server.url)
        with open(log, "w") as handle:
            process = subprocess.Popen(
                [str(tracking.BIN / "kedro"), *COMMAND], cwd=project, env=env,
                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            )
            try:
                killed_at = _kill_server_at(server, process, tracking.SMOKE_EXPERIMENT, 2, log)
                code = process.wait(timeout=600)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
        first = log.read_text()
        print(f"first run: exit {code}, {time.monotonic() - killed_at:.0f} s after the server died")
    finally:
        server.stop()
    (root / "server.log").rename(root / "first-server.log")

    # Training went on without the server, with warnings, to a clean end (exit 0: a failed
    # MLflow call is a warning), and kept the finished model in its checkpoint folder.
    assert code == 0, first[-5000:]
    failed_epoch = re.search(r"MLflow: could not log epoch (\d+) of relu-seed0", first)
    assert failed_epoch, first[-4000:]
    assert f"epoch {EPOCHS}/{EPOCHS}" in first and "Traceback" not in first, first[-4000:]
    assert "they stay RUNNING" in first, first[-4000:]
    [state_file] = (project / "data/smoke/06_models/checkpoints/relu_seed0").glob("*/state.json")
    state = json.loads(state_file.read_text())
    assert state["status"] == "finished" and state["epochs_done"] == EPOCHS, state
    assert (state_file.parent / f"epoch-{EPOCHS:04d}.npz").stat().st_size > 0

    server = tracking.MlflowServer(root)  # the same database and artifact folder
    try:
        client = MlflowClient(server.url)
        [before] = tracking.runs_of(client)
        assert before.info.status == "RUNNING"  # nobody could end it
        died_at = max(metric_steps(client, before.info.run_id, "loss"))
        assert 2 <= died_at < EPOCHS, "the server died after the last epoch: nothing was tested"
        assert int(failed_epoch.group(1)) == died_at + 1  # the first epoch the dead server missed
        live = {m.step: m.value for m in client.get_metric_history(before.info.run_id, "loss")}

        result = tracking.kedro_cli(project, *COMMAND, env={"MLFLOW_TRACKING_URI": server.url})
        second = result.stdout + result.stderr
        assert result.returncode == 0, second[-5000:]
        assert f"already trained ({EPOCHS} epochs); reused" in second, second[-4000:]
        assert "epoch 1/" not in second, second[-4000:]  # nothing trained again

        runs = {r.info.run_id: r for r in tracking.runs_of(client)}
        assert len(runs) == 2, [(r.info.run_name, r.info.status) for r in runs.values()]
        continued = runs.pop(before.info.run_id)  # the same run, not a new one
        [new] = runs.values()
        tags = continued.data.tags
        # Continued under the rerun's run (a single-model run is the parent of the run it continues).
        assert tags["mlflow.parentRunId"] == new.info.run_id
        assert tags["kedro.run_id"] == new.data.tags["kedro.run_id"]
        assert tags["kedro.previous_run_ids"] == before.data.tags["kedro.run_id"]
        assert tags["kedro.training"] == "resumed"
        assert new.info.status == "FINISHED"
        # FINISHED, epochs 1..6 of every curve exactly once (back-filled), model, figures, report.
        tracking.assert_model_run(client, continued, activation="relu", seed=0, epochs=EPOCHS)
        # The steps logged live before the server died are kept; the rest come from the checkpoint:
        # the curve is the history the rerun saved, step for step.
        logged = {m.step: m.value for m in client.get_metric_history(continued.info.run_id, "loss")}
        assert {step: logged[step] for step in live} == live
        history = pd.read_csv(tracking.saved_output(project, tags["kedro.run_id"], "07_model_output/relu_seed0_history.csv"))
        assert [logged[step] for step in range(1, EPOCHS + 1)] == pytest.approx(history["loss"].tolist())
    finally:
        server.stop()
