"""When things go wrong: training state decisions, kills at every epoch-end step, full or
read-only disks, NaN losses, model locks, and MLflow back-fill of resumed runs.

Most tests use a tiny Keras model and no Kedro (seconds); a few run the smoke
pipeline in this process (TensorFlow is loaded once) and two run the real CLI
inside a private mount namespace to get a genuinely full / read-only disk.
"""

from __future__ import annotations

import errno
import json
import logging
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from activation_compare import storage, training_events
from activation_compare.params import OptimizerParams, TrainingParams
from activation_compare.pipelines.modelling import checkpoints
from activation_compare.pipelines.modelling.checkpoints import TrainingState
from activation_compare.training_events import EpochEventsCallback, TrainingStart
from conftest import KEDRO, copy_project

CHECKPOINT_LOGGER = "activation_compare.pipelines.modelling.checkpoints"


# --- a tiny model, trained for real -------------------------------------------------------


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _data(n: int = 24, shift: float = 0.0) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.random((n, 4), dtype=np.float32) + np.float32(shift), rng.integers(0, 3, n))


def _tiny(learning_rate: float = 0.01) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="tiny")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def _params(**changes) -> TrainingParams:
    return TrainingParams(**{"epochs": 3, "batch_size": 8, "verbose": 0, **changes})


def _train(state: TrainingState, params: TrainingParams, data: Split | None = None, model=None):
    """What train_model does with the training state, on the tiny model."""
    data = data or _data()
    model = model or _tiny(params.optimizer.learning_rate)
    session = state.begin(model, data, data, params, seed=0)
    if not session.done:
        model.fit(
            data.images, data.labels, batch_size=params.batch_size, epochs=params.epochs, verbose=0,
            callbacks=[*session.callbacks, EpochEventsCallback(params.epochs)],
        )
    return model, session, session.finish()


class _Messages(logging.Filter):
    """Records what the logger logs. A filter, not a handler: Kedro's logging set-up
    (``dictConfig``) removes the handlers of the project's child loggers, not their filters."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.lines.append(record.getMessage())
        return True


@pytest.fixture
def messages():
    recorder = _Messages()
    logger = logging.getLogger(CHECKPOINT_LOGGER)
    logger.addFilter(recorder)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield recorder.lines
    finally:
        logger.removeFilter(recorder)
        logger.setLevel(level)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- decisions: reuse, resume, discard ------------------------------------------------------


def test_finished_model_is_reused_and_more_epochs_continue(tmp_path, messages):
    state = TrainingState(tmp_path / "m")
    model, _, history = _train(state, _params())
    assert history["epoch"].tolist() == [0, 1, 2]
    record = state.read()
    assert record["status"] == "finished" and _files(state.directory) == [".lock", "epoch-0002.npz", "state.json"]

    again, session, same = _train(state, _params())
    assert session.mode == "reuse" and session.done
    pd.testing.assert_frame_equal(same, history)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)  # the saved weights, not a new training
    assert state.read()["updated"] == record["updated"]  # untouched
    assert any("already trained (3 epochs)" in line for line in messages)

    _, session, longer = _train(state, _params(epochs=5))
    assert session.mode == "resume" and session.initial_epoch == 3
    assert longer["epoch"].tolist() == [0, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(longer.iloc[:3], history)
    assert any("training.epochs grew from 3 to 5" in line for line in messages)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"params": {"optimizer": OptimizerParams(learning_rate=0.02)}},
         "training.optimizer.learning_rate changed from 0.01 to 0.02"),
        ({"params": {"batch_size": 4}}, "training.batch_size changed from 8 to 4"),
        ({"data": _data(shift=0.5)}, "the train set changed (same size, other images)"),
        ({"data": _data(n=30)}, "train_set.size changed from 24 to 30"),
        ({"params": {"epochs": 2}}, "it has 3 epochs, more than training.epochs=2"),
        ({"params": {"retrain": True}}, "training.retrain=true asks to train it again"),
    ],
)
def test_a_changed_training_input_discards_the_checkpoint_and_says_why(tmp_path, messages, change, reason):
    state = TrainingState(tmp_path / "m")
    _train(state, _params(optimizer=OptimizerParams(learning_rate=0.01)))
    first = state.read()
    params = _params(**{"optimizer": OptimizerParams(learning_rate=0.01), **change.get("params", {})})
    _, session, history = _train(state, params, data=change.get("data"))
    assert session.mode == "fresh" and session.initial_epoch == 0
    assert history["epoch"].tolist() == list(range(params.epochs))
    assert len(state.read()["history"]) == params.epochs and first["status"] == "finished"
    discarded = [line for line in messages if "discarded the training state" in line]
    assert len(discarded) == 1 and reason in discarded[0], messages


def test_a_different_activation_is_a_different_model(tmp_path, messages):
    from activation_compare.models import build_seed_cnn

    state = TrainingState(tmp_path / "m")
    images = Split(np.zeros((8, 32, 32, 3), np.float32), np.arange(8) % 10)
    params = _params(epochs=1)
    for spec in ({"type": "rrelu"}, {"type": "rrelu", "lower": 0.2}):
        model = build_seed_cnn(spec, seed=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        _train(state, params, images, model)
    assert any("the model (architecture or activation parameters) changed" in line for line in messages)


# --- a kill between any two steps of the epoch-end work ------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even ``finally`` blocks that matter)."""


CRASH_POINTS = {
    # crash point: epochs the checkpoint holds afterwards (the kill is during epoch 1's end)
    "while writing the weights": 1,
    "before renaming the weights into place": 1,
    "before committing state.json": 1,
    "before removing the previous weights": 2,
    "before publishing the epoch (MLflow)": 2,
}


@pytest.mark.parametrize("crash", list(CRASH_POINTS))
def test_a_kill_between_any_two_epoch_end_steps_is_recoverable(tmp_path, monkeypatch, crash):
    state = TrainingState(tmp_path / "m")
    data, params = _data(), _params()
    model = _tiny()
    session = state.begin(model, data, data, params, seed=0)
    with monkeypatch.context() as patch:
        real_write, real_replace = checkpoints.atomic_write_bytes, storage.os.replace
        real_commit, real_unlink = TrainingState._commit, Path.unlink

        def write(path, data, what="file"):
            if path.name == "epoch-0001.npz" and crash == "while writing the weights":
                storage.temporary_sibling(path).write_bytes(data[: len(data) // 2])
                raise Killed
            return real_write(path, data, what)

        def replace(temporary, final):
            if Path(final).name == "epoch-0001.npz" and crash == "before renaming the weights into place":
                Path(str(temporary) + ".left-by-kill.tmp").write_bytes(Path(temporary).read_bytes())
                raise Killed
            return real_replace(temporary, final)

        def commit(self, record):
            if record.get("weights") == "epoch-0001.npz" and crash == "before committing state.json":
                raise Killed
            return real_commit(self, record)

        def unlink(self, missing_ok=False):
            if self.name == "epoch-0000.npz" and crash == "before removing the previous weights":
                raise Killed
            return real_unlink(self, missing_ok=missing_ok)

        def publish(event):
            if event.epoch == 1 and crash == "before publishing the epoch (MLflow)":
                raise Killed

        patch.setattr(checkpoints, "atomic_write_bytes", write)
        patch.setattr(storage.os, "replace", replace)
        patch.setattr(TrainingState, "_commit", commit)
        patch.setattr(Path, "unlink", unlink)
        training_events.subscribe(publish)
        try:
            with pytest.raises(Killed):
                model.fit(data.images, data.labels, batch_size=8, epochs=3, verbose=0,
                          callbacks=[*session.callbacks, EpochEventsCallback(3)])
        finally:
            training_events.unsubscribe(publish)
    state.release()  # the process is gone: its lock with it

    expected = CRASH_POINTS[crash]
    record = json.loads((state.directory / "state.json").read_text())
    assert record["epochs_done"] == expected
    assert [row["epoch"] for row in record["history"]] == list(range(expected))

    # "Restart": a new process, a new model object, the same command.
    starts: list[TrainingStart] = []
    training_events.subscribe(starts.append, TrainingStart)
    try:
        restarted = TrainingState(tmp_path / "m")
        model2, session2, history = _train(restarted, params)
    finally:
        training_events.unsubscribe(starts.append)
    assert session2.mode == "resume" and session2.initial_epoch == expected
    assert starts[0].initial_epoch == expected and len(starts[0].history) == expected
    assert history["epoch"].tolist() == [0, 1, 2]
    assert [row["loss"] for row in record["history"]] == pytest.approx(history["loss"].iloc[:expected].tolist())
    # Orphans of the killed write are gone; only what reuse needs is left.
    assert _files(restarted.directory) == [".lock", "epoch-0002.npz", "state.json"]


def test_resume_restores_weights_and_optimizer_state(tmp_path):
    """Resumed from epoch 2 == the state an uninterrupted run had after epoch 2."""
    state = TrainingState(tmp_path / "m")
    data = _data()
    model, _, _ = _train(state, _params(epochs=2))
    fresh = _tiny()
    session = state.begin(fresh, data, data, _params(epochs=4), seed=0)
    assert session.initial_epoch == 2
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 6
    state.release()


def test_resumed_training_equals_an_uninterrupted_one(tmp_path):
    """train_model: 2 epochs, then resumed to 4 == 4 epochs straight (weights and history).

    The checkpoint holds every model variable (RReLU's random state included)
    and the optimizer's; the input pipeline draws epoch e's order from (seed, e).
    """
    from activation_compare.datasets.types import LabelledImages
    from activation_compare.params import ModelParams
    from activation_compare.pipelines.modelling.nodes import build_model, train_model

    rng = np.random.default_rng(0)
    data = LabelledImages(rng.random((48, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 48))

    def run(folder: str, epochs: int):
        model = build_model({"type": "rrelu"}, ModelParams(), seed=3, name="rrelu")
        params = _params(epochs=epochs, batch_size=16)
        return train_model(model, data, data, params, TrainingState(tmp_path / folder), seed=3)

    run("resumed", 2)
    resumed, resumed_history = run("resumed", 4)
    straight, straight_history = run("straight", 4)
    assert resumed_history["epoch"].tolist() == [0, 1, 2, 3]
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(resumed_history[columns], straight_history[columns])
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- the lock: two trainings of one model never interleave ------------------------------------


def test_a_second_trainer_waits_for_the_lock(tmp_path, messages, monkeypatch):
    monkeypatch.setattr(checkpoints, "_LOCK_LOG_EVERY_S", 0.2)
    data, params = _data(), _params()
    first = TrainingState(tmp_path / "m")
    first.begin(_tiny(), data, data, params, seed=0)  # holds the lock
    got_it = threading.Event()

    def second():
        session = TrainingState(tmp_path / "m").begin(_tiny(), data, data, params, seed=0)
        got_it.set()
        session.state.release()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(1.0)
    assert not got_it.is_set()
    first.release()
    thread.join(timeout=30)
    assert got_it.is_set()
    assert any("another process is training this model" in line and "pid" in line for line in messages)


def test_an_interrupted_training_in_this_process_does_not_deadlock_the_next(tmp_path):
    """Ctrl-C in a notebook leaves the lock with no hook to free it; the next run takes it."""
    data, params = _data(), _params()
    TrainingState(tmp_path / "m").begin(_tiny(), data, data, params, seed=0)  # never released
    _, session, history = _train(TrainingState(tmp_path / "m"), params)
    assert session.mode == "resume" and history["epoch"].tolist() == [0, 1, 2]


# --- disks: full, read-only, in the way ---------------------------------------------------------


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_storage_errors_name_the_path_and_what_to_do(tmp_path, monkeypatch, number):
    state = TrainingState(tmp_path / "m")
    data, params = _data(), _params()
    model = _tiny()
    session = state.begin(model, data, data, params, seed=0)

    real_open = open

    def fail(path, mode="r", *args, **kwargs):  # as the disk would, on the checkpoint only
        if "epoch-0000.npz" in str(path) and "w" in mode:
            raise OSError(number, "refused", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fail)
    with pytest.raises(storage.StorageError) as raised:
        model.fit(data.images, data.labels, epochs=1, verbose=0, callbacks=session.callbacks)
    monkeypatch.undo()
    message = str(raised.value)
    assert f"Cannot write the training checkpoint {state.directory / 'epoch-0000.npz'}" in message
    assert errno.errorcode[number] in message and ";" in message
    assert not [p for p in state.directory.iterdir() if p.name.startswith(".") and "tmp" in p.name]
    state.release()

    def refuse(*args):
        raise OSError(number, "refused")

    with monkeypatch.context() as patch:
        patch.setattr(storage.os, "replace", refuse)
        with pytest.raises(storage.StorageError, match=r"Cannot write the training state .*state\.json"):
            storage.atomic_write_bytes(state.directory / "state.json", b"{}", what="training state")
    assert not [p for p in state.directory.iterdir() if p.name.startswith(".state.json")]


def test_errno_is_found_where_h5py_and_tensorflow_put_it():
    assert storage.error_number(OSError(28, "No space left on device")) == 28
    assert storage.error_number(OSError("file write failed: errno = 28, error message = 'No space'")) == 28
    assert storage.is_storage_error(OSError("Unable to create file (errno = 30)"))
    assert not storage.is_storage_error(OSError("something else"))


def test_a_full_disk_on_a_catalog_save_names_the_output(tmp_path, monkeypatch):
    from activation_compare.datasets.atomic import AtomicTextDataset

    target = tmp_path / "08_reporting" / "comparison.md"
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


def _session(project: Path, runtime_params: dict):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime_params) as session:
        try:
            session.run(pipeline_names=["compare"])
        except BaseException as exc:
            exc.session_id = session.session_id
            raise
        return session.session_id


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


@pytest.mark.timeout(600)
def test_pipeline_reuses_then_discards_on_new_params_then_retrains(project, messages):
    history_path = project / "data/07_model_output/relu_seed0_history.csv"
    state_path = project / "data/06_models/checkpoints/relu_seed0/state.json"
    first = _session(project, ONE_MODEL)
    trained = history_path.read_text()
    record = json.loads(state_path.read_text())
    (run,) = _runs(project, first)
    assert record["mlflow_run_id"] == run.info.run_id and run.data.tags["kedro.training"] == "trained"

    second = _session(project, ONE_MODEL)  # the same: reused
    assert history_path.read_text() == trained
    assert json.loads(state_path.read_text())["updated"] == record["updated"]
    (reused,) = _runs(project, second)
    assert reused.info.status == "FINISHED" and reused.data.tags["kedro.training"] == "reused"
    assert reused.data.tags["kedro.reused_from_run_id"] == run.info.run_id
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(reused.info.run_id, "val_accuracy")] == [0]

    changed = {**ONE_MODEL, "training": {"epochs": 1, "optimizer": {"learning_rate": 0.002}}}
    _session(project, changed)
    assert any(
        "discarded the training state" in line
        and "training.optimizer.learning_rate changed from 0.001 to 0.002" in line
        for line in messages
    ), messages
    assert json.loads(state_path.read_text())["fingerprint"]["training.optimizer.learning_rate"] == 0.002

    retrained = {**ONE_MODEL, "training": {"epochs": 1, "optimizer": {"learning_rate": 0.002}, "retrain": True}}
    created = json.loads(state_path.read_text())["created"]
    time.sleep(1.1)  # "created" has a one-second resolution
    last = _session(project, retrained)
    assert json.loads(state_path.read_text())["created"] > created
    assert any("training.retrain=true asks to train it again" in line for line in messages)
    (run,) = _runs(project, last)
    assert run.data.tags["kedro.training"] == "trained"


@pytest.mark.timeout(600)
def test_ctrl_c_keeps_the_checkpoint_and_the_rerun_continues_the_killed_run(project, terminal_sigint):
    """A real SIGINT after epoch 1 (as Ctrl-C); then the same run again, in the same process."""
    import signal

    params = {"compare": {"activations": ["relu"]}, "training": {"epochs": 3}}

    def ctrl_c(event):
        if event.epoch == 1:
            signal.raise_signal(signal.SIGINT)

    training_events.subscribe(ctrl_c)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            _session(project, params)
    finally:
        training_events.unsubscribe(ctrl_c)
    state_path = project / "data/06_models/checkpoints/relu_seed0/state.json"
    record = json.loads(state_path.read_text())
    assert record["status"] == "training" and record["epochs_done"] == 2
    assert (state_path.parent / record["weights"]).is_file()
    deadline = time.monotonic() + 30
    while {r.info.status for r in _runs(project, raised.value.session_id)} != {"KILLED"}:
        assert time.monotonic() < deadline, [r.info.status for r in _runs(project, raised.value.session_id)]
        time.sleep(0.2)

    # The lock the interrupted training held in this process is taken over.
    again = _session(project, params)
    runs = _runs(project, again)
    # One model: this kedro run's run, and under it the killed model run, continued.
    (run,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert sorted(r.info.run_id for r in runs) == sorted([run.info.run_id, record["mlflow_run_id"]])
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    model_run = client.get_run(record["mlflow_run_id"])
    assert model_run.info.status == "FINISHED"
    assert model_run.data.tags["mlflow.parentRunId"] == run.info.run_id
    for key in ("loss", "val_accuracy", "epoch_time_s"):
        assert sorted(m.step for m in client.get_metric_history(model_run.info.run_id, key)) == [0, 1, 2]
    history = pd.read_csv(project / "data/07_model_output/relu_seed0_history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]


@pytest.mark.timeout(600)
def test_nan_loss_fails_the_training_and_its_mlflow_run(project):
    """Adam at 1e12 diverges to NaN in the first epoch (1e6 only reaches ~1e22, still finite)."""
    from activation_compare.pipelines.modelling.nodes import NonFiniteLossError

    params = {"compare": {"activations": ["relu", "rrelu"]},
              "training": {"epochs": 2, "optimizer": {"learning_rate": 1e12}}}
    with pytest.raises(NonFiniteLossError, match=r"became -?(nan|inf) at epoch 0") as raised:
        _session(project, params)
    runs = _runs(project, raised.value.session_id)
    assert {r.info.status for r in runs} == {"FAILED"}
    failed = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert [r.info.run_name for r in failed] == ["relu-seed0"]
    assert failed[0].data.tags["kedro.error"].startswith("NonFiniteLossError")
    # The diverged epoch is never checkpointed, and the lock is free again.
    record = json.loads((project / "data/06_models/checkpoints/relu_seed0/state.json").read_text())
    assert record["epochs_done"] == 0 and record["status"] == "training"
    assert not checkpoints._held


@pytest.mark.timeout(600)
def test_unwritable_output_folder_fails_before_anything_runs(project):
    blocker = project / "data" / "07_model_output"
    shutil.rmtree(blocker)
    blocker.write_text("not a folder")
    with pytest.raises(storage.StorageError) as raised:
        _session(project, ONE_MODEL)
    message = str(raised.value)
    assert f"Cannot write the folder {blocker}: File exists (EEXIST); a file is in the way" in message
    assert not (project / "data/06_models/relu_seed0.keras").exists()
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


needs_mounts = pytest.mark.skipif(not _unshare_available(), reason="needs unshare -m and mount (root)")


def _kedro_in_namespace(project: Path, mount: str, *params: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", KEDRO_DISABLE_TELEMETRY="1", MLFLOW_DISABLE_TELEMETRY="true", COLUMNS="250")
    command = " ".join([KEDRO, "run", "--env", "smoke", "--pipeline=compare", *params])
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mount} && exec {command}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600,
    )


@needs_mounts
@pytest.mark.timeout(600)
def test_disk_full_during_training_names_the_checkpoint(project):
    checkpoints_dir = project / "data/06_models/checkpoints"
    checkpoints_dir.mkdir(parents=True)
    # Room for the start-up checks (64 KiB probes), not for a 0.5 MB checkpoint.
    result = _kedro_in_namespace(
        project, f"mount -t tmpfs -o size=256k tmpfs {checkpoints_dir}",
        "--params", "compare.activations=relu,training.epochs=1",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]  # an error, not a crash at exit
    assert "Segmentation fault" not in output and "Exception ignored" not in output
    assert "StorageError: Cannot write the training checkpoint" in output, output[-3000:]
    assert "epoch-0000.npz: No space left on device (ENOSPC); the disk is full" in output
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("activation-compare-smoke").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "No space left on device" in runs[0].data.tags["kedro.error"]


@needs_mounts
@pytest.mark.timeout(600)
def test_read_only_data_folder_fails_at_once_naming_it(project):
    models = project / "data/06_models"
    result = _kedro_in_namespace(project, f"mount --bind {models} {models} && mount -o remount,ro,bind {models}")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "The run cannot write its outputs" in output, output[-3000:]
    assert f"Cannot write the folder {models}" in output and "EROFS" in output
    assert "Running node" not in output  # failed before the first node
