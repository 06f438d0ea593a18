"""What to do with a model's checkpoint: train it fresh, resume it, or reuse it as it is.

Decided per model, under the checkpoint folder's lock, from the committed
record of the folder that matches the run's training fingerprint:

* no record, or ``training.retrain=true``: train from scratch;
* a record of another fingerprint (only an old or damaged folder has one) or
  without its weights file: train from scratch, saying why;
* interrupted after ``k`` epochs: resume with epoch ``k + 1``, keeping the
  first ``k`` rows of history;
* finished with the same ``training.epochs``: nothing is trained, the saved
  model and history are the result;
* finished, and ``training.epochs`` is now larger: training continues from the
  final state (Adam at a constant learning rate has no schedule that would make
  this differ from a longer run). A record with *more* epochs than asked is
  never trained over (another run may use it): :mod:`.checkpoints` trains the
  shorter model in a folder of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The event's vocabulary: the decision is what TrainingStart.mode reports.
from activation_compare.training_events import Mode

from .fingerprint import differences
from .store import CheckpointRecord, Status


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: str


def decide(
    record: CheckpointRecord | None,
    fingerprint: dict[str, Any],
    *,
    epochs: int,
    retrain: bool,
    weights_exist: bool,
    where: str,
) -> Decision:
    """Fresh, resume or reuse for a model asked to have ``epochs`` epochs.

    Args:
        record: The folder's committed record (``state.json``), or None.
        fingerprint: What this run trains on (:func:`.fingerprint.training_fingerprint`).
        epochs: ``training.epochs``.
        retrain: ``training.retrain``.
        weights_exist: Whether the weights file the record names is there.
        where: The folder, for the log line.
    """
    if record is None:
        return Decision(Mode.FRESH, "no checkpoint")
    done, status = record.epochs_done, record.status
    if retrain:
        return Decision(Mode.FRESH, "training.retrain=true asks to train it again")
    if record.fingerprint != fingerprint:
        return Decision(Mode.FRESH, "; ".join(differences(record.fingerprint or {}, fingerprint)))
    if done > 0 and not weights_exist:
        return Decision(Mode.FRESH, f"its weights file {record.weights!r} is missing")
    if done > epochs:
        return Decision(Mode.FRESH, f"it has {done} epochs, more than training.epochs={epochs}")
    if status is Status.FINISHED and done == epochs:
        return Decision(
            Mode.REUSE,
            f"already trained ({done} epochs); not training it again (--params training.retrain=true would)",
        )
    if done == epochs:
        return Decision(Mode.REUSE, f"all {epochs} epochs were trained before the interruption")
    if status is Status.FINISHED:
        return Decision(
            Mode.RESUME, f"training.epochs grew from {done} to {epochs}: continuing with epoch {done + 1}"
        )
    return Decision(Mode.RESUME, f"resuming at epoch {done + 1}/{epochs} from the checkpoint in {where}")
