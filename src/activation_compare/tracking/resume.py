"""Which run records a model's training: a new one, or an interrupted one continued.

When the training node starts (its :class:`~activation_compare.training_events.TrainingStart`
says fresh, resume or reuse, with the training fingerprint and the epochs
already in the checkpoint), :func:`settle_training_run` picks the run:

- **resume / reuse after an interruption**: the model's latest run with the
  same model name and training fingerprint that did not finish (KILLED,
  FAILED, or RUNNING with a dead owner) is continued: RUNNING again, tagged
  with this Kedro run's id, re-parented under this Kedro run's parent (tag
  ``kedro.previous_parent_run_id`` names the old one, which gets
  ``kedro.resumed_in_run_id`` and ends KILLED if its process died), and every
  epoch the checkpoint holds but the run lacks is back-filled, so each epoch
  metric has steps 1..E exactly once. A run with steps the checkpoint lacks is
  not continued.
- **reuse of a finished model, or more epochs after a finished run**: a new
  run, its curves back-filled from the checkpoint, tagged ``kedro.training``
  = ``reused``/``resumed`` and ``kedro.reused_from_run_id`` /
  ``kedro.resumed_from_run_id``; the finished run stays in its own tree.
- **fresh**: a new run, ``kedro.training`` = ``trained``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import psutil

from activation_compare.identity import TAG_MODEL, ModelKey
from activation_compare.params import ProjectParameters
from activation_compare.training_events import Mode, TrainingStart
from activation_compare.tracking.runs import (
    TAG_HOST,
    TAG_KEDRO_RUN_ID,
    TAG_PARENT_RUN_ID,
    TAG_PID,
    TAG_PID_STARTED,
    RunRef,
    log_params,
    metric_key,
    model_run,
    now_ms,
    process_tags,
    search,
    set_tags,
)
from activation_compare.tracking.store import Store

logger = logging.getLogger(__name__)

TAG_FINGERPRINT = "activation_compare.fingerprint"
TAG_TRAINING = "kedro.training"  # trained | resumed | reused
TAG_PREVIOUS_RUN_IDS = "kedro.previous_run_ids"  # Kedro run ids a continued run spans
TAG_PREVIOUS_PARENT = "kedro.previous_parent_run_id"
TAG_RESUMED_IN = "kedro.resumed_in_run_id"
TAG_RESUMED_FROM = "kedro.resumed_from_run_id"
TAG_REUSED_FROM = "kedro.reused_from_run_id"
_EPOCH_ROW_FIELDS = ("epoch", "time_ms")
_MAX_BATCH_METRICS = 1000
_TRAINING = {Mode.FRESH: "trained", Mode.RESUME: "resumed", Mode.REUSE: "reused"}


def owner_alive(tags: Mapping[str, str]) -> bool:
    """Whether the process that owns a RUNNING run may still be running (True when unsure)."""
    host, pid = tags.get(TAG_HOST), tags.get(TAG_PID)
    if not host or not pid or host != socket.gethostname():
        return True
    try:
        process = psutil.Process(int(pid))
        started = tags.get(TAG_PID_STARTED)
        if started and abs(process.create_time() - float(started)) > 2:
            return False  # the pid was reused by another process
        return process.status() != psutil.STATUS_ZOMBIE
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__ != "NoSuchProcess"


def settle_training_run(
    store: Store,
    parent: RunRef,
    key: ModelKey,
    start: TrainingStart,
    parameters: ProjectParameters,
    data_params: Mapping[str, Any],
) -> RunRef:
    """The run that records this training (see the module docstring), with its history logged.

    ``start`` is the training node's ``TrainingStart``; ``data_params`` the
    sizes of the data the node trains on and the model's settings.
    """
    kedro_run_id = parent.tags[TAG_KEDRO_RUN_ID]
    history = [dict(row) for row in start.history]
    earlier = _earlier_runs(store, key, start.fingerprint, kedro_run_id)
    logged: dict[str, set[int]] = {}
    run = None
    if start.mode is not Mode.FRESH:
        for candidate in earlier:
            logged = _continuable(store, candidate, history)
            if logged is not None:
                run = _reopen(store, candidate, parent, kedro_run_id)
                break
        logged = logged or {}
    if run is None:
        tags = {TAG_TRAINING: _TRAINING[start.mode], TAG_FINGERPRINT: start.fingerprint}
        if start.mode is not Mode.FRESH and earlier:
            tags[TAG_REUSED_FROM if start.mode is Mode.REUSE else TAG_RESUMED_FROM] = earlier[0].run_id
        if parent.model == key.name:  # a single-model run: the parent records the model
            run = parent
            set_tags(store, run.run_id, tags)
        else:
            run = model_run(store, parent, key, parameters, tags)
            if start.mode is not Mode.FRESH:
                # This Kedro run's own run of the model, when the process that trained it
                # died and another goes on (a Dask worker): its epochs are not logged twice,
                # and the run now names the process that owns it.
                logged = _logged_epochs(store, run.run_id, history)
                set_tags(store, run.run_id, process_tags())
    log_params(store, run, data_params)
    backfill(store, run.run_id, history, logged)
    return run


def _earlier_runs(store: Store, key: ModelKey, fingerprint: str, kedro_run_id: str) -> list[RunRef]:
    """Runs of other Kedro runs that trained this model on the same fingerprint, newest first."""
    runs = search(store, {TAG_MODEL: key.name, TAG_FINGERPRINT: fingerprint})
    return [r for r in reversed(runs) if r.tags.get(TAG_KEDRO_RUN_ID) != kedro_run_id]


def _continuable(store: Store, run: RunRef, history: list[dict[str, Any]]) -> dict[str, set[int]] | None:
    """The logged epoch steps of an earlier run this training may continue; None if it may not.

    Only a run that stopped early (KILLED, FAILED, or RUNNING with a dead
    owner) and has no epoch the checkpoint lacks; a FINISHED run stays as it is.
    """
    if run.status == "FINISHED":
        return None
    if run.status in ("RUNNING", "SCHEDULED") and owner_alive(run.tags):
        return None
    last = max((int(row["epoch"]) for row in history), default=0)
    logged = _logged_epochs(store, run.run_id, history)
    if any(step > last for steps in logged.values() for step in steps):
        return None
    return logged


def _logged_epochs(store: Store, run_id: str, history: list[dict[str, Any]]) -> dict[str, set[int]]:
    """The steps a run has logged, per metric it has or the history holds."""
    metrics = store.client.get_run(run_id).data.metrics
    keys = set(metrics) | {metric_key(k) for row in history for k in row if k not in _EPOCH_ROW_FIELDS}
    return {key: logged_steps(store, run_id, key) for key in keys}


def logged_steps(store: Store, run_id: str, key: str) -> set[int]:
    return {int(m.step) for m in store.client.get_metric_history(run_id, key)}


def _reopen(store: Store, previous: RunRef, parent: RunRef, kedro_run_id: str) -> RunRef:
    """Continue an earlier Kedro run's model run here: RUNNING again, under this parent."""
    tags = previous.tags
    old_parent = previous.parent_id
    sessions = [s for s in tags.get(TAG_PREVIOUS_RUN_IDS, "").split(",") if s]
    if tags.get(TAG_KEDRO_RUN_ID):
        sessions.append(tags[TAG_KEDRO_RUN_ID])
    new_tags = {
        TAG_KEDRO_RUN_ID: kedro_run_id,
        TAG_PREVIOUS_RUN_IDS: ",".join(dict.fromkeys(sessions)),
        TAG_TRAINING: "resumed",
        **process_tags(),
    }
    if old_parent != parent.run_id:
        new_tags[TAG_PARENT_RUN_ID] = parent.run_id
        if old_parent:
            new_tags[TAG_PREVIOUS_PARENT] = old_parent
    store.client.update_run(previous.run_id, status="RUNNING")
    set_tags(store, previous.run_id, new_tags)
    if old_parent and old_parent != parent.run_id:
        _retire_parent(store, old_parent, parent.run_id)
    logger.info(
        "MLflow: continuing run %s (%s) of an interrupted kedro run under %s",
        previous.name, previous.run_id, parent.run_id,
    )
    return RunRef(previous.run_id, previous.name, {**tags, **new_tags}, previous.params)


def _retire_parent(store: Store, parent_id: str, resumed_in: str) -> None:
    """The parent of a continued run: point to this run; KILLED if its process died."""
    try:
        parent = store.client.get_run(parent_id)
        earlier = [r for r in parent.data.tags.get(TAG_RESUMED_IN, "").split(",") if r]
        set_tags(store, parent_id, {TAG_RESUMED_IN: ",".join(dict.fromkeys([*earlier, resumed_in]))})
        if parent.info.status == "RUNNING" and not owner_alive(parent.data.tags):
            store.client.set_terminated(parent_id, status="KILLED", end_time=now_ms())
    except Exception as exc:  # noqa: BLE001
        logger.warning("MLflow: could not update the interrupted parent run %s: %s", parent_id, exc)


def backfill(
    store: Store, run_id: str, rows: Iterable[Mapping[str, Any]], logged: Mapping[str, set[int]]
) -> None:
    """Log every (metric, epoch) of ``rows`` that the run does not have yet (step = epoch)."""
    from mlflow.entities import Metric

    now = now_ms()
    metrics = []
    for row in rows:
        step = int(row["epoch"])
        timestamp = int(row.get("time_ms") or now)
        for name, value in row.items():
            key = metric_key(name)
            if name in _EPOCH_ROW_FIELDS or step in logged.get(key, ()):
                continue
            try:
                metrics.append(Metric(key, float(value), timestamp, step))
            except (TypeError, ValueError):
                continue
    for first in range(0, len(metrics), _MAX_BATCH_METRICS):
        store.client.log_batch(run_id, metrics=metrics[first : first + _MAX_BATCH_METRICS], synchronous=True)


def complete_epochs(store: Store, run_id: str, history: Any) -> None:
    """Log any epoch of the final history (a DataFrame) that the run lacks (a failed live log)."""
    if "epoch" not in getattr(history, "columns", ()):
        return
    keys = {metric_key(k) for k in history.columns if k not in _EPOCH_ROW_FIELDS}
    logged = {key: logged_steps(store, run_id, key) for key in keys}
    backfill(store, run_id, history.to_dict("records"), logged)
