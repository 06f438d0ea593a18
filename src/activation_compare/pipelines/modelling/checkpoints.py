"""The training state of one model: a checkpoint per epoch, resume after a crash, reuse when done.

Each model (activation x seed) has a folder of its own, given to the training
node by the catalog (``{activation}.training_state_seed{seed}``, a
:class:`~activation_compare.datasets.training_state.TrainingStateDataset`
whose ``load()`` returns a :class:`TrainingState`)::

    data/06_models/checkpoints/<activation>_seed<N>/
        .lock                  held (fcntl.flock) by the process training the model
        state.json             the commit record: status, epochs done, the checkpoint
                               file, the fingerprint, every epoch's metrics, the MLflow run id
        epoch-0007.npz         every model variable (weights, RReLU's random state) and
                               every optimizer variable (Adam's moments, its step count)
                               after epoch 7 (0-based): the one state.json names

The checkpoint is serialised in memory (``numpy.savez``) and written by this
module, not by Keras/h5py: a full disk then fails with one clear
:class:`~activation_compare.storage.StorageError`, and no half-written HDF5
file is left open (h5py crashes the interpreter at exit on those).

Order of the work at the end of epoch ``e`` (:meth:`TrainingSession.commit_epoch`),
so that a kill between any two steps is recoverable:

1. the checkpoint goes to a temporary file, is fsync'ed and renamed to
   ``epoch-<e>.npz`` (an orphan if killed now; collected later);
2. ``state.json`` is replaced atomically, now naming epoch ``e``'s weights and
   holding its metrics row: this is the commit point;
3. the previous epoch's weights file is removed (a leftover is collected later);
4. only then is the epoch published (:mod:`activation_compare.training_events`),
   so MLflow never has an epoch the checkpoint lacks. An epoch that is in the
   checkpoint but not in MLflow (killed between 2 and 4) is back-filled by the
   tracking hook when training resumes.

A rerun decides per model, under the model's lock (:meth:`TrainingState.begin`):

* no state, or ``training.retrain=true``: train from scratch;
* the fingerprint differs (architecture/activation spec, seed, batch size,
  optimizer, the training or validation data, or any other training parameter
  not listed in ``_NOT_FINGERPRINTED``): the state is discarded, with a log line
  that says what changed;
* interrupted after ``k`` epochs: resume at epoch ``k`` with the saved weights,
  optimizer state and RReLU random state, keeping the first ``k`` rows of history;
* finished with the same ``training.epochs``: nothing is trained, the saved
  model and history are returned;
* finished, and ``training.epochs`` is now larger: training continues from the
  final state (Adam at a constant learning rate has no schedule that would make
  this differ from a longer run); smaller: trained again from scratch.

With ``training.deterministic`` (the default) a resumed training ends with
the same weights and history as an uninterrupted one, bit for bit: the
checkpoint has every model variable (RReLU's random-generator state
included) and the optimizer's, and the input pipeline draws epoch ``e``'s
batch order from ``(seed, e)`` (``tests/test_faults.py``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from kedro.framework.hooks import hook_impl

from activation_compare import training_events
from activation_compare.storage import (
    atomic_write_bytes,
    check_writable,
    translated_storage_errors,
)

try:  # POSIX; elsewhere models are not locked (a warning says so)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
LOCK_FILE = ".lock"
STATE_FORMAT = 1
CHECKPOINT_SUFFIX = ".npz"
# Training parameters that do not change what a model learns.
_NOT_FINGERPRINTED = {"epochs", "seeds", "verbose", "retrain", "jit_compile", "deterministic"}
_LOCK_LOG_EVERY_S = 300.0


class TrainingStateError(RuntimeError):
    """The training state cannot be used as asked (e.g. it is locked and waiting is off)."""


# --- the fingerprint of what a checkpoint was trained on -----------------------------

_digests: dict[int, tuple[Any, str]] = {}


def _array_digest(array: np.ndarray) -> str:
    """A digest of an array's dtype, shape and bytes; cached per array object (the
    training set is shared by every model of a run and can be 600 MB)."""
    key = id(array)
    cached = _digests.get(key)
    if cached is not None and cached[0]() is array:
        return cached[1]
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    value = digest.hexdigest()
    try:
        reference = weakref.ref(array, lambda _, k=key: _digests.pop(k, None))
    except TypeError:
        return value
    _digests[key] = (reference, value)
    return value


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _without_names(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(v) for v in value]
    return value


def _model_digest(model: keras.Model) -> str:
    """The model's name and its layers' classes and configs, in order.

    Layer names are left out: Keras numbers unnamed layers per process
    (``dense``, ``dense_1``...), which says nothing about the model.
    """
    layers = [
        (f"{type(layer).__module__}.{type(layer).__qualname__}", _without_names(layer.get_config()))
        for layer in model.layers
    ]
    text = json.dumps({"name": model.name, "layers": layers}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def training_fingerprint(
    model: keras.Model, train_set: Any, validation_set: Any, params: Any, *, seed: int
) -> dict[str, Any]:
    """What a checkpoint is only valid for, as flat ``name -> value`` pairs (JSON values).

    The model's config covers the architecture, the activation's spec and the
    initialisers' seeds; the data digests cover the source, its path, the
    subsample limits, the validation split and the training-set size.
    """
    parts: dict[str, Any] = {
        "model.config": _model_digest(model),
        "seed": int(seed),
    }
    dumped = params.model_dump(mode="json") if hasattr(params, "model_dump") else dict(params)
    for key, value in sorted(dumped.items()):
        if key not in _NOT_FINGERPRINTED:
            _flatten(f"training.{key}", value, parts)
    for name, split in (("train_set", train_set), ("validation_set", validation_set)):
        parts[f"{name}.size"] = len(split)
        parts[f"{name}.content"] = (
            f"{_array_digest(split.images)[:16]}-{_array_digest(split.labels)[:16]}"
        )
    return parts


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, "<unset>"), new.get(key, "<unset>")
        if before == after:
            continue
        if key == "model.config":
            changes.append("the model (architecture or activation parameters) changed")
        elif key.endswith(".content") and old.get(key.replace(".content", ".size")) == new.get(
            key.replace(".content", ".size")
        ):
            changes.append(f"the {key.split('.')[0].replace('_', ' ')} changed (same size, other images)")
        elif not key.endswith(".content"):
            changes.append(f"{key} changed from {before!r} to {after!r}")
    return changes or ["the fingerprint changed"]


# --- one lock per model ----------------------------------------------------------------

_held: dict[str, _ModelLock] = {}
_held_guard = threading.Lock()


class _ModelLock:
    """An exclusive ``flock`` on ``<folder>/.lock``, released on close or process death."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.thread: threading.Thread | None = None

    def acquire(self, label: str, poll_s: float = 0.5) -> None:
        key = str(self.path)
        with _held_guard:
            earlier = _held.get(key)
            abandoned = earlier is not None and (
                earlier.thread is threading.current_thread()
                or earlier.thread is None
                or not earlier.thread.is_alive()
            )
        if abandoned:
            # Left held by an interrupted training in this process (Ctrl-C in a
            # notebook, an error no hook saw): that training is over.
            earlier.release()
        with translated_storage_errors(self.path, "lock file"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover - Windows
            logger.warning("%s: no file locking on this platform; do not train it twice at once", label)
        else:
            started = time.monotonic()
            next_log = 0.0
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    waited = time.monotonic() - started
                    if waited >= next_log:
                        logger.info(
                            "%s: another process is training this model (%s; lock %s); "
                            "waiting for it to finish (%.0f s so far, Ctrl-C to stop)",
                            label,
                            _holder(fd),
                            self.path,
                            waited,
                        )
                        next_log = waited + _LOCK_LOG_EVERY_S
                    time.sleep(poll_s)
                except BaseException:
                    os.close(fd)
                    raise
            try:
                owner = f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}"
                os.ftruncate(fd, 0)
                os.pwrite(fd, owner.encode(), 0)
            except OSError:
                pass
        self.fd = fd
        self.thread = threading.current_thread()
        with _held_guard:
            _held[key] = self

    def release(self) -> None:
        fd, self.fd = self.fd, None
        with _held_guard:
            if _held.get(str(self.path)) is self:
                del _held[str(self.path)]
        if fd is not None:
            try:
                os.close(fd)  # closing the descriptor releases the flock
            except OSError:
                pass


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"


# --- the state folder ------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def checkpoint_bytes(model: keras.Model) -> bytes:
    """Every variable of the model and of its optimizer, as ``.npz`` bytes.

    ``model.variables`` holds the weights and the layers' random-generator
    states (RReLU's slope draws continue where they were, not from epoch 0);
    the optimizer's hold Adam's moments and its step count.
    """
    arrays = {f"model_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and optimizer.built:
        arrays.update(
            {f"optimizer_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)}
        )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def restore_checkpoint(model: keras.Model, path: Path) -> None:
    """Assign a :func:`checkpoint_bytes` file to a compiled model of the same architecture."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    with np.load(path, allow_pickle=False) as saved:
        for prefix, variables in (
            ("model_", list(model.variables)),
            ("optimizer_", list(optimizer.variables) if optimizer is not None else []),
        ):
            keys = sorted(k for k in saved.files if k.startswith(prefix))
            if len(keys) != len(variables):
                raise ValueError(f"{path.name} has {len(keys)} {prefix[:-1]} variables, the model {len(variables)}")
            values = [saved[k] for k in keys]
            for variable, value in zip(variables, values):
                if tuple(variable.shape) != value.shape:
                    raise ValueError(f"{path.name}: {variable.path} has shape {tuple(variable.shape)}, saved {value.shape}")
            for variable, value in zip(variables, values):
                variable.assign(value.astype(variable.dtype, copy=False))


@dataclass
class _Decision:
    mode: str  # fresh | resume | reuse
    reason: str
    record: dict[str, Any] | None = None


class TrainingState:
    """Handle on one model's training-state folder (what the catalog dataset loads).

    Nodes call :meth:`begin`; nothing here knows about MLflow: a tracker learns
    what happens through :class:`~activation_compare.training_events.TrainingStart`.
    """

    def __init__(self, directory: Path | str, *, label: str | None = None) -> None:
        self.directory = Path(directory)
        self.label = label or self.directory.name
        self._lock = _ModelLock(self.directory / LOCK_FILE)

    def __repr__(self) -> str:
        return f"TrainingState({str(self.directory)!r})"

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def read(self) -> dict[str, Any] | None:
        """The committed record, or None (missing, unreadable or of another format)."""
        try:
            record = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: the training state %s is unreadable (%s); ignoring it", self.label, self.state_path, exc)
            return None
        if not isinstance(record, dict) or record.get("format") != STATE_FORMAT:
            logger.warning("%s: %s has an unknown format; ignoring it", self.label, self.state_path)
            return None
        return record

    def release(self) -> None:
        """Release the model's lock if this process holds it (idempotent)."""
        self._lock.release()

    def begin(
        self, model: keras.Model, train_set: Any, validation_set: Any, params: Any, *, seed: int
    ) -> TrainingSession:
        """Lock the model, decide fresh/resume/reuse, restore the weights, announce it.

        ``model`` must be compiled (its optimizer's state is restored too).
        Blocks while another process trains the same model.
        """
        self._lock.acquire(self.label)
        try:
            fingerprint = training_fingerprint(model, train_set, validation_set, params, seed=seed)
            decision = self._decide(self.read(), fingerprint, params)
            record = decision.record
            if record is not None and decision.mode != "fresh":
                try:
                    self._restore(model, record)
                except Exception as exc:  # noqa: BLE001 - a broken checkpoint is retrained
                    decision = _Decision(
                        "fresh", f"its weights could not be restored ({type(exc).__name__}: {exc})"
                    )
            if decision.mode == "fresh":
                previous = self.read()
                record = self._new_record(fingerprint, params)
                if previous is not None:
                    logger.warning(
                        "%s: discarded the training state in %s (%s epochs, %s): %s; training from scratch",
                        self.label,
                        self.directory,
                        previous.get("epochs_done"),
                        previous.get("status"),
                        decision.reason,
                    )
                self._commit(record)
            else:
                logger.info("%s: %s", self.label, decision.reason)
                record["epochs"] = int(params.epochs)
                if decision.mode == "resume" and record.get("status") == "finished":
                    record["status"] = "training"  # more epochs asked for than it has
                    self._commit(record)
            self._collect_garbage(record)
            session = TrainingSession(self, record, decision.mode, int(params.epochs))
            session.announce()
            return session
        except BaseException:
            self.release()
            raise

    # -- internals --------------------------------------------------------------------

    def _decide(
        self, record: dict[str, Any] | None, fingerprint: dict[str, Any], params: Any
    ) -> _Decision:
        epochs = int(params.epochs)
        if record is None:
            return _Decision("fresh", "no training state")
        done, status = int(record.get("epochs_done", 0)), record.get("status")
        if getattr(params, "retrain", False):
            return _Decision("fresh", "training.retrain=true asks to train it again")
        if record.get("fingerprint") != fingerprint:
            changes = _differences(record.get("fingerprint") or {}, fingerprint)
            return _Decision("fresh", "; ".join(changes))
        weights = record.get("weights")
        if done > 0 and (not weights or not (self.directory / weights).is_file()):
            return _Decision("fresh", f"its weights file {weights!r} is missing")
        if done > epochs:
            return _Decision(
                "fresh", f"it has {done} epochs, more than training.epochs={epochs}"
            )
        if status == "finished" and done == epochs:
            return _Decision(
                "reuse",
                f"already trained ({done} epochs); not training it again "
                "(--params training.retrain=true would)",
                record,
            )
        if done == epochs:
            return _Decision("reuse", f"all {epochs} epochs were trained before the interruption", record)
        if status == "finished":
            return _Decision(
                "resume",
                f"training.epochs grew from {done} to {epochs}: continuing from epoch {done + 1}",
                record,
            )
        return _Decision(
            "resume", f"resuming at epoch {done + 1}/{epochs} from the checkpoint in {self.directory}", record
        )

    def _new_record(self, fingerprint: dict[str, Any], params: Any) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "status": "training",
            "epochs": int(params.epochs),
            "epochs_done": 0,
            "weights": None,
            "fingerprint": fingerprint,
            "history": [],
            "mlflow_run_id": None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _restore(self, model: keras.Model, record: dict[str, Any]) -> None:
        if record.get("weights"):
            restore_checkpoint(model, self.directory / record["weights"])

    def _commit(self, record: dict[str, Any]) -> None:
        record["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        data = json.dumps(record, indent=1, default=float).encode()
        atomic_write_bytes(self.state_path, data, what="training state")

    def _collect_garbage(self, record: dict[str, Any]) -> None:
        """Remove what no commit refers to: older epochs, temporary files of a killed write."""
        keep = {STATE_FILE, LOCK_FILE, record.get("weights")}
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return
        for path in entries:
            name = path.name
            ours = (name.startswith("epoch-") and name.endswith(CHECKPOINT_SUFFIX)) or (
                name.startswith(".") and (".tmp" in name or name.startswith(".write-test-"))
            )
            if ours and name not in keep and path.is_file():
                path.unlink(missing_ok=True)


class TrainingSession:
    """One training of one model, under its lock: what to train and the epoch-end commits."""

    def __init__(self, state: TrainingState, record: dict[str, Any], mode: str, epochs: int) -> None:
        self.state = state
        self.record = record
        self.mode = mode
        self.epochs = epochs
        self.initial_epoch = int(record["epochs_done"])
        self.previous_run_id: str | None = record.get("mlflow_run_id")
        self.callbacks: list[keras.callbacks.Callback] = [EpochCheckpoint(self)]

    @property
    def done(self) -> bool:
        """Nothing left to train: the model (restored) and :meth:`finish` are the result."""
        return self.initial_epoch >= self.epochs

    def announce(self) -> None:
        training_events.publish(
            training_events.TrainingStart(
                epochs=self.epochs,
                initial_epoch=self.initial_epoch,
                mode=self.mode,
                previous_run_id=self.previous_run_id if self.mode != "fresh" else None,
                history=[dict(row) for row in self.record["history"]],
                attach_run=self.attach_run,
            )
        )

    def attach_run(self, run_id: str) -> None:
        """Remember the tracking run of this model (kept for a model only reused here)."""
        if self.record.get("mlflow_run_id") == run_id:
            return
        if self.mode == "reuse" and self.record.get("mlflow_run_id"):
            return
        self.record["mlflow_run_id"] = run_id
        self.state._commit(self.record)

    def commit_epoch(self, model: keras.Model, epoch: int, row: dict[str, float]) -> None:
        """Save epoch ``epoch``'s weights and metrics (see the module docstring for the order)."""
        directory = self.state.directory
        name = f"epoch-{epoch:04d}{CHECKPOINT_SUFFIX}"
        atomic_write_bytes(directory / name, checkpoint_bytes(model), what="training checkpoint")
        record = self.record
        previous = record.get("weights")
        record["history"] = [r for r in record["history"] if int(r["epoch"]) < epoch]
        record["history"].append({"epoch": epoch, **row, "time_ms": _now_ms()})
        record.update(epochs_done=epoch + 1, weights=name, status="training")
        self.state._commit(record)
        if previous and previous != name:
            (directory / previous).unlink(missing_ok=True)

    def history(self) -> pd.DataFrame:
        """Every epoch trained so far, 0 to ``epochs_done - 1``, from the committed record."""
        rows = [{k: v for k, v in row.items() if k != "time_ms"} for row in self.record["history"]]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        frame["epoch"] = frame["epoch"].astype("int64")
        return frame.sort_values("epoch").reset_index(drop=True)

    def finish(self, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Mark the model trained, drop what is not needed to reuse it, release the lock.

        Returns:
            The complete history (``history``, what ``fit`` saw now, is only the
            resumed part; it is kept as given when nothing was committed).
        """
        try:
            record = self.record
            if not record["history"] and history is not None:
                return history
            if record.get("status") != "finished":
                record["status"] = "finished"
                record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                self.state._commit(record)
            self.state._collect_garbage(record)
            return self.history()
        finally:
            self.state.release()


class _NoSession:
    """Training without a training state (e.g. ``train_model`` called directly)."""

    mode = "fresh"
    initial_epoch = 0
    done = False
    callbacks: list[keras.callbacks.Callback] = []

    def finish(self, history: pd.DataFrame | None = None) -> pd.DataFrame:
        return history if history is not None else pd.DataFrame()


def begin_training(
    state: TrainingState | None,
    model: keras.Model,
    train_set: Any,
    validation_set: Any,
    params: Any,
    *,
    seed: int,
) -> TrainingSession | _NoSession:
    """``state.begin(...)``, or a session that checkpoints nothing when there is no state."""
    if state is None:
        return _NoSession()
    return state.begin(model, train_set, validation_set, params, seed=seed)


class EpochCheckpoint(keras.callbacks.Callback):
    """Commit every finished epoch to the training state; start ``fit`` at the resumed epoch.

    Put it after the callback that adds ``epoch_time_s`` to the logs and before
    the one that publishes the epoch, so nothing is announced that is not saved.
    A non-finite loss is never committed (the run stops; the last good epoch
    stays the checkpoint).
    """

    def __init__(self, session: TrainingSession) -> None:
        super().__init__()
        self.session = session
        self._started = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        # What BackupAndRestore does: fit() reads it after on_train_begin.
        self.model._initial_epoch = self.session.initial_epoch or None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row: dict[str, float] = {}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        row.setdefault("epoch_time_s", time.perf_counter() - self._started)
        loss = row.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.model.stop_training = True
            return
        self.session.commit_epoch(self.model, epoch, row)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.model._initial_epoch = None


# --- hooks --------------------------------------------------------------------------------


def output_folders(pipeline: Any, catalog: Any) -> list[Path]:
    """Local folders a pipeline writes to: its file outputs' folders and training-state folders."""
    from activation_compare.datasets.training_state import TrainingStateDataset

    outputs = set(pipeline.all_outputs())
    folders: list[Path] = []
    for name in sorted(pipeline.datasets()):
        try:
            dataset = catalog.get(name)
        except Exception:  # noqa: BLE001 - Kedro reports unknown datasets itself
            continue
        if isinstance(dataset, TrainingStateDataset):
            folders.append(dataset.directory)
        elif name in outputs and getattr(dataset, "_protocol", None) == "file":
            filepath = getattr(dataset, "_filepath", None)
            if filepath is not None:
                folders.append(Path(str(filepath)).parent)
    return folders


class TrainingStateHooks:
    """Fail before anything runs when an output folder cannot be written; free model locks."""

    def __init__(self) -> None:
        self.checked: list[Path] = []

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        # tryfirst: before the MLflow hook opens runs for a pipeline that cannot run.
        self.checked = output_folders(pipeline, catalog)
        check_writable(self.checked)

    @hook_impl
    def after_node_run(self, inputs: dict[str, Any]) -> None:
        _release_states(inputs)

    @hook_impl
    def on_node_error(self, inputs: dict[str, Any]) -> None:
        _release_states(inputs)


def _release_states(inputs: Mapping[str, Any]) -> None:
    for value in inputs.values():
        if isinstance(value, TrainingState):
            value.release()
