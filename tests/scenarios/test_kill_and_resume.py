"""Nothing lost: interrupted ``kedro run``s resume, finished models are reused, MLflow has no gap.

One chain of three real ``kedro run --env smoke`` processes on one project copy
(a bigger synthetic training set, so an epoch lasts a few seconds):

1. SIGTERM while relu trains (after its first checkpoint): runs end KILLED,
   relu's checkpoint is kept;
2. the same command: relu resumes (its MLflow run continues) and finishes
   training, rrelu starts and the process is SIGKILLed mid-epoch after two
   epochs (Kedro runs both training nodes before either evaluation, so relu's
   run is left RUNNING too);
3. the same command: relu is reused (not trained again), rrelu resumes; both
   MLflow runs are the ones of the earlier processes, continued, and both
   histories and runs have epochs 1..E exactly once.

Each model has one checkpoint folder here (one training fingerprint):
``data/smoke/06_models/checkpoints/<model>/<fingerprint>/``; each run's files
are Kedro versions named after the run.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

import activation_compare.layers  # noqa: F401 - registers RReLU for loading
from conftest import KEDRO, checkpoint_state, copy_project, metric_steps, run_output, test_env

EPOCHS = 8  # room for the kills to land mid-training, even with fast (bfloat16) epochs
ARGS = ("run", "--env", "smoke", "--pipeline=compare", "--params", f"training.epochs={EPOCHS}")
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
EXPERIMENT = "activation-compare-smoke"
OUTPUTS = Path("data/smoke")  # conf/smoke/globals.yml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _start(project: Path, name: str) -> tuple[subprocess.Popen, Path]:
    log = project / f"{name}.log"
    handle = open(log, "w")  # noqa: SIM115 - closed by the child's exit
    process = subprocess.Popen(
        [KEDRO, *ARGS], cwd=project, env=test_env(COLUMNS="250"), stdout=handle, stderr=subprocess.STDOUT
    )
    handle.close()
    return process, log


def _folder(project: Path, model: str) -> Path | None:
    """The model's checkpoint folder (one fingerprint in this test), once it exists."""
    found = sorted((project / OUTPUTS / "06_models/checkpoints" / model).glob("*/state.json"))
    assert len(found) <= 1, found
    return found[0].parent if found else None


def _state(project: Path, model: str) -> dict | None:
    folder = _folder(project, model)
    try:
        return checkpoint_state(folder) if folder else None
    except (FileNotFoundError, ValueError):
        return None


def _latest(project: Path, relative: str) -> Path:
    return run_output(project / OUTPUTS / relative)


def _wait_for_epochs(process: subprocess.Popen, project: Path, model: str, epochs: int, log: Path) -> dict:
    """Block until ``model``'s checkpoint holds ``epochs`` epochs (and training goes on)."""
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        state = _state(project, model)
        if state and state["status"] == "training" and state["epochs_done"] >= epochs:
            return state
        if process.poll() is not None:
            raise AssertionError(f"kedro exited ({process.returncode}) early:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"{model} never reached {epochs} epochs:\n{log.read_text()[-4000:]}")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("resume") / "project")
    facts: dict = {"project": project}
    started = time.monotonic()

    # 1. SIGTERM while relu trains.
    process, log = _start(project, "run1")
    _wait_for_epochs(process, project, "relu_seed0", 1, log)
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    facts["rc1"] = process.wait(timeout=120)
    facts["log1"] = log.read_text()
    facts["relu_after_1"] = _state(project, "relu_seed0")
    facts["relu_files_after_1"] = sorted(p.name for p in _folder(project, "relu_seed0").iterdir())

    # 2. Same command: relu resumes; SIGKILL mid-epoch once rrelu has two epochs.
    process, log = _start(project, "run2")
    facts["rrelu_before_kill"] = _wait_for_epochs(process, project, "rrelu_seed0", 2, log)
    time.sleep(0.2)  # into the next epoch (one lasts seconds here)
    process.kill()
    facts["rc2"] = process.wait(timeout=60)
    facts["log2"] = log.read_text()
    facts["rrelu_after_2"] = _state(project, "rrelu_seed0")
    relu_state = _folder(project, "relu_seed0") / "state.json"
    facts["relu_after_2"] = {
        "history": _sha(_latest(project, "07_model_output/relu_seed0_history.csv")),
        "state": (_sha(relu_state), relu_state.stat().st_mtime_ns),
    }
    facts["relu_weights_after_2"] = keras.saving.load_model(_latest(project, "06_models/relu_seed0.keras")).get_weights()

    # 3. Same command, to the end.
    result = subprocess.run([KEDRO, *ARGS], cwd=project, env=test_env(COLUMNS="250"), capture_output=True, text=True, timeout=600)
    facts["rc3"] = result.returncode
    facts["log3"] = result.stdout + result.stderr
    facts["relu_after_3"] = {
        "history": _sha(_latest(project, "07_model_output/relu_seed0_history.csv")),
        "state": (_sha(relu_state), relu_state.stat().st_mtime_ns),
    }
    facts["seconds"] = time.monotonic() - started
    assert facts["rc3"] == 0, facts["log3"][-5000:]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs(
        [experiment.experiment_id], run_view_type=ViewType.ALL, order_by=["attributes.start_time ASC"]
    )
    facts["client"] = client
    facts["parents"] = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    facts["children"] = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return facts


def test_sigterm_ends_runs_killed_and_keeps_the_checkpoint(chain):
    assert chain["rc1"] != 0
    assert "SIGTERM received" in chain["log1"]
    state = chain["relu_after_1"]
    assert state["status"] == "training" and 1 <= state["epochs_done"] < EPOCHS
    assert [row["epoch"] for row in state["history"]] == list(range(1, state["epochs_done"] + 1))
    assert state["weights"] in chain["relu_files_after_1"]
    first_parent = chain["parents"][0]
    assert first_parent.info.status == "KILLED"
    # relu's run, KILLED by SIGTERM, was continued by the next kedro run.
    relu_run = next(c for c in chain["children"] if c.info.run_name == "relu-seed0")
    assert first_parent.data.tags["kedro.run_id"] in relu_run.data.tags["kedro.previous_run_ids"].split(",")
    assert first_parent.data.tags["kedro.resumed_in_run_id"] == chain["parents"][1].info.run_id


def test_sigkill_then_rerun_resumes_rrelu_from_its_last_epoch(chain):
    assert chain["rc2"] == -signal.SIGKILL
    killed = chain["rrelu_after_2"]
    assert killed["status"] == "training" and 2 <= killed["epochs_done"] < EPOCHS, killed["epochs_done"]
    log = chain["log3"]
    assert f"rrelu_seed0: resuming at epoch {killed['epochs_done'] + 1}/{EPOCHS}" in log
    assert "relu_seed0: already trained" in log

    project = chain["project"]
    history = pd.read_csv(_latest(project, "07_model_output/rrelu_seed0_history.csv"))
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    # The epochs trained before the kill are kept as they were, not trained again.
    before = pd.DataFrame(killed["history"])
    done = killed["epochs_done"]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s"):
        assert history[column].iloc[:done].tolist() == pytest.approx(before[column].tolist())
    assert history.notna().all().all()


def test_checkpoints_of_finished_models_are_cleaned(chain):
    for model in ("relu_seed0", "rrelu_seed0"):
        folder = _folder(chain["project"], model)
        state = _state(chain["project"], model)
        assert state["status"] == "finished" and state["epochs_done"] == EPOCHS
        # What reusing it needs (the last weights, the best validation epoch's, state.json)
        # and the lock file; no other epochs, no temporary files of the killed writes.
        kept = {".lock", "state.json", f"epoch-{EPOCHS:04d}.npz", state.get("best_weights") or ".lock"}
        assert sorted(p.name for p in folder.iterdir()) == sorted(kept)


def test_mlflow_runs_are_continued_with_every_epoch_once(chain):
    client, parents, children = chain["client"], chain["parents"], chain["children"]
    assert [p.info.status for p in parents] == ["KILLED", "KILLED", "FINISHED"]
    first, second, last = parents
    assert first.data.tags["kedro.resumed_in_run_id"] == second.info.run_id
    # The SIGKILLed parent was ended KILLED by the run that resumed its models.
    assert second.data.tags["kedro.resumed_in_run_id"] == last.info.run_id
    # One run per model across the three processes, each continued where it stopped.
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    relu_id, rrelu_id = (next(c.info.run_id for c in children if c.info.run_name == name)
                         for name in ("relu-seed0", "rrelu-seed0"))
    for run_id, sessions in ((relu_id, [first, second]), (rrelu_id, [second])):
        run = client.get_run(run_id)
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags["mlflow.parentRunId"] == last.info.run_id
        assert tags["kedro.run_id"] == last.data.tags["kedro.run_id"]
        assert tags["kedro.previous_run_ids"].split(",") == [p.data.tags["kedro.run_id"] for p in sessions]
        assert tags["kedro.previous_parent_run_id"] == second.info.run_id
        assert tags["kedro.training"] == "resumed"
        for key in EPOCH_METRICS:
            assert metric_steps(client, run_id, key) == list(range(1, EPOCHS + 1)), (run.info.run_name, key)
        assert metric_steps(client, run_id, "test_accuracy") == [0]
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
    # Logged curve == the Kedro history, step for step.
    history = pd.read_csv(_latest(chain["project"], "07_model_output/rrelu_seed0_history.csv"))
    logged = sorted(client.get_metric_history(rrelu_id, "val_accuracy"), key=lambda m: m.step)
    assert [m.value for m in logged] == pytest.approx(history["val_accuracy"].tolist())


def test_finished_model_is_not_trained_again(chain):
    after_2, after_3 = chain["relu_after_2"], chain["relu_after_3"]
    assert after_3["history"] == after_2["history"]  # the same history, saved again by run 3
    assert after_3["state"] == after_2["state"]  # checkpoint untouched (content and mtime)
    weights = keras.saving.load_model(_latest(chain["project"], "06_models/relu_seed0.keras")).get_weights()
    for saved, now in zip(chain["relu_weights_after_2"], weights):
        np.testing.assert_array_equal(saved, now)
