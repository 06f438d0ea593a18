"""The run tree of one ``kedro run``: a parent run, and one child run per model.

Every run carries the Kedro run (session) id as tag ``kedro.run_id``, and a
model's run carries the model's tags (:meth:`ModelKey.run_tags`), so any
process that runs a node (a ThreadRunner thread, a ParallelRunner worker, a
Dask worker) finds the parent and its model's run by searching the
experiment: nothing about the tree lives only in one process's memory.

A run that trains a single model is one run: the parent is the model's run.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import re
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from activation_compare.datasets.provenance import git_commit
from activation_compare.identity import TAG_MODEL, ModelKey
from activation_compare.params import ProjectParameters, Protocol
from activation_compare.tracking.params import (
    model_params,
    param_value,
    truncate,
    version,
)
from activation_compare.tracking.store import Store, store_lock

# MLflow is imported inside the functions that call it: every tracking module
# imports without it (the hooks load with every kedro command).
logger = logging.getLogger(__name__)

TAG_KEDRO_RUN_ID = "kedro.run_id"  # Kedro's session id
TAG_KEDRO_ENV = "kedro.env"
TAG_KEDRO_PIPELINE = "kedro.pipeline"
TAG_KEDRO_VERSION = "kedro.version"
TAG_RUNTIME_PARAMS = "kedro.runtime_params"
TAG_ERROR = "kedro.error"
TAG_FAILED_NODE = "kedro.failed_node"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_HOST = "kedro.host"
TAG_PID = "kedro.pid"
TAG_PID_STARTED = "kedro.pid_started"
# Which Dask worker (its address) or process (host:pid) trained the model.
TAG_WORKER = "activation_compare.worker"
# Tags of the parent that every child copies (what the UI filters and groups by).
INHERITED_TAGS = (
    TAG_KEDRO_RUN_ID,
    TAG_KEDRO_ENV,
    TAG_KEDRO_PIPELINE,
    TAG_KEDRO_VERSION,
    TAG_RUNTIME_PARAMS,
    TAG_GIT_COMMIT,
    "mlflow.source.type",
    "mlflow.source.name",
    "mlflow.user",
)

_METRIC_KEY_DISALLOWED = re.compile(r"[^A-Za-z0-9_\-. /]")


def now_ms() -> int:
    return int(time.time() * 1000)


def metric_key(name: str) -> str:
    """A metric key MLflow accepts (class names of an image folder may hold anything)."""
    return _METRIC_KEY_DISALLOWED.sub("_", str(name))


def process_tags() -> dict[str, str]:
    """Which process owns a run, so a later run can tell a dead owner from a live one."""
    tags = {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid()), TAG_WORKER: worker_identity()}
    try:
        tags[TAG_PID_STARTED] = f"{psutil.Process().create_time():.0f}"
    except Exception:  # noqa: BLE001 - the pid alone will do
        pass
    return tags


def worker_identity() -> str:
    """The Dask worker running this task (DaskRunner), else ``host:pid``."""
    distributed = sys.modules.get("distributed")  # never imported just to ask
    if distributed is not None:
        try:
            return distributed.get_worker().address
        except ValueError:  # this thread is not a Dask worker's
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def pipeline_tags(run_params: Mapping[str, Any], pipeline_name: str, project_path: Path) -> dict[str, str]:
    """The parent's tags: Kedro run id, environment, pipeline, versions, commit, user."""
    tags = {
        TAG_KEDRO_RUN_ID: str(run_params.get("run_id") or ""),
        TAG_KEDRO_ENV: str(run_params.get("env") or ""),
        TAG_KEDRO_PIPELINE: pipeline_name,
        TAG_KEDRO_VERSION: str(run_params.get("kedro_version") or version("kedro") or ""),
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"kedro run --pipeline={pipeline_name}",
    }
    try:
        tags["mlflow.user"] = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is fine
        pass
    commit = git_commit(project_path)
    if commit:
        tags[TAG_GIT_COMMIT] = commit
    runtime = run_params.get("runtime_params")
    if runtime:
        tags[TAG_RUNTIME_PARAMS] = truncate(json.dumps(runtime, default=str, sort_keys=True))
    return {k: v for k, v in tags.items() if v != ""}


def pipeline_name(run_params: Mapping[str, Any], pipeline: Any) -> str:
    """The name(s) the user asked for; ``__default__`` is named after the pipeline it equals."""
    names = list(run_params.get("pipeline_names") or []) or ["__default__"]
    if names == ["__default__"]:
        try:
            from kedro.framework.project import pipelines  # the project's, configured by now

            default = set(pipelines["__default__"].nodes)
            for name, candidate in pipelines.items():
                if name != "__default__" and set(candidate.nodes) == default:
                    return name
        except Exception:  # noqa: BLE001 - the plain name will do
            pass
    return "+".join(names)


def parent_run_name(pipeline: str, keys: list[ModelKey], parameters: ProjectParameters) -> str:
    """What a run compares, e.g. ``relu vs rrelu, seeds 0,1,2, 15 epochs, synthetic``.

    A run of one model is named after it (``rrelu-seed0``); one that trains no
    model after its pipeline.
    """
    if len(keys) == 1:
        return keys[0].run_name
    if not keys:
        return pipeline
    activations = " vs ".join(dict.fromkeys(key.activation for key in keys))
    rigorous = parameters.compare.protocol is Protocol.RIGOROUS
    # The seeds compared: a rigorous run's tuning trials have a seed of their own.
    seeds = sorted({key.seed for key in keys if key.trial is None} or {key.seed for key in keys})
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {','.join(map(str, seeds))}"
    epochs, source = parameters.training.epochs, parameters.data.source
    epoch_text = f"{epochs} epoch{'' if epochs == 1 else 's'}" if epochs else None
    parts = [activations, seed_text, epoch_text, source, "rigorous" if rigorous else None]
    return ", ".join(str(part) for part in parts if part)


# --- runs ------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRef:
    """An MLflow run as this package needs it: id, name, tags, params."""

    run_id: str
    name: str
    tags: Mapping[str, str]
    params: Mapping[str, str]
    status: str = "RUNNING"
    start_time: int = 0

    @classmethod
    def of(cls, run: Any) -> RunRef:
        return cls(
            run.info.run_id,
            run.info.run_name or "",
            dict(run.data.tags),
            dict(run.data.params),
            run.info.status,
            run.info.start_time or 0,
        )

    @property
    def model(self) -> str | None:
        """The model's name when this run is a model's run (a child, or a single-model run)."""
        return self.tags.get(TAG_MODEL)

    @property
    def parent_id(self) -> str | None:
        return self.tags.get(TAG_PARENT_RUN_ID)


def search(store: Store, tags: Mapping[str, str]) -> list[RunRef]:
    """The experiment's active runs that have every one of ``tags``, oldest first."""
    from mlflow.entities import ViewType

    clauses = [f"tags.`{name}` = '{value}'" for name, value in tags.items()]
    runs = store.client.search_runs(
        [store.experiment_id],
        filter_string=" and ".join(clauses),
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=1000,
    )
    return sorted((RunRef.of(run) for run in runs), key=lambda r: (r.start_time, r.run_id))


def create_run(store: Store, name: str, tags: Mapping[str, str], params: Mapping[str, Any]) -> RunRef:
    run = store.client.create_run(
        store.experiment_id, start_time=now_ms(), tags=dict(tags), run_name=name
    )
    ref = RunRef(run.info.run_id, name, dict(tags), {})
    log_params(store, ref, params)
    return RunRef(ref.run_id, name, dict(tags), {k: param_value(v) for k, v in params.items() if v is not None})


def create_child(
    store: Store, parent: RunRef, name: str, tags: Mapping[str, str], params: Mapping[str, Any]
) -> RunRef:
    """A run nested under ``parent``: the parent's :data:`INHERITED_TAGS`, this process's tags, then ``tags``."""
    inherited = {k: parent.tags[k] for k in INHERITED_TAGS if k in parent.tags}
    all_tags = {**inherited, **process_tags(), TAG_PARENT_RUN_ID: parent.run_id, **tags}
    return create_run(store, name, all_tags, params)


def find_parent(store: Store, kedro_run_id: str) -> RunRef | None:
    """The parent run of a Kedro run (the one of its runs without a parent)."""
    runs = [r for r in search(store, {TAG_KEDRO_RUN_ID: kedro_run_id}) if r.parent_id is None]
    return runs[0] if runs else None


def find_model_run(store: Store, kedro_run_id: str, key: ModelKey) -> RunRef | None:
    """The run recording ``key`` in this Kedro run: a child (created or continued), else a single run.

    Ties are broken by run id, so every process sees the same order.
    """
    runs = _model_runs(store, kedro_run_id, key)
    children = [r for r in runs if r.parent_id is not None]
    return (children or runs or [None])[0]


def _model_runs(store: Store, kedro_run_id: str, key: ModelKey) -> list[RunRef]:
    return search(store, {TAG_KEDRO_RUN_ID: kedro_run_id, TAG_MODEL: key.name})


def model_run(
    store: Store,
    parent: RunRef,
    key: ModelKey,
    parameters: ProjectParameters,
    tags: Mapping[str, str] | None = None,
) -> RunRef:
    """The model's run in this Kedro run, created under ``parent`` (with ``tags``) if it has none yet.

    The look-up and the creation hold the store's lock, so two threads or
    processes asking at once get one run (SQLite stores; a tracking server has
    no such lock, and the pipeline never runs two nodes of one model at once).
    """
    with store_lock(store.uri, "runs"):
        found = find_model_run(store, parent.tags[TAG_KEDRO_RUN_ID], key)
        if found is None:
            all_tags = {**key.run_tags(), **(tags or {})}
            return create_child(store, parent, key.run_name, all_tags, model_params(parameters, key))
    if tags:
        set_tags(store, found.run_id, tags)
    return found


def log_params(store: Store, run: RunRef, params: Mapping[str, Any]) -> None:
    """Log params the run does not have (MLflow params are write-once).

    A value that differs from the one the run has (a run continued from an
    earlier ``kedro run``) is recorded as a tag ``kedro.param_changed.<key>``.
    """
    from mlflow.entities import Param, RunTag

    values = {k: param_value(v) for k, v in params.items() if v is not None}
    new = {k: v for k, v in values.items() if k not in run.params}
    changed = {k: v for k, v in values.items() if k in run.params and run.params[k] != v}
    if new:
        store.client.log_batch(run.run_id, params=[Param(k, v) for k, v in new.items()], synchronous=True)
    if changed:
        store.client.log_batch(
            run.run_id,
            tags=[RunTag(f"kedro.param_changed.{k}", truncate(v)) for k, v in changed.items()],
            synchronous=True,
        )


def log_metrics(store: Store, run_id: str, metrics: Mapping[str, Any], step: int = 0) -> None:
    """Log the finite numbers among ``metrics`` at ``step``."""
    from mlflow.entities import Metric

    timestamp = now_ms()
    batch = [
        Metric(metric_key(k), float(v), timestamp, step)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]
    if batch:
        store.client.log_batch(run_id, metrics=batch, synchronous=True)


def set_tags(store: Store, run_id: str, tags: Mapping[str, Any]) -> None:
    from mlflow.entities import RunTag

    if tags:
        store.client.log_batch(
            run_id, tags=[RunTag(k, truncate(str(v))) for k, v in tags.items()], synchronous=True
        )


def end_run(
    store: Store,
    run_id: str,
    status: str,
    error: BaseException | str | None = None,
    node: str | None = None,
    *,
    only_if_running: bool = True,
) -> bool:
    """End a run (FINISHED, FAILED, KILLED), tagging the error; False if it had ended already.

    A run that ends FINISHED loses the error tags of an earlier failed attempt
    it continues (:mod:`.resume`): its last attempt did not fail.
    """
    run = store.client.get_run(run_id) if only_if_running or status == "FINISHED" else None
    if only_if_running and run.info.status not in ("RUNNING", "SCHEDULED"):
        return False
    if status == "FINISHED":
        clear_error(store, run_id, run.data.tags)
    if error is not None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        tags = {TAG_ERROR: text}
        if node:
            tags[TAG_FAILED_NODE] = node
        set_tags(store, run_id, tags)
    store.client.set_terminated(run_id, status=status, end_time=now_ms())
    return True


def clear_error(store: Store, run_id: str, tags: Mapping[str, str]) -> None:
    """Delete the error tags (``kedro.error``, ``kedro.failed_node``) that ``tags`` hold."""
    for tag in (TAG_ERROR, TAG_FAILED_NODE):
        if tag in tags:
            store.client.delete_tag(run_id, tag)


def end_open_runs(store: Store, kedro_run_id: str, status: str) -> None:
    """End every run of a Kedro run still RUNNING: children first, then the parent.

    A store that cannot be reached (a tracking server that died mid-run) is a
    warning, not a crash of a run that has trained and saved everything: its
    runs stay RUNNING, and the same command continues them once the store is back.
    """
    try:
        found = search(store, {TAG_KEDRO_RUN_ID: kedro_run_id})
    except Exception as exc:  # noqa: BLE001 - tracking never fails a finished pipeline
        logger.warning(
            "MLflow: could not end the runs of kedro run %s as %s (%s): they stay RUNNING in %s; "
            "the same command continues them once the store answers again", kedro_run_id, status, exc, store.uri,
        )
        return
    runs = [r for r in found if r.status in ("RUNNING", "SCHEDULED")]
    runs.sort(key=lambda r: r.parent_id is None)
    for run in runs:
        try:
            if status == "FINISHED":
                clear_error(store, run.run_id, run.tags)
            store.client.set_terminated(run.run_id, status=status, end_time=now_ms())
        except Exception as exc:  # noqa: BLE001 - try every run
            logger.warning("MLflow: could not end run %s (%s) as %s: %s", run.name, run.run_id, status, exc)
