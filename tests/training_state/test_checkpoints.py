"""A model's checkpoints: decisions (fresh, resume, reuse), folders per fingerprint, kills at
every epoch-end step, exact resume, the lock, full disks.

A tiny Keras model trained for real through the checkpoints (seconds, no Kedro).
"""

from __future__ import annotations

import errno
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import checkpoint_state, logged_messages

from activation_compare import storage, training_events
from activation_compare.identity import ModelKey
from activation_compare.params import OptimizerParams, TrainingParams
from activation_compare.training_events import EpochEventsCallback, Mode, TrainingStart
from activation_compare.training_state import Checkpoints, lock, store

KEY = ModelKey("tiny", 0)


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def data(n: int = 24, shift: float = 0.0) -> Split:
    rng = np.random.default_rng(0)
    return Split(rng.random((n, 4), dtype=np.float32) + np.float32(shift), rng.integers(0, 3, n))


def tiny(learning_rate: float = 0.01) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs), name="tiny")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    return model


def params(**changes) -> TrainingParams:
    return TrainingParams(**{"epochs": 3, "batch_size": 8, "verbose": 0, **changes})


def train(checkpoints: Checkpoints, training: TrainingParams, split: Split | None = None, model=None):
    """What train_model does with the checkpoints, on the tiny model."""
    split = split or data()
    model = model or tiny(training.optimizer.learning_rate)
    with checkpoints.begin(model, split, split, training, key=KEY) as session:
        if not session.done:
            model.fit(
                split.images, split.labels, batch_size=training.batch_size, epochs=training.epochs, verbose=0,
                initial_epoch=0, callbacks=[*session.callbacks, EpochEventsCallback(KEY, training.epochs)],
            )
        return model, session, session.finish()


@pytest.fixture
def messages():
    names = [f"activation_compare.training_state.{name}" for name in ("checkpoints", "lock")]
    with logged_messages(*names) as lines:
        yield lines


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _only_folder(checkpoints: Checkpoints) -> Path:
    (folder,) = checkpoints.folders()
    return folder


# --- decisions: reuse, resume, a folder per fingerprint --------------------------------------


def test_finished_model_is_reused_and_more_epochs_continue(tmp_path, messages):
    checkpoints = Checkpoints(tmp_path / "m")
    model, _, history = train(checkpoints, params())
    assert history["epoch"].tolist() == [1, 2, 3]
    folder = _only_folder(checkpoints)
    record = checkpoint_state(folder)
    assert record["status"] == "finished" and record["epochs_done"] == 3
    assert [row["epoch"] for row in record["history"]] == [1, 2, 3]
    assert _files(folder) == [".lock", "epoch-0003.npz", "state.json"]

    again, session, same = train(checkpoints, params())
    assert session.mode == "reuse" and session.done
    pd.testing.assert_frame_equal(same, history)
    for a, b in zip(model.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)  # the saved weights, not a new training
    assert checkpoint_state(folder)["updated"] == record["updated"]  # untouched
    assert any("already trained (3 epochs)" in line for line in messages)

    _, session, longer = train(checkpoints, params(epochs=5))
    assert session.mode == "resume" and session.initial_epoch == 3
    assert longer["epoch"].tolist() == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(longer.iloc[:3], history)
    assert any("training.epochs grew from 3 to 5" in line for line in messages)
    assert checkpoints.folders() == [folder]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"params": {"optimizer": OptimizerParams(learning_rate=0.02)}},
         "training.optimizer.learning_rate changed from 0.01 to 0.02"),
        ({"params": {"batch_size": 4}}, "training.batch_size changed from 8 to 4"),
        ({"data": data(shift=0.5)}, "the train set changed (same size, other images)"),
        ({"data": data(n=30)}, "train_set.size changed from 24 to 30"),
    ],
)
def test_other_settings_train_in_a_folder_of_their_own_and_say_what_differs(tmp_path, messages, change, reason):
    checkpoints = Checkpoints(tmp_path / "m")
    train(checkpoints, params(optimizer=OptimizerParams(learning_rate=0.01)))
    (first,) = checkpoints.folders()
    before = _files(first), checkpoint_state(first)
    changed = params(**{"optimizer": OptimizerParams(learning_rate=0.01), **change.get("params", {})})
    _, session, history = train(checkpoints, changed, split=change.get("data"))
    assert session.mode == "fresh" and session.initial_epoch == 0
    assert history["epoch"].tolist() == [1, 2, 3]
    assert len(checkpoints.folders()) == 2 and session.directory != first
    assert (_files(first), checkpoint_state(first)) == before  # the other checkpoint is kept as it was
    said = [line for line in messages if "no checkpoint with these settings" in line]
    assert len(said) == 1 and reason in said[0] and first.name in said[0], messages


def test_fewer_epochs_than_a_finished_checkpoint_train_beside_it(tmp_path, messages):
    checkpoints = Checkpoints(tmp_path / "m")
    _, longer, _ = train(checkpoints, params())
    kept = checkpoint_state(longer.directory)
    _, session, history = train(checkpoints, params(epochs=2))
    assert session.mode == "fresh" and history["epoch"].tolist() == [1, 2]
    assert session.directory.name == f"{longer.directory.name}-epochs2"
    assert checkpoint_state(longer.directory) == kept
    assert any("has 3 epochs, more than training.epochs=2" in line for line in messages)
    _, again, _ = train(checkpoints, params(epochs=2))
    assert again.mode == "reuse" and again.directory == session.directory


def test_retrain_discards_the_checkpoint_of_these_settings(tmp_path, messages):
    checkpoints = Checkpoints(tmp_path / "m")
    train(checkpoints, params())
    _, session, _ = train(checkpoints, params(retrain=True))
    assert session.mode == "fresh" and len(checkpoints.folders()) == 1
    assert any("discarded the checkpoint" in line and "training.retrain=true asks" in line for line in messages)


def test_a_different_activation_is_a_different_model(tmp_path, messages):
    from activation_compare.models import build_seed_cnn

    checkpoints = Checkpoints(tmp_path / "m")
    images = Split(np.zeros((8, 32, 32, 3), np.float32), np.arange(8) % 10)
    for spec in ({"type": "rrelu"}, {"type": "rrelu", "lower": 0.2}):
        model = build_seed_cnn(spec, seed=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        train(checkpoints, params(epochs=1), images, model)
    assert any("the model (architecture or activation parameters) changed" in line for line in messages)


def test_the_start_event_names_the_model_its_fingerprint_and_the_epochs_done(tmp_path):
    checkpoints = Checkpoints(tmp_path / "m")
    starts: list[TrainingStart] = []
    ends: list[training_events.EpochEnd] = []
    training_events.subscribe(starts.append, TrainingStart)
    training_events.subscribe(ends.append)
    try:
        train(checkpoints, params(epochs=2))
        train(checkpoints, params(epochs=3))
    finally:
        training_events.unsubscribe(starts.append)
        training_events.unsubscribe(ends.append)
    first, second = starts
    assert (first.key, first.mode, first.initial_epoch, first.epochs, first.history) == (KEY, Mode.FRESH, 0, 2, [])
    assert first.fingerprint == second.fingerprint == _only_folder(checkpoints).name
    assert (second.mode, second.initial_epoch) == (Mode.RESUME, 2)
    # The settings the model trains with, as the node computed them: what a tracker logs.
    assert first.learning_rate == second.learning_rate == params().optimizer.learning_rate
    assert [row["epoch"] for row in second.history] == [1, 2]
    assert [(e.key, e.epoch, e.epochs) for e in ends] == [(KEY, 1, 2), (KEY, 2, 2), (KEY, 3, 3)]


# --- a kill between any two steps of the epoch-end work ------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (not even ``finally`` blocks that matter)."""


CRASH_POINTS = {
    # crash point: epochs the checkpoint holds afterwards (the kill is during epoch 2's end)
    "while writing the weights": 1,
    "before renaming the weights into place": 1,
    "before committing state.json": 1,
    "before removing the previous weights": 2,
    "before publishing the epoch (MLflow)": 2,
}


@pytest.mark.parametrize("crash", list(CRASH_POINTS))
def test_a_kill_between_any_two_epoch_end_steps_is_recoverable(tmp_path, monkeypatch, crash):
    checkpoints = Checkpoints(tmp_path / "m")
    split, training = data(), params()
    model = tiny()
    with monkeypatch.context() as patch:
        real_write, real_replace = store.atomic_write_bytes, storage.os.replace
        real_commit, real_unlink = store.CheckpointFolder.commit, Path.unlink

        def write(path, payload, what="file"):
            if path.name == "epoch-0002.npz" and crash == "while writing the weights":
                storage.temporary_sibling(path).write_bytes(payload[: len(payload) // 2])
                raise Killed
            return real_write(path, payload, what)

        def replace(temporary, final):
            if Path(final).name == "epoch-0002.npz" and crash == "before renaming the weights into place":
                Path(str(temporary) + ".left-by-kill.tmp").write_bytes(Path(temporary).read_bytes())
                raise Killed
            return real_replace(temporary, final)

        def commit(self, record):
            if record.weights == "epoch-0002.npz" and crash == "before committing state.json":
                raise Killed
            return real_commit(self, record)

        def unlink(self, missing_ok=False):
            if self.name == "epoch-0001.npz" and crash == "before removing the previous weights":
                raise Killed
            return real_unlink(self, missing_ok=missing_ok)

        def publish(event):
            if event.epoch == 2 and crash == "before publishing the epoch (MLflow)":
                raise Killed

        patch.setattr(store, "atomic_write_bytes", write)
        patch.setattr(storage.os, "replace", replace)
        patch.setattr(store.CheckpointFolder, "commit", commit)
        patch.setattr(Path, "unlink", unlink)
        training_events.subscribe(publish)
        try:
            with pytest.raises(Killed), checkpoints.begin(model, split, split, training, key=KEY) as session:
                model.fit(split.images, split.labels, batch_size=8, epochs=3, verbose=0,
                          callbacks=[*session.callbacks, EpochEventsCallback(KEY, 3)])
        finally:
            training_events.unsubscribe(publish)

    expected = CRASH_POINTS[crash]
    folder = _only_folder(checkpoints)
    record = checkpoint_state(folder)
    assert record["epochs_done"] == expected
    assert [row["epoch"] for row in record["history"]] == list(range(1, expected + 1))

    # "Restart": a new process, a new model object, the same command.
    starts: list[TrainingStart] = []
    training_events.subscribe(starts.append, TrainingStart)
    try:
        _, session2, history = train(Checkpoints(tmp_path / "m"), training)
    finally:
        training_events.unsubscribe(starts.append)
    assert session2.mode == "resume" and session2.initial_epoch == expected
    assert starts[0].initial_epoch == expected and len(starts[0].history) == expected
    assert history["epoch"].tolist() == [1, 2, 3]
    assert [row["loss"] for row in record["history"]] == pytest.approx(history["loss"].iloc[:expected].tolist())
    # Orphans of the killed write are gone; only what reuse needs is left.
    assert _files(folder) == [".lock", "epoch-0003.npz", "state.json"]


def test_resume_restores_weights_and_optimizer_state(tmp_path):
    """Resumed after epoch 2 == the state an uninterrupted run had after epoch 2."""
    checkpoints = Checkpoints(tmp_path / "m")
    split = data()
    model, _, _ = train(checkpoints, params(epochs=2))
    fresh = tiny()
    with checkpoints.begin(fresh, split, split, params(epochs=4), key=KEY) as session:
        assert session.initial_epoch == 2
    for a, b in zip(model.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 6


def test_resumed_training_equals_an_uninterrupted_one(tmp_path):
    """train_model: 2 epochs, then resumed to 4 == 4 epochs straight (weights and history).

    The checkpoint holds every model variable (RReLU's random state included)
    and the optimizer's; the input pipeline draws epoch e's order from (seed, e).
    """
    from activation_compare.datasets.types import LabelledImages
    from activation_compare.params import ModelParams
    from activation_compare.pipelines.modelling.nodes import build_model, train_model

    rng = np.random.default_rng(0)
    images = LabelledImages(rng.random((48, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 48))
    key = ModelKey("rrelu", 3)

    def run(folder: str, epochs: int):
        model = build_model({"type": "rrelu"}, ModelParams(), key=key)
        return train_model(model, images, images, params(epochs=epochs, batch_size=16),
                           Checkpoints(tmp_path / folder), key=key)

    run("resumed", 2)
    resumed, resumed_history = run("resumed", 4)
    straight, straight_history = run("straight", 4)
    assert resumed_history["epoch"].tolist() == [1, 2, 3, 4]
    columns = ["loss", "accuracy", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(resumed_history[columns], straight_history[columns])
    for a, b in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_array_equal(a, b)


# --- the lock: two trainings of one model never interleave ------------------------------------


def test_a_second_trainer_waits_for_the_lock_and_is_told_who_holds_it(tmp_path, messages, monkeypatch):
    monkeypatch.setattr(lock, "LOG_EVERY_S", 0.2)
    split, training = data(), params()
    got_it = threading.Event()

    def second():
        with Checkpoints(tmp_path / "m").begin(tiny(), split, split, training, key=KEY):
            got_it.set()

    with Checkpoints(tmp_path / "m").begin(tiny(), split, split, training, key=KEY):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(1.0)
        assert not got_it.is_set()
    thread.join(timeout=30)
    assert got_it.is_set()
    assert any("another process is training this model" in line and "pid" in line for line in messages)


def test_an_interrupted_training_releases_the_lock_for_the_next(tmp_path):
    """Ctrl-C in a notebook unwinds the block: the next training takes the lock at once."""
    split, training = data(), params()
    with pytest.raises(KeyboardInterrupt), Checkpoints(tmp_path / "m").begin(tiny(), split, split, training, key=KEY):
        raise KeyboardInterrupt
    _, session, history = train(Checkpoints(tmp_path / "m"), training)
    # The interrupted one had committed its start (no epoch yet): resumed from nothing.
    assert session.initial_epoch == 0 and history["epoch"].tolist() == [1, 2, 3]


# --- disks: full, read-only, in the way ---------------------------------------------------------


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_storage_errors_name_the_path_and_what_to_do(tmp_path, monkeypatch, number):
    checkpoints = Checkpoints(tmp_path / "m")
    split, training = data(), params()
    model = tiny()
    real_open = open

    def fail(path, mode="r", *args, **kwargs):  # as the disk would, on the checkpoint only
        if "epoch-0001.npz" in str(path) and "w" in mode:
            raise OSError(number, "refused", str(path))
        return real_open(path, mode, *args, **kwargs)

    with checkpoints.begin(model, split, split, training, key=KEY) as session:
        monkeypatch.setattr("builtins.open", fail)
        with pytest.raises(storage.StorageError) as raised:
            model.fit(split.images, split.labels, epochs=1, verbose=0, callbacks=session.callbacks)
        monkeypatch.undo()
    message = str(raised.value)
    assert f"Cannot write the training checkpoint {session.directory / 'epoch-0001.npz'}" in message
    assert errno.errorcode[number] in message and ";" in message
    assert not [p for p in session.directory.iterdir() if p.name.startswith(".") and "tmp" in p.name]


# --- the record in state.json ---------------------------------------------------------------


def test_a_state_file_written_before_the_record_was_typed_still_loads(tmp_path):
    """A format-2 state.json of an earlier version (no best-epoch fields yet) loads as it is."""
    folder = tmp_path / "m" / "abc"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps({
        "format": 2, "status": "finished", "epochs": 2, "epochs_done": 2, "weights": "epoch-0002.npz",
        "fingerprint": {"seed": 0}, "history": [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5}],
        "created": "2026-01-01T00:00:00+0000", "updated": "2026-01-01T00:00:01+0000",
    }))
    record = store.CheckpointFolder(folder, "m").read()
    assert record.status is store.Status.FINISHED and record.epochs_done == 2
    assert record.best_weights is None and [row["epoch"] for row in record.history] == [1, 2]
    assert store.CheckpointRecord.from_json(record.to_json()) == record


@pytest.mark.parametrize("state, says", [
    ({"format": 1, "status": "finished"}, "format 1, this version reads format 2"),
    ({"format": 2, "status": "done", "epochs": 2, "fingerprint": {}}, "status is one of 'training', 'finished'"),
    ({"format": 2, "epochs": 2, "fingerprint": {}, "owner": "x"}, "unknown fields ['owner']"),
])
def test_a_state_file_this_version_cannot_read_is_ignored_saying_why(tmp_path, state, says):
    folder = tmp_path / "m" / "abc"
    folder.mkdir(parents=True)
    (folder / "state.json").write_text(json.dumps(state))
    with logged_messages("activation_compare.training_state.store") as lines:
        assert store.CheckpointFolder(folder, "m").read() is None
    assert any("cannot be read by this version" in line and says in line for line in lines), lines
