"""One checkpoint folder on disk: the weights file of the last epoch and ``state.json``.

::

    <folder>/
        .lock            held by the process training the model (lock.py)
        state.json       the commit record: status, epochs done, the weights file,
                         the fingerprint, every epoch's metrics (epochs from 1)
        epoch-0007.npz   every model variable (weights, RReLU's random state) and every
                         optimizer variable (Adam's moments, its step count) after epoch 7
        epoch-0004.npz   the same after the best validation epoch so far (``best_weights``
                         in the record), kept so a model can return to it (rigorous protocol)

The checkpoint is serialised in memory (``numpy.savez``) and written by this
module, not by Keras/h5py: a full disk then fails with one clear
:class:`~activation_compare.storage.StorageError`, and no half-written HDF5
file is left open (h5py crashes the interpreter at exit on those). Every file
is written under a temporary name and renamed into place.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from activation_compare.storage import atomic_write_bytes

from .lock import LOCK_FILE

logger = logging.getLogger(__name__)

STATE_FILE = "state.json"
STATE_FORMAT = 2
CHECKPOINT_SUFFIX = ".npz"


def weights_name(epoch: int) -> str:
    """The weights file of epoch ``epoch`` (numbered from 1)."""
    return f"epoch-{epoch:04d}{CHECKPOINT_SUFFIX}"


def checkpoint_bytes(model: Any) -> bytes:
    """Every variable of the model and of its optimizer, as ``.npz`` bytes.

    ``model.variables`` holds the weights and the layers' random-generator
    states (RReLU's slope draws continue where they were, not from epoch 1);
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


def restore_checkpoint(model: Any, path: Path) -> None:
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


def best_epoch(history: list[dict[str, Any]]) -> int | None:
    """The epoch (from 1) of the highest validation accuracy; the earliest on ties.

    The same choice as ``numpy.argmax`` over the history's ``val_accuracy``
    column, which the evaluation reports as the best epoch.
    """
    best: tuple[float, int] | None = None
    for row in sorted(history, key=lambda r: int(r["epoch"])):
        value = row.get("val_accuracy")
        if value is None or not np.isfinite(value):
            continue
        if best is None or float(value) > best[0]:
            best = (float(value), int(row["epoch"]))
    return None if best is None else best[1]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Status(StrEnum):
    """Where a checkpoint's training stands (``state.json``'s ``status``)."""

    TRAINING = "training"  # started, interrupted, or asked for more epochs
    FINISHED = "finished"  # every epoch asked for was trained


class UnreadableRecordError(ValueError):
    """A ``state.json`` this version cannot read (what is wrong is in the message)."""


@dataclass
class CheckpointRecord:
    """The commit record of a checkpoint folder, ``state.json`` (:data:`STATE_FORMAT`).

    Attributes:
        fingerprint: What the model trains on (:mod:`.fingerprint`).
        epochs: The epochs asked for.
        status: :attr:`Status.FINISHED` once every epoch asked for was trained.
        epochs_done: Epochs committed (numbered from 1: the last is ``epochs_done``).
        weights: The weights file of the last epoch committed (None before the first).
        best_weights, best_epoch: The best validation epoch and its weights file,
            kept for the rigorous protocol (None: no such epoch, or not kept).
        history: One row per epoch committed: ``epoch`` (from 1), the metrics,
            ``time_ms`` (the wall-clock time of its commit).
        created, updated, finished: When the record was created, last
            committed, and marked finished.
    """

    fingerprint: dict[str, Any]
    epochs: int
    status: Status = Status.TRAINING
    epochs_done: int = 0
    weights: str | None = None
    best_weights: str | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    created: str = field(default_factory=_now)
    updated: str = ""
    finished: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> CheckpointRecord:
        """The record a ``state.json`` holds.

        Raises:
            UnreadableRecordError: Another format, or a field this format does not have or allow.
        """
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise UnreadableRecordError(f"format {found!r}, this version reads format {STATE_FORMAT}")
        values = {k: v for k, v in data.items() if k != "format"}
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise UnreadableRecordError(f"unknown fields {sorted(unknown)}")
        try:
            values["status"] = Status(values.get("status", Status.TRAINING))
            record = cls(**values)
            record.epochs, record.epochs_done = int(record.epochs), int(record.epochs_done)
        except (TypeError, ValueError) as exc:
            allowed = ", ".join(repr(s.value) for s in Status)
            raise UnreadableRecordError(f"{exc} (status is one of {allowed})") from exc
        return record

    def to_json(self) -> dict[str, Any]:
        """What ``state.json`` holds: the format, then every field."""
        return {"format": STATE_FORMAT, **asdict(self), "status": self.status.value}


class CheckpointFolder:
    """Reads and commits one checkpoint folder (the caller holds its lock)."""

    def __init__(self, directory: Path | str, label: str) -> None:
        self.directory = Path(directory)
        self.label = label

    def __repr__(self) -> str:
        return f"CheckpointFolder({str(self.directory)!r})"

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_FILE

    def read(self) -> CheckpointRecord | None:
        """The committed record, or None (missing, unreadable or of another format: it is trained afresh)."""
        try:
            data = json.loads(self.state_path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as exc:
            logger.warning("%s: the training state %s is unreadable (%s); ignoring it", self.label, self.state_path, exc)
            return None
        try:
            return CheckpointRecord.from_json(data)
        except UnreadableRecordError as exc:
            logger.warning(
                "%s: the training state %s cannot be read by this version (%s); ignoring it",
                self.label, self.state_path, exc,
            )
            return None

    def weights_exist(self, record: CheckpointRecord) -> bool:
        return bool(record.weights) and (self.directory / record.weights).is_file()

    @staticmethod
    def new_record(fingerprint: dict[str, Any], epochs: int) -> CheckpointRecord:
        return CheckpointRecord(fingerprint=fingerprint, epochs=int(epochs))

    def restore(self, model: Any, record: CheckpointRecord) -> None:
        """Load the weights ``record`` names into ``model`` (nothing when it has none)."""
        if record.weights:
            restore_checkpoint(model, self.directory / record.weights)

    def commit(self, record: CheckpointRecord) -> None:
        """Replace ``state.json`` atomically: the commit point of every change."""
        record.updated = _now()
        data = json.dumps(record.to_json(), indent=1, default=float).encode()
        atomic_write_bytes(self.state_path, data, what="training state")

    def save_epoch(self, model: Any, record: CheckpointRecord, epoch: int, row: dict[str, float]) -> None:
        """Commit epoch ``epoch`` (from 1): weights first, then the record, then drop the old weights.

        A kill between any two steps is recoverable: before the record names
        the new file it is an orphan (collected later); after it, the previous
        file is (a leftover is collected later).
        """
        name = weights_name(epoch)
        atomic_write_bytes(self.directory / name, checkpoint_bytes(model), what="training checkpoint")
        previous, previous_best = record.weights, record.best_weights
        record.history = [r for r in record.history if int(r["epoch"]) < epoch]
        record.history.append({"epoch": epoch, **row, "time_ms": int(time.time() * 1000)})
        # The best validation epoch's weights stay until a better epoch replaces them.
        best = best_epoch(record.history)
        if best == epoch:
            record.best_weights = name
        elif record.best_epoch != best:  # not kept (a record written before this was)
            record.best_weights = None
        record.epochs_done, record.weights, record.status, record.best_epoch = epoch, name, Status.TRAINING, best
        self.commit(record)
        for old in {previous, previous_best} - {None, name, record.best_weights}:
            (self.directory / old).unlink(missing_ok=True)

    def restore_best(self, model: Any, record: CheckpointRecord) -> int:
        """Load the best validation epoch's weights into ``model``; return that epoch (from 1).

        Raises:
            FileNotFoundError: the record keeps no best epoch's weights (no epoch
                with a validation accuracy, or a checkpoint older than this rule).
        """
        name = record.best_weights
        if not name or not (self.directory / name).is_file() or record.best_epoch is None:
            raise FileNotFoundError(
                f"{self.label}: the checkpoint in {self.directory} does not keep its best "
                "validation epoch's weights; train it again with --params training.retrain=true"
            )
        restore_checkpoint(model, self.directory / name)
        return int(record.best_epoch)

    def mark_finished(self, record: CheckpointRecord) -> None:
        if record.status is not Status.FINISHED:
            record.status = Status.FINISHED
            record.finished = _now()
            self.commit(record)

    def collect_garbage(self, record: CheckpointRecord | None) -> None:
        """Remove what no commit refers to: older epochs, temporary files of a killed write."""
        keep = {STATE_FILE, LOCK_FILE}
        if record is not None:
            keep |= {record.weights, record.best_weights}
        try:
            entries = list(self.directory.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return
        for path in entries:
            name = path.name
            ours = (name.startswith("epoch-") and name.endswith(CHECKPOINT_SUFFIX)) or (
                name.startswith(".") and (".tmp" in name or name.startswith(".write-test-"))
            )
            if ours and name not in keep and path.is_file():
                path.unlink(missing_ok=True)
