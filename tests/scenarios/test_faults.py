"""When things go wrong in a whole run: full or read-only disks, NaN losses, Ctrl-C, changed
settings, and MLflow runs of resumed models.

The checkpoints themselves (decisions, kills at every epoch-end step, locks)
are tested with a tiny model in ``tests/training_state/``. Here a few tests run
the smoke pipeline in this process (TensorFlow is loaded once) and two run the
real CLI inside a private mount namespace to get a genuinely full / read-only disk.
"""

from __future__ import annotations

import errno
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    KEDRO,
    checkpoint_folders,
    checkpoint_state,
    copy_project,
    logged_messages,
    run_output,
    run_session,
    test_env,
)
from mlflow import MlflowClient
from mlflow.entities import ViewType

from activation_compare import storage, training_events

CHECKPOINT_LOGGER = "activation_compare.training_state.checkpoints"
# The smoke environment's outputs (conf/smoke/globals.yml).
OUTPUTS = Path("data/smoke")


@pytest.fixture
def messages():
    with logged_messages(CHECKPOINT_LOGGER) as lines:
        yield lines


# --- disks: full, read-only, in the way ---------------------------------------------------------


def test_errno_is_found_where_h5py_and_tensorflow_put_it():
    assert storage.error_number(OSError(28, "No space left on device")) == 28
    assert storage.error_number(OSError("file write failed: errno = 28, error message = 'No space'")) == 28
    assert storage.is_storage_error(OSError("Unable to create file (errno = 30)"))
    assert not storage.is_storage_error(OSError("something else"))


def test_a_full_disk_on_a_catalog_save_names_the_output(tmp_path, monkeypatch):
    from activation_compare.datasets.atomic import AtomicTextDataset

    target = tmp_path / "08_reporting" / "comparison.md"
    target.parent.mkdir()  # an existing folder stays; one the save created is removed with its failure
    real_open = open

    def full(path, mode="r", *args, **kwargs):
        if "comparison.md" in str(path) and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(storage.StorageError) as raised:
        AtomicTextDataset(filepath=str(target)).save("| table |")
    monkeypatch.undo()
    assert str(raised.value).startswith(f"Cannot write the output {target}: No space left on device (ENOSPC)")
    assert not list(target.parent.iterdir())  # no temporary file left behind


def test_check_writable_lists_every_bad_folder(tmp_path):
    blocker = tmp_path / "data" / "07_model_output"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where a folder should be")
    with pytest.raises(storage.StorageError) as raised:
        storage.check_writable([tmp_path / "data" / "06_models", blocker, blocker / "sub"])
    message = str(raised.value)
    assert "2 folder(s)" in message and str(blocker) in message and "nothing was run" in message
    assert (tmp_path / "data" / "06_models").is_dir()


# --- the pipeline, in this process ----------------------------------------------------------------


def _runs(project: Path, session_id: str) -> list:
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("activation-compare-smoke")
    return client.search_runs(
        [experiment.experiment_id], f"tags.`kedro.run_id` = '{session_id}'", run_view_type=ViewType.ALL
    )


ONE_MODEL = {"compare": {"activations": ["relu"]}, "training": {"epochs": 1}}


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return copy_project(tmp_path / "project")


def _checkpoints(project: Path, model: str = "relu_seed0") -> list[Path]:
    """The model's checkpoint folders, one per training fingerprint."""
    return checkpoint_folders(project / OUTPUTS / "06_models/checkpoints" / model)


def _history(project: Path, session_id: str, model: str = "relu_seed0") -> pd.DataFrame:
    path = project / OUTPUTS / "07_model_output" / f"{model}_history.csv"
    return pd.read_csv(run_output(path, session_id))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pipeline_reuses_then_trains_new_settings_beside_then_retrains(project, messages):
    first = run_session(project, ONE_MODEL)
    (folder,) = _checkpoints(project)
    record = checkpoint_state(folder)
    (run,) = _runs(project, first)
    assert run.data.tags["kedro.training"] == "trained"

    second = run_session(project, ONE_MODEL)  # the same: reused
    pd.testing.assert_frame_equal(_history(project, second), _history(project, first))
    assert checkpoint_state(folder)["updated"] == record["updated"]
    (reused,) = _runs(project, second)
    assert reused.info.status == "FINISHED" and reused.data.tags["kedro.training"] == "reused"
    assert reused.data.tags["kedro.reused_from_run_id"] == run.info.run_id
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(reused.info.run_id, "val_accuracy")] == [1]

    changed = {**ONE_MODEL, "training": {"epochs": 1, "optimizer": {"learning_rate": 0.002}}}
    run_session(project, changed)
    assert any(
        "no checkpoint with these settings" in line
        and "training.optimizer.learning_rate changed from 0.001 to 0.002" in line
        for line in messages
    ), messages
    assert checkpoint_state(folder) == record  # the other settings' checkpoint is kept
    (new,) = [f for f in _checkpoints(project) if f != folder]
    assert checkpoint_state(new)["fingerprint"]["training.optimizer.learning_rate"] == 0.002

    retrained = {**ONE_MODEL, "training": {"epochs": 1, "optimizer": {"learning_rate": 0.002}, "retrain": True}}
    created = checkpoint_state(new)["created"]
    time.sleep(1.1)  # "created" has a one-second resolution
    last = run_session(project, retrained)
    assert checkpoint_state(new)["created"] > created
    assert any("training.retrain=true asks to train it again" in line for line in messages)
    (run,) = _runs(project, last)
    assert run.data.tags["kedro.training"] == "trained"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_keeps_the_checkpoint_and_the_rerun_continues_the_killed_run(project, terminal_sigint):
    """A real SIGINT after epoch 2 (as Ctrl-C); then the same run again, in the same process."""
    import signal

    params = {"compare": {"activations": ["relu"]}, "training": {"epochs": 3}}

    def ctrl_c(event):
        if event.epoch == 2:
            signal.raise_signal(signal.SIGINT)

    training_events.subscribe(ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            run_session(project, params)
    finally:
        training_events.unsubscribe(ctrl_c)
    (folder,) = _checkpoints(project)
    record = checkpoint_state(folder)
    assert record["status"] == "training" and record["epochs_done"] == 2
    assert (folder / record["weights"]).is_file()
    deadline = time.monotonic() + 30
    while {r.info.status for r in _runs(project, raised.value.session_id)} != {"KILLED"}:
        assert time.monotonic() < deadline, [r.info.status for r in _runs(project, raised.value.session_id)]
        time.sleep(0.2)
    (killed,) = [r for r in _runs(project, raised.value.session_id) if r.info.run_name == "relu-seed0"]

    # The lock the interrupted training held in this process was released with it.
    again = run_session(project, params)
    # The killed model run is continued by this kedro run, not replaced.
    assert killed.info.run_id in [r.info.run_id for r in _runs(project, again)]
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    model_run = client.get_run(killed.info.run_id)
    assert model_run.info.status == "FINISHED"
    for key in ("loss", "val_accuracy", "epoch_time_s"):
        assert sorted(m.step for m in client.get_metric_history(model_run.info.run_id, key)) == [1, 2, 3]
    assert _history(project, again)["epoch"].tolist() == [1, 2, 3]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_nan_loss_fails_the_training_and_its_mlflow_run(project):
    """Adam at 1e12 diverges to NaN in the first epoch (1e6 only reaches ~1e22, still finite)."""
    from activation_compare.pipelines.modelling.nodes import NonFiniteLossError

    params = {"compare": {"activations": ["relu", "rrelu"]},
              "training": {"epochs": 2, "optimizer": {"learning_rate": 1e12}}}
    with pytest.raises(NonFiniteLossError, match=r"became -?(nan|inf) at epoch 1;") as raised:
        run_session(project, params)
    runs = _runs(project, raised.value.session_id)
    assert {r.info.status for r in runs} == {"FAILED"}
    failed = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [r.info.run_name for r in failed] == ["relu-seed0"]
    assert failed[0].data.tags["kedro.error"].startswith("NonFiniteLossError")
    # The diverged epoch is never checkpointed, and the lock is free again.
    (folder,) = _checkpoints(project)
    record = checkpoint_state(folder)
    assert record["epochs_done"] == 0 and record["status"] == "training"
    import fcntl
    import os

    fd = os.open(folder / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if still held
    finally:
        os.close(fd)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_unwritable_output_folder_fails_before_anything_runs(project):
    blocker = project / OUTPUTS / "07_model_output"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(blocker, ignore_errors=True)
    blocker.write_text("not a folder")
    with pytest.raises(storage.StorageError) as raised:
        run_session(project, ONE_MODEL)
    message = str(raised.value)
    assert f"Cannot write the folder {blocker}: File exists (EEXIST); a file is in the way" in message
    assert not (project / OUTPUTS / "06_models/relu_seed0.keras").exists()
    # Checked before the MLflow hook opens runs: nothing to clean up there.
    assert not (project / "mlflow.db").exists()


# --- a genuinely full / read-only disk (private mount namespace, real CLI) -------------------


def _unshare_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt 2>/dev/null || exit 3"],
        capture_output=True,
    )
    return probe.returncode == 0


# CI runs as root with mount rights: there these tests must run (the ci marker).
needs_mounts = pytest.mark.skipif(not _unshare_available(), reason="needs unshare -m and mount (root)")


def _kedro_in_namespace(project: Path, mount: str, *params: str) -> subprocess.CompletedProcess:
    env = test_env(COLUMNS="250")
    command = " ".join([KEDRO, "run", "--env", "smoke", "--pipeline=compare", *params])
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mount} && exec {command}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )


@needs_mounts
@pytest.mark.ci
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_disk_full_during_training_names_the_checkpoint(project):
    checkpoints_dir = project / OUTPUTS / "06_models/checkpoints"
    checkpoints_dir.mkdir(parents=True)
    # Room for the start-up checks (64 KiB probes), not for a 0.5 MB checkpoint.
    result = _kedro_in_namespace(
        project, f"mount -t tmpfs -o size=256k tmpfs {checkpoints_dir}",
        "--params", "compare.activations=relu,training.epochs=1",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]  # an error, not a crash at exit
    assert "Segmentation fault" not in output and "Exception ignored" not in output
    assert "Cannot write the training checkpoint" in output, output[-3000:]
    assert "epoch-0001.npz: No space left on device (ENOSPC); the disk is full" in output
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("activation-compare-smoke").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "No space left on device" in runs[0].data.tags["kedro.error"]


@needs_mounts
@pytest.mark.ci
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_read_only_data_folder_fails_at_once_naming_it(project):
    models = project / OUTPUTS / "06_models"
    models.mkdir(parents=True)
    result = _kedro_in_namespace(project, f"mount --bind {models} {models} && mount -o remount,ro,bind {models}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "The run cannot write its outputs" in output, output[-3000:]
    assert f"Cannot write the folder {models}" in output and "EROFS" in output
    assert "Running node" not in output  # failed before the first node
