"""A model's checkpoints, as the training node sees them: begin, commit each epoch, finish.

The catalog gives the training node a :class:`Checkpoints` handle
(:mod:`.dataset`); the node trains inside ``with checkpoints.begin(...) as
session`` and nothing else: no hook calls into it, and the lock of the
checkpoint folder is released when the block ends, however it ends.

Checkpoints live in ``<outputs>/06_models/checkpoints/<model>/<fingerprint>/``
(:mod:`activation_compare.identity`): one folder per training fingerprint, so a
run with other settings trains in a folder of its own and never touches
another's. Order of the work at the end of epoch ``e``
(:meth:`TrainingSession.commit_epoch`):

1. the weights go to a temporary file, are fsync'ed and renamed to ``epoch-<e>.npz``;
2. ``state.json`` is replaced atomically, now naming epoch ``e``'s weights and
   holding its metrics row: this is the commit point;
3. the previous epoch's weights file is removed (a leftover is collected later);
4. only then is the epoch published (:mod:`activation_compare.training_events`),
   so a tracker never has an epoch the checkpoint lacks; an epoch committed but
   not published (killed between 2 and 4) is in the ``history`` of the next
   :class:`~activation_compare.training_events.TrainingStart`.

With ``training.deterministic`` (the default) a resumed training ends with the
same weights and history as an uninterrupted one, bit for bit: the checkpoint
has every model variable (RReLU's random-generator state included) and the
optimizer's, and the input pipeline draws epoch ``e``'s batch order from
``(seed, e)`` (``tests/training_state/``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from activation_compare import training_events
from activation_compare.identity import ModelKey

from .decision import Decision, Mode, decide
from .fingerprint import differences, fingerprint_id, training_fingerprint
from .lock import folder_lock
from .store import STATE_FILE, CheckpointFolder, CheckpointRecord, Status

logger = logging.getLogger(__name__)


class TrainingSession:
    """One training of one model, under its folder's lock: what to train and the epoch commits."""

    def __init__(
        self, store: CheckpointFolder, record: CheckpointRecord, mode: Mode, epochs: int,
        key: ModelKey, fingerprint: str, learning_rate: float | None = None,
    ) -> None:
        self.store = store
        self.record = record
        self.mode = mode
        self.epochs = epochs
        self.key = key
        self.fingerprint = fingerprint
        self.learning_rate = learning_rate
        #: Epochs already trained: ``fit`` starts after them.
        self.initial_epoch = record.epochs_done

    @property
    def directory(self) -> Path:
        return self.store.directory

    @property
    def done(self) -> bool:
        """Nothing left to train: the model (restored) and :meth:`finish` are the result."""
        return self.initial_epoch >= self.epochs

    @property
    def callbacks(self) -> list[Any]:
        """What ``fit`` needs to checkpoint every epoch (Keras is imported here, on use)."""
        from .callback import EpochCheckpoint

        return [EpochCheckpoint(self)]

    def announce(self) -> None:
        training_events.publish(
            training_events.TrainingStart(
                key=self.key,
                epochs=self.epochs,
                initial_epoch=self.initial_epoch,
                mode=self.mode,
                fingerprint=self.fingerprint,
                history=[dict(row) for row in self.record.history],
                learning_rate=self.learning_rate,
            )
        )

    def commit_epoch(self, model: Any, epoch: int, row: dict[str, float]) -> None:
        """Save epoch ``epoch``'s (from 1) weights and metrics (module docstring: the order)."""
        self.store.save_epoch(model, self.record, epoch, row)

    def history(self) -> Any:
        """Every epoch trained so far, from the committed record, as a DataFrame."""
        import pandas as pd

        rows = [{k: v for k, v in row.items() if k != "time_ms"} for row in self.record.history]
        frame = pd.DataFrame(rows)
        if frame.empty:
            return pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        frame["epoch"] = frame["epoch"].astype("int64")
        return frame.sort_values("epoch").reset_index(drop=True)

    def restore_best(self, model: Any) -> int:
        """Give ``model`` the weights of its best validation epoch (kept by the store); return the epoch."""
        return self.store.restore_best(model, self.record)

    def finish(self, history: Any = None) -> Any:
        """Mark the model trained and drop what reusing it does not need.

        Returns:
            The complete history (``history``, what ``fit`` saw now, is only the
            resumed part; it is returned as given when nothing was committed).
        """
        if not self.record.history and history is not None:
            return history
        self.store.mark_finished(self.record)
        self.store.collect_garbage(self.record)
        return self.history()


class _Unsaved:
    """Training without checkpoints (``train_model`` called without a handle).

    The best validation epoch's weights are kept in memory instead, for :meth:`restore_best`.
    """

    mode = Mode.FRESH
    initial_epoch = 0
    done = False

    def __init__(self) -> None:
        from .callback import BestWeightsInMemory

        self._best = BestWeightsInMemory()
        self.callbacks: list[Any] = [self._best]

    def restore_best(self, model: Any) -> int:
        return self._best.restore(model)

    def finish(self, history: Any = None) -> Any:
        return history


class Checkpoints:
    """The checkpoints of one model: one folder per training fingerprint under ``root``.

    Args:
        root: ``<outputs>/06_models/checkpoints/<model>``.
        label: How log lines name the model (default: the folder's name).
        log_every_s: Seconds between "waiting for the lock" log lines.
    """

    def __init__(self, root: Path | str, *, label: str | None = None, log_every_s: float | None = None) -> None:
        self.root = Path(root)
        self.label = label or self.root.name
        self._log_every_s = log_every_s

    def __repr__(self) -> str:
        return f"Checkpoints({str(self.root)!r})"

    def folders(self) -> list[Path]:
        """The checkpoint folders of this model (one per fingerprint trained)."""
        try:
            return sorted(p for p in self.root.iterdir() if (p / STATE_FILE).is_file())
        except (FileNotFoundError, NotADirectoryError):
            return []

    @contextlib.contextmanager
    def begin(
        self, model: Any, train_set: Any, validation_set: Any, params: Any, *, key: ModelKey
    ) -> Iterator[TrainingSession]:
        """Lock the model's folder, decide fresh/resume/reuse, restore the weights, announce it.

        ``model`` must be compiled (its optimizer's state is restored too).
        Blocks while another process trains the same model with the same
        fingerprint; the lock is released when the block ends.
        """
        fingerprint = training_fingerprint(model, train_set, validation_set, params, seed=key.seed)
        name = fingerprint_id(fingerprint)
        epochs, retrain = int(params.epochs), bool(getattr(params, "retrain", False))
        primary = self.root / name
        # A shorter training than the folder holds gets a folder of its own:
        # the longer model may be another run's result, and is kept.
        for folder in (primary, self.root / f"{name}-epochs{epochs}"):
            with folder_lock(folder, self.label, log_every_s=self._log_every_s):
                store = CheckpointFolder(folder, self.label)
                record = store.read()
                if (
                    folder == primary and not retrain and record is not None
                    and record.fingerprint == fingerprint and record.epochs_done > epochs
                ):
                    logger.info(
                        "%s: the checkpoint in %s has %s epochs, more than training.epochs=%d; "
                        "it is kept, and this training gets a folder of its own",
                        self.label, folder, record.epochs_done, epochs,
                    )
                    continue
                yield self._start(store, record, fingerprint, folder.name, model, params, key)
                return

    def _start(
        self, store: CheckpointFolder, record: CheckpointRecord | None, fingerprint: dict[str, Any],
        name: str, model: Any, params: Any, key: ModelKey,
    ) -> TrainingSession:
        epochs, retrain = int(params.epochs), bool(getattr(params, "retrain", False))
        decision = decide(
            record, fingerprint, epochs=epochs, retrain=retrain,
            weights_exist=record is not None and store.weights_exist(record), where=str(store.directory),
        )
        if record is not None and decision.mode != Mode.FRESH:
            try:
                store.restore(model, record)
            except Exception as exc:  # noqa: BLE001 - a broken checkpoint is retrained
                decision = Decision(Mode.FRESH, f"its weights could not be restored ({type(exc).__name__}: {exc})")
        if decision.mode == Mode.FRESH:
            if record is not None:
                logger.warning(
                    "%s: discarded the checkpoint in %s (%s epochs, %s): %s; training from scratch",
                    self.label, store.directory, record.epochs_done, record.status, decision.reason,
                )
            else:
                self._say_what_differs(store.directory, fingerprint)
            record = store.new_record(fingerprint, epochs)
            store.commit(record)
        else:
            logger.info("%s: %s", self.label, decision.reason)
            record.epochs = epochs
            if decision.mode == Mode.RESUME and record.status is Status.FINISHED:
                record.status = Status.TRAINING  # more epochs asked for than it has
                store.commit(record)
        store.collect_garbage(record)
        optimizer = getattr(params, "optimizer", None)
        learning_rate = getattr(optimizer, "learning_rate", None)
        session = TrainingSession(
            store, record, decision.mode, epochs, key, name,
            float(learning_rate) if learning_rate is not None else None,
        )
        session.announce()
        return session

    def _say_what_differs(self, folder: Path, fingerprint: dict[str, Any]) -> None:
        """Log how the newest other checkpoint of this model differs from this training's settings."""
        others = []
        for other in self.folders():
            if other == folder:
                continue
            record = CheckpointFolder(other, self.label).read()
            if record is not None:
                others.append((record.updated, other, record))
        if not others:
            return
        _, other, record = max(others, key=lambda item: item[0])
        logger.info(
            "%s: no checkpoint with these settings; the newest other one (%s) differs: %s. "
            "Training from scratch in %s; the other checkpoints are kept",
            self.label, other.name, "; ".join(differences(record.fingerprint or {}, fingerprint)), folder,
        )


@contextlib.contextmanager
def training_session(
    checkpoints: Checkpoints | None, model: Any, train_set: Any, validation_set: Any, params: Any,
    *, key: ModelKey,
) -> Iterator[TrainingSession | _Unsaved]:
    """``checkpoints.begin(...)``, or a session that saves nothing when there are no checkpoints."""
    if checkpoints is None:
        yield _Unsaved()
        return
    with checkpoints.begin(model, train_set, validation_set, params, key=key) as session:
        yield session
