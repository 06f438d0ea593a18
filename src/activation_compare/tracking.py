"""MLflow tracking of Kedro runs: one parent run per ``kedro run``, one child run per model.

Why a project hook on MLflow's client API, with explicit run ids
-----------------------------------------------------------------
This module is the only place that knows about MLflow; nodes stay pure
functions that run and test without it. It is a Kedro hook
(:class:`MlflowTrackingHook`, registered in ``settings.py``) that talks to
MLflow only through :class:`mlflow.MlflowClient` and run ids it keeps itself,
never through ``mlflow.start_run``/``mlflow.log_*`` and MLflow's "active run":

* MLflow's active run is per thread, and Kedro's ``ThreadRunner`` runs nodes
  (and their node hooks) in worker threads, so an active run opened in
  ``before_pipeline_run`` is not active where the nodes run.
* kedro-mlflow opens exactly one run per ``kedro run`` and re-opens it in every
  node, so it cannot give one child run per trained model (activation x seed)
  under a parent run, which is what lets MLflow's compare view overlay RReLU
  and ReLU curves (every child logs the same metric keys).
* Metrics are logged live from the training node's thread: the hook subscribes
  to :mod:`activation_compare.training_events` in ``before_node_run`` of the
  node tagged ``training`` and sends one ``log_batch(run_id, ...)`` per epoch,
  step = epoch (0-based), so curves grow in the UI while a model trains.
* Kedro saves a node's outputs *after* ``after_node_run``, so the hook logs the
  in-memory outputs it is handed there (the trained Keras model, report,
  figures, comparison table) and never reads files that are not written yet.
* Every run it opens is closed: FINISHED after the pipeline, FAILED from
  ``on_node_error``/``on_pipeline_error``, KILLED on Ctrl-C. Kedro does not
  pass ``KeyboardInterrupt`` (not an ``Exception``) to ``on_pipeline_error``,
  so the hook wraps the SIGINT handler while a pipeline runs, ends the runs
  from a helper thread and re-raises; an ``atexit`` handler and the next run in
  the same process close whatever is still open (e.g. after ``SystemExit``).
* Tracking never stops a training: a failed MLflow call during the run is a
  warning. But if the store cannot be reached when the pipeline starts, the
  run fails at once, so nothing trains untracked by surprise
  (``enabled: false`` opts out).
* Each trained model is an MLflow 3 logged model named ``model`` (Keras
  flavour, signature, input example) linked to its child run:
  ``mlflow.pyfunc.load_model("runs:/<child run id>/model")``. RReLU is a
  custom Keras layer: import ``activation_compare.layers`` before loading.

Where runs go: ``conf/<env>/mlflow.yml`` (``enabled``, ``tracking_uri``,
``experiment_name``, ``artifact_location``, ``log_models``), with
``MLFLOW_TRACKING_URI`` / ``MLFLOW_EXPERIMENT_NAME`` taking precedence. The
default is an embedded SQLite store, ``<project>/mlflow.db``, with artifacts
under ``<project>/mlartifacts``; relative paths are resolved against the
project root, never the working directory. An ``http(s)://`` URI sends
everything to an ``mlflow server`` (its database, its artifact store).

A run that trains a single model (e.g. ``--params compare.activations=[rrelu]``
with one seed) is tracked as one run, without parent or children.
"""

from __future__ import annotations

import atexit
import getpass
import json
import logging
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kedro.framework.hooks import hook_impl

from activation_compare import training_events

if TYPE_CHECKING:  # MLflow is imported only when a tracked pipeline starts.
    from kedro.framework.context import KedroContext
    from kedro.pipeline import Node, Pipeline
    from mlflow import MlflowClient

logger = logging.getLogger(__name__)

# --- configuration -----------------------------------------------------------

CONFIG_KEY = "mlflow"  # conf/<env>/mlflow.yml (pattern declared in settings.py)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT_NAME = "activation-compare"
DEFAULT_ARTIFACT_LOCATION = "mlartifacts"
CONFIG_KEYS = ("enabled", "tracking_uri", "experiment_name", "artifact_location", "log_models")
_REMOTE_SCHEMES = {"http", "https", "databricks", "databricks-uc", "uc"}

# --- what the hook recognises in the pipeline ----------------------------------

TRAINING_TAG = "training"  # activation_compare.pipelines.modelling.pipeline.TRAINING_TAG
COMPARE_NODE = "compare_activations_node"
SHARED_DATA_INPUTS = {"train_set": "train", "validation_set": "validation", "test_set": "test"}

# --- run tags -------------------------------------------------------------------

TAG_KEDRO_RUN_ID = "kedro.run_id"  # Kedro's session id
TAG_KEDRO_ENV = "kedro.env"
TAG_KEDRO_PIPELINE = "kedro.pipeline"
TAG_KEDRO_VERSION = "kedro.version"
TAG_RUNTIME_PARAMS = "kedro.runtime_params"
TAG_ERROR = "kedro.error"
TAG_FAILED_NODE = "kedro.failed_node"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"
TAG_ACTIVATION = "activation"
TAG_SEED = "seed"

MODEL_ARTIFACT_NAME = "model"
_EXAMPLE_IMAGES = 2
_MAX_TAG_CHARS = 5000
_METRIC_KEY_DISALLOWED = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class TrackingSettings:
    """Where and whether runs are tracked, resolved for one project."""

    enabled: bool = True
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment_name: str = DEFAULT_EXPERIMENT_NAME
    # Used only when the experiment is created; None lets the store decide.
    artifact_location: str | None = None
    log_models: bool = True

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None,
        project_path: Path,
        environ: Mapping[str, str] | None = None,
    ) -> TrackingSettings:
        """Read ``conf/<env>/mlflow.yml``; ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` win.

        Raises:
            ValueError: On an unknown (e.g. misspelt) key.
        """
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown key(s) {unknown} in conf/<env>/{CONFIG_KEY}.yml; "
                f"allowed: {list(CONFIG_KEYS)}"
            )
        project_path = Path(project_path).resolve()
        uri = (
            environ.get("MLFLOW_TRACKING_URI")
            or config.get("tracking_uri")
            or DEFAULT_TRACKING_URI
        )
        uri = resolve_tracking_uri(str(uri), project_path)
        location = config.get("artifact_location", DEFAULT_ARTIFACT_LOCATION)
        return cls(
            enabled=_as_bool(config.get("enabled", True), "enabled"),
            tracking_uri=uri,
            experiment_name=str(
                environ.get("MLFLOW_EXPERIMENT_NAME")
                or config.get("experiment_name")
                or DEFAULT_EXPERIMENT_NAME
            ),
            artifact_location=resolve_artifact_location(location, uri, project_path),
            log_models=_as_bool(config.get("log_models", True), "log_models"),
        )


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise ValueError(f"{CONFIG_KEY}.{key} must be true or false, got {value!r}")


def resolve_tracking_uri(uri: str, project_path: Path) -> str:
    """Make a local store's path absolute, relative to the project root (not the cwd).

    ``sqlite:///mlflow.db`` becomes ``sqlite:////<project>/mlflow.db``; a plain
    or ``file:`` path becomes an absolute ``file://`` URI; anything else (an
    ``http(s)://`` server, ``postgresql://``, ``databricks``...) is unchanged.
    """
    uri = uri.strip()
    if uri.startswith("sqlite:///"):
        path, sep, query = uri[len("sqlite:///") :].partition("?")
        if path and path != ":memory:" and not path.startswith("/"):
            path = (Path(project_path) / path).resolve().as_posix()
            return f"sqlite:///{path}{sep}{query}"
        return uri
    parsed = urlparse(uri)
    if parsed.scheme == "":
        return (Path(project_path) / uri).resolve().as_uri()
    if parsed.scheme == "file" and not parsed.netloc and not parsed.path.startswith("/"):
        return (Path(project_path) / parsed.path).resolve().as_uri()
    return uri


def is_remote_tracking_uri(uri: str) -> bool:
    """Whether runs go to a server that owns its artifact store (``http(s)://``, Databricks)."""
    return urlparse(uri).scheme in _REMOTE_SCHEMES or uri == "databricks"


def resolve_artifact_location(
    location: str | None, tracking_uri: str, project_path: Path
) -> str | None:
    """The artifact location for a new experiment, or None for the store's default.

    A local path (``mlartifacts``) is made absolute under the project root; it is
    ignored for a tracking server, whose artifact store serves the artifacts. A
    URI with a scheme (``s3://``, ``mlflow-artifacts:/``...) is used as given.
    """
    if not location:
        return None
    location = str(location)
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return location
    if is_remote_tracking_uri(tracking_uri):
        return None
    path = Path(parsed.path if parsed.scheme == "file" else location)
    return (Path(project_path) / path).resolve().as_uri()


# --- small helpers ------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _metric_key(name: str) -> str:
    """A metric key MLflow accepts (class names of an image folder may hold anything)."""
    return _METRIC_KEY_DISALLOWED.sub("_", str(name))


def _param_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _truncate(text: str, limit: int = _MAX_TAG_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_commit(project_path: Path) -> str | None:
    """The commit checked out in the project's git repository; None outside one."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=project_path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


_IDENTITY_TAG = re.compile(r"^(activation|seed)[:.=](.+)$")
_SEED_IN_NODE_NAME = re.compile(r"_seed(-?\d+)_node$")


def _identity(node: Node) -> tuple[str, int] | None:
    """(activation, seed) of a modelling node, or None for any other node.

    From its ``activation:<name>``/``seed:<n>`` tags (``.`` also accepted, as
    Kedro restricts tag characters), else from its namespace (the activation)
    and its name (``..._seed<n>_node``).
    """
    found: dict[str, str] = {}
    for tag in node.tags:
        match = _IDENTITY_TAG.match(tag)
        if match:
            found[match.group(1)] = match.group(2)
    activation = found.get("activation") or node.namespace
    seed = found.get("seed")
    if seed is None:
        match = _SEED_IN_NODE_NAME.search(node.name)
        seed = match.group(1) if match else None
    if not activation or seed is None:
        return None
    try:
        return activation, int(seed)
    except ValueError:
        return None


def _run_name(identity: tuple[str, int]) -> str:
    return f"{identity[0]}-seed{identity[1]}"


def _short_dataset_name(dataset: str) -> str:
    """``rrelu.accuracy_curves_seed0`` -> ``accuracy_curves``."""
    name = dataset.rsplit(".", 1)[-1]
    return re.sub(r"_seed-?\d+$", "", name)


_quiet_done = False


def _quiet_mlflow() -> None:
    """Keep MLflow's housekeeping off the console (users' explicit settings win)."""
    global _quiet_done
    if _quiet_done:
        return
    _quiet_done = True
    # tqdm bars for every artifact upload/download.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name, level in (
        ("mlflow.store.db.utils", logging.WARNING),  # "Creating initial MLflow database tables..."
        ("mlflow.store.sqlalchemy_store", logging.WARNING),
        ("alembic", logging.WARNING),  # SQLite schema migrations
        ("mlflow.utils.environment", logging.ERROR),  # "Failed to resolve installed pip version"
        ("mlflow.utils.requirements_utils", logging.ERROR),
    ):
        named = logging.getLogger(name)
        if named.level == logging.NOTSET or named.level < level:
            named.setLevel(level)


# --- the state of one tracked pipeline run ---------------------------------------


@dataclass
class _Run:
    """One MLflow run this hook opened, and what it has logged so far."""

    run_id: str
    name: str
    pending_nodes: int = 0  # the model's nodes still to finish (child runs)
    params: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    listener: training_events.Listener | None = None
    listener_thread: int | None = None


@dataclass
class _Plan:
    """What a pipeline will train: node counts per (activation, seed) and whether it compares."""

    models: Counter
    compares: bool

    @classmethod
    def of(cls, pipeline: Pipeline) -> _Plan:
        models: Counter = Counter()
        for node in pipeline.nodes:
            identity = _identity(node)
            if identity is not None:
                models[identity] += 1
        return cls(models=models, compares=any(n.name == COMPARE_NODE for n in pipeline.nodes))

    @property
    def tracked(self) -> bool:
        return bool(self.models) or self.compares

    @property
    def nested(self) -> bool:
        return len(self.models) > 1


class _PipelineRun:
    """The MLflow runs of one ``kedro run``: a parent (or a single run) and children."""

    def __init__(
        self,
        settings: TrackingSettings,
        plan: _Plan,
        run_params: Mapping[str, Any],
        parameters: Mapping[str, Any],
        pipeline_name: str,
        project_path: Path,
    ) -> None:
        from mlflow import MlflowClient

        self.settings = settings
        self.plan = plan
        self.parameters = parameters
        self.pid = os.getpid()
        self.client: MlflowClient = MlflowClient(tracking_uri=settings.tracking_uri)
        self._lock = threading.RLock()
        self._warned: set[str] = set()
        self.children: dict[tuple[str, int], _Run] = {}
        self.failed_node: str | None = None
        self.experiment_id = self._experiment_id()
        self.common_tags = self._common_tags(run_params, pipeline_name, project_path)
        if plan.nested or not plan.models:
            name = pipeline_name
            tags = dict(self.common_tags)
        else:
            (identity,) = plan.models
            name = _run_name(identity)
            tags = {**self.common_tags, **self._identity_tags(identity)}
        self.main = self._create_run(name, tags)
        if not plan.nested and plan.models:
            (identity,) = plan.models
            self.children[identity] = self.main
            self.main.pending_nodes = plan.models[identity]
        try:
            self._log_params(self.main, self._shared_params())
            if not plan.nested and plan.models:
                self._log_params(self.main, self._model_params(next(iter(plan.models))))
        except BaseException:
            self.close_all("FAILED")
            raise

    # -- setup -------------------------------------------------------------------

    def _experiment_id(self) -> str:
        from mlflow.entities import LifecycleStage
        from mlflow.exceptions import MlflowException

        name = self.settings.experiment_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(
                    name, artifact_location=self.settings.artifact_location
                )
            except MlflowException:
                # Another process created it meanwhile.
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            self.client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id

    def _common_tags(
        self, run_params: Mapping[str, Any], pipeline_name: str, project_path: Path
    ) -> dict[str, str]:
        tags = {
            TAG_KEDRO_RUN_ID: str(run_params.get("run_id") or ""),
            TAG_KEDRO_ENV: str(run_params.get("env") or ""),
            TAG_KEDRO_PIPELINE: pipeline_name,
            TAG_KEDRO_VERSION: str(run_params.get("kedro_version") or _version("kedro") or ""),
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": f"kedro run --pipeline={pipeline_name}",
        }
        try:
            tags["mlflow.user"] = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name is fine
            pass
        commit = _git_commit(project_path)
        if commit:
            tags[TAG_GIT_COMMIT] = commit
        runtime = run_params.get("runtime_params")
        if runtime:
            tags[TAG_RUNTIME_PARAMS] = _truncate(json.dumps(runtime, default=str, sort_keys=True))
        return {k: v for k, v in tags.items() if v != ""}

    @staticmethod
    def _identity_tags(identity: tuple[str, int]) -> dict[str, str]:
        return {TAG_ACTIVATION: identity[0], TAG_SEED: str(identity[1])}

    def _create_run(self, name: str, tags: Mapping[str, str]) -> _Run:
        run = self.client.create_run(
            self.experiment_id, start_time=_now_ms(), tags=dict(tags), run_name=name
        )
        return _Run(run_id=run.info.run_id, name=name)

    # -- parameters ----------------------------------------------------------------

    def _shared_params(self) -> dict[str, Any]:
        p = self.parameters
        data, training = p.get("data") or {}, p.get("training") or {}
        optimizer = training.get("optimizer") or {}
        compare, model = p.get("compare") or {}, p.get("model") or {}
        validation_split = data.get("validation_split", 0.0) or 0.0
        params = {
            "compare.activations": compare.get("activations"),
            "compare.baseline": compare.get("baseline"),
            "compare.confidence_level": compare.get("confidence_level"),
            "training.seeds": training.get("seeds"),
            "training.epochs": training.get("epochs"),
            "training.batch_size": training.get("batch_size"),
            "training.optimizer": optimizer.get("name"),
            "training.learning_rate": optimizer.get("learning_rate"),
            "model.architecture": model.get("architecture"),
            "data.source": data.get("source"),
            "data.path": data.get("path"),
            "data.limit_train": data.get("limit_train"),
            "data.limit_test": data.get("limit_test"),
            "data.validation_split": validation_split,
            "data.validation_mode": "test_set" if float(validation_split) == 0 else "holdout",
            "data.split_seed": data.get("split_seed"),
            "tensorflow_version": _version("tensorflow"),
            "keras_version": _version("keras"),
            "mlflow_version": _version("mlflow"),
        }
        return {k: v for k, v in params.items() if v is not None}

    def _model_params(self, identity: tuple[str, int]) -> dict[str, Any]:
        activation, seed = identity
        spec = (self.parameters.get("activations") or {}).get(activation) or {}
        params: dict[str, Any] = {TAG_ACTIVATION: activation, TAG_SEED: seed}
        for key, value in spec.items():
            params[f"activation.{key}"] = value
        shared = self._shared_params()
        for key in ("compare.activations", "compare.baseline", "compare.confidence_level", "training.seeds"):
            shared.pop(key, None)
        params.update(shared)
        return params

    def _log_params(self, run: _Run, params: Mapping[str, Any]) -> None:
        """Log params not logged yet (MLflow params are write-once)."""
        from mlflow.entities import Param

        with self._lock:
            new = {
                k: _param_value(v)
                for k, v in params.items()
                if v is not None and k not in run.params
            }
            run.params.update(new)
        if new:
            self.client.log_batch(
                run.run_id, params=[Param(k, v) for k, v in new.items()], synchronous=True
            )

    def _log_metrics(self, run: _Run, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        timestamp = _now_ms()
        batch = [
            Metric(_metric_key(k), float(v), timestamp, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if batch:
            self.client.log_batch(run.run_id, metrics=batch, synchronous=True)

    # -- runs of models ----------------------------------------------------------------

    def model_run(self, identity: tuple[str, int]) -> _Run:
        """The run of one model, created (as a child of the parent) on its first node."""
        with self._lock:
            run = self.children.get(identity)
            if run is None:
                tags = {
                    **self.common_tags,
                    **self._identity_tags(identity),
                    TAG_PARENT_RUN_ID: self.main.run_id,
                }
                run = self._create_run(_run_name(identity), tags)
                run.pending_nodes = self.plan.models.get(identity, 0)
                self.children[identity] = run
                created = True
            else:
                created = False
        if created:
            self._log_params(run, self._model_params(identity))
        return run

    def start_epoch_logging(self, run: _Run) -> None:
        """Log every epoch's metrics as it ends, from the training node's own thread."""
        client = self.client
        run_id = run.run_id

        def on_epoch_end(event: training_events.EpochEnd) -> None:
            if run.closed:
                return
            try:
                from mlflow.entities import Metric

                timestamp = _now_ms()
                metrics = [
                    Metric(_metric_key(key), float(value), timestamp, int(event.epoch))
                    for key, value in event.metrics.items()
                ]
                client.log_batch(run_id, metrics=metrics, synchronous=True)
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                self.warn_once("epoch", "MLflow: could not log epoch metrics of run %s: %s", run.name, exc)

        self.stop_epoch_logging(run)
        run.listener = training_events.subscribe(on_epoch_end)
        run.listener_thread = threading.get_ident()

    @staticmethod
    def stop_epoch_logging(run: _Run) -> None:
        listener = run.listener
        if listener is not None and run.listener_thread == threading.get_ident():
            training_events.unsubscribe(listener)
        run.listener = None
        run.listener_thread = None

    def log_data_info(self, runs: list[_Run], inputs: Mapping[str, Any]) -> None:
        """Split sizes from the inputs a node gets; the source's description from the loaded images."""
        info: dict[str, Any] = {
            f"data.{split}_size": len(inputs[name])
            for name, split in SHARED_DATA_INPUTS.items()
            if name in inputs and hasattr(inputs[name], "__len__")
        }
        for value in inputs.values():
            description = getattr(value, "description", None)
            if isinstance(description, str) and hasattr(value, "class_names"):
                info["data.description"] = _truncate(description, 500)
                info["data.classes"] = len(value.class_names)
        if info:
            for run in runs:
                self._log_params(run, info)

    def log_model(self, run: _Run, model: Any, examples: Any, final_step: int) -> None:
        """The trained model in MLflow's Keras flavour, with signature and input example."""
        import mlflow
        import numpy as np
        from mlflow.entities import LoggedModelOutput, LoggedModelStatus
        from mlflow.models import Model, infer_signature

        example = np.asarray(examples[:_EXAMPLE_IMAGES], dtype=np.float32)
        signature = infer_signature(example, model.predict(example, verbose=0))
        logged = self.client.create_logged_model(
            self.experiment_id,
            name=MODEL_ARTIFACT_NAME,
            source_run_id=run.run_id,
            model_type="keras",
        )
        try:
            self.client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=final_step)])
            requirements = [
                f"{package}=={version}"
                for package in ("tensorflow", "keras")
                if (version := _version(package))
            ]
            with tempfile.TemporaryDirectory() as tmp:
                # mlflow.keras.save_model writes the input example before it creates
                # the model folder (mlflow/mlflow#16183), so the folder must exist.
                local = Path(tmp, MODEL_ARTIFACT_NAME)
                local.mkdir()
                mlflow.keras.save_model(
                    model,
                    str(local),
                    mlflow_model=Model(
                        artifact_path=logged.artifact_location,
                        run_id=run.run_id,
                        model_uuid=logged.model_id,
                        model_id=logged.model_id,
                    ),
                    signature=signature,
                    input_example=example,
                    # Explicit: inferring them would load the model in a subprocess.
                    pip_requirements=requirements,
                )
                self.client.log_model_artifacts(logged.model_id, str(local))
            self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
        except BaseException:
            try:
                self.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
            finally:
                raise

    def log_report(self, run: _Run, report: Mapping[str, Any]) -> None:
        metrics = {
            key: report[key]
            for key in (
                "test_accuracy",
                "final_train_accuracy",
                "final_val_accuracy",
                "best_val_accuracy",
                "best_epoch",
                "train_test_gap",
                "mean_epoch_time_s",
            )
            if isinstance(report.get(key), (int, float))
        }
        for name, value in (report.get("per_class_accuracy") or {}).items():
            if isinstance(value, (int, float)):
                metrics[f"test_accuracy_{name}"] = value
        self._log_metrics(run, metrics)
        if isinstance(report.get("parameter_count"), int):
            self._log_params(run, {"model.parameter_count": report["parameter_count"]})
        self.client.log_dict(run.run_id, dict(report), "report.json")

    def log_comparison(self, outputs: Mapping[str, Any]) -> None:
        """The comparison table, Markdown, overlay figure and summary, on the parent run."""
        import pandas as pd
        from matplotlib.figure import Figure

        run = self.main
        names = {
            "comparison_table": "comparison.csv",
            "comparison_markdown": "comparison.md",
            "comparison_curves": "accuracy_curves.png",
            "comparison_summary": "comparison_summary.json",
        }
        for dataset, value in outputs.items():
            if isinstance(value, pd.DataFrame):
                text = value.to_csv(index=False)
                self.client.log_text(run.run_id, text, names.get(dataset, f"{dataset}.csv"))
            elif isinstance(value, str):
                self.client.log_text(run.run_id, value, names.get(dataset, f"{dataset}.md"))
            elif isinstance(value, Figure):
                self.client.log_figure(run.run_id, value, names.get(dataset, f"{dataset}.png"))
            elif isinstance(value, Mapping):
                self.client.log_dict(run.run_id, dict(value), names.get(dataset, f"{dataset}.json"))
                if "per_activation" in value:
                    self._log_metrics(run, self._summary_metrics(value))

    @staticmethod
    def _summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name, row in (summary.get("per_activation") or {}).items():
            metrics[f"test_accuracy_{name}"] = row.get("test_accuracy_mean")
            metrics[f"test_accuracy_std_{name}"] = row.get("test_accuracy_std")
            metrics[f"train_test_gap_{name}"] = row.get("train_test_gap_mean")
            metrics[f"mean_epoch_time_s_{name}"] = row.get("mean_epoch_time_s")
        for name, diff in (summary.get("comparisons") or {}).items():
            key = f"test_accuracy_diff_{name}_vs_{diff.get('baseline', summary.get('baseline'))}"
            metrics[key] = diff.get("mean")
            for part in ("ci_low", "ci_high", "p_value"):
                metrics[f"{key}_{part}"] = diff.get(part)
        return {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        }

    # -- ending runs -------------------------------------------------------------------

    def end_run(
        self, run: _Run, status: str, error: BaseException | None = None, node: str | None = None
    ) -> None:
        with self._lock:
            if run.closed:
                return
            run.closed = True
        self.stop_epoch_logging(run)
        try:
            if error is not None:
                from mlflow.entities import RunTag

                tags = [RunTag(TAG_ERROR, _truncate(f"{type(error).__name__}: {error}"))]
                if node:
                    tags.append(RunTag(TAG_FAILED_NODE, node))
                self.client.log_batch(run.run_id, tags=tags, synchronous=True)
        finally:
            self.client.set_terminated(run.run_id, status=status, end_time=_now_ms())

    def close_all(self, status: str, error: BaseException | None = None) -> None:
        """End every run still open: the children first, then the parent."""
        with self._lock:
            runs = [r for r in self.children.values() if r is not self.main] + [self.main]
        for run in runs:
            try:
                self.end_run(run, status, error)
            except Exception as exc:  # noqa: BLE001 - try every run
                logger.warning(
                    "MLflow: could not end run %s (%s) as %s: %s", run.name, run.run_id, status, exc
                )

    @property
    def open(self) -> bool:
        return not self.main.closed or any(not r.closed for r in self.children.values())

    def warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)


# --- the hook ------------------------------------------------------------------------

_hooks: weakref.WeakSet[MlflowTrackingHook] = weakref.WeakSet()
_atexit_registered = False


def _end_open_runs_at_exit() -> None:
    """Runs still open when the interpreter exits were interrupted (Ctrl-C, SystemExit)."""
    for hook in list(_hooks):
        hook._abandon("KILLED")


class MlflowTrackingHook:
    """Track every ``kedro run`` that trains models in MLflow (see the module docstring).

    Register an instance in ``settings.HOOKS``. It does nothing for pipelines
    that neither train nor compare models, or when ``enabled: false``.
    """

    def __init__(self) -> None:
        self._context: KedroContext | None = None
        self._current: _PipelineRun | None = None
        self._previous_sigint: Any = None
        self._sigint_installed = False
        self._closers: list[threading.Thread] = []
        _hooks.add(self)

    # -- Kedro hooks ---------------------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._context = context

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any
    ) -> None:
        # Runs left open by an interrupted earlier run in this process.
        self._abandon("KILLED")
        project_path = Path(run_params.get("project_path") or getattr(self._context, "project_path", "."))
        settings = self._settings(project_path)
        if not settings.enabled:
            logger.info("MLflow tracking is disabled (conf/<env>/%s.yml: enabled: false)", CONFIG_KEY)
            return
        plan = _Plan.of(pipeline)
        if not plan.tracked:
            return
        if "ParallelRunner" in str(run_params.get("runner") or ""):
            logger.warning(
                "MLflow: ParallelRunner runs nodes in other processes, where this hook "
                "cannot log; use SequentialRunner (the default) or ThreadRunner to track models."
            )
        _quiet_mlflow()
        _register_atexit()
        try:
            self._current = _PipelineRun(
                settings,
                plan,
                run_params,
                self._parameters(),
                _pipeline_name(run_params, pipeline),
                project_path,
            )
        except Exception as exc:
            raise RuntimeError(
                f"MLflow tracking could not start at {settings.tracking_uri!r} "
                f"(experiment {settings.experiment_name!r}): {exc}. Check the server or "
                f"MLFLOW_TRACKING_URI, or set 'enabled: false' in conf/<env>/{CONFIG_KEY}.yml."
            ) from exc
        self._install_sigint_handler()
        current = self._current
        where = "parent run %s with %d model runs" if plan.nested else "run %s (%d model)"
        logger.info(
            "MLflow: %s in experiment '%s' at %s",
            where % (current.main.run_id, len(plan.models)),
            settings.experiment_name,
            settings.tracking_uri,
        )

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        current = self._active_here()
        if current is None:
            return
        try:
            identity = _identity(node)
            runs = [current.main]
            if identity is not None:
                run = current.model_run(identity)
                runs.append(run)
                if TRAINING_TAG in node.tags:
                    current.start_epoch_logging(run)
            current.log_data_info(runs, inputs)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            current.warn_once(
                f"before:{node.name}", "MLflow: tracking failed before node %s: %s", node.name, exc
            )

    @hook_impl
    def after_node_run(self, node: Node, inputs: dict[str, Any], outputs: dict[str, Any]) -> None:
        current = self._active_here()
        if current is None:
            return
        identity = _identity(node)
        run = current.children.get(identity) if identity is not None else None
        try:
            if node.name == COMPARE_NODE:
                current.log_comparison(outputs)
            if run is not None:
                current.stop_epoch_logging(run)
                self._log_model_outputs(current, run, node, inputs, outputs)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            current.warn_once(
                f"after:{node.name}", "MLflow: could not log the outputs of %s: %s", node.name, exc
            )
        if run is not None and run is not current.main:
            with current._lock:
                run.pending_nodes -= 1
                done = run.pending_nodes <= 0
            if done:
                self._safely(current.end_run, run, "FINISHED")

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        current = self._active_here()
        if current is None:
            return
        identity = _identity(node)
        run = current.children.get(identity) if identity is not None else None
        if run is not None:
            current.stop_epoch_logging(run)
            self._safely(current.end_run, run, "FAILED", error, node.name)
        current.failed_node = current.failed_node or node.name

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._finish("FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        self._finish("FAILED", error)

    # -- internals -------------------------------------------------------------------------

    def _settings(self, project_path: Path) -> TrackingSettings:
        from kedro.config import MissingConfigException

        config: Mapping[str, Any] = {}
        if self._context is not None:
            try:
                config = self._context.config_loader[CONFIG_KEY] or {}
            except (MissingConfigException, KeyError):
                config = {}
        return TrackingSettings.from_config(config, project_path)

    def _parameters(self) -> dict[str, Any]:
        """This run's parameters (``--params`` included), with the schema's defaults filled in."""
        if self._context is None:
            return {}
        raw = self._context.config_loader["parameters"]
        try:
            from activation_compare.params import validate_parameters

            return validate_parameters(raw).model_dump(mode="json")
        except Exception:  # noqa: BLE001 - ProjectHooks reports invalid parameters
            return dict(raw)

    def _active_here(self) -> _PipelineRun | None:
        current = self._current
        # ParallelRunner runs node hooks in other processes, on copies of this hook.
        if current is None or current.pid != os.getpid():
            return None
        return current

    def _log_model_outputs(
        self,
        current: _PipelineRun,
        run: _Run,
        node: Node,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
    ) -> None:
        import pandas as pd
        from matplotlib.figure import Figure

        models = [v for v in outputs.values() if hasattr(v, "count_params") and hasattr(v, "predict")]
        if models:
            current._log_params(run, {"model.parameter_count": int(models[0].count_params())})
        if TRAINING_TAG in node.tags:
            history = next((v for v in outputs.values() if isinstance(v, pd.DataFrame)), None)
            if history is not None:
                current.client.log_text(run.run_id, history.to_csv(index=False), "history.csv")
            if models and current.settings.log_models:
                examples = next(
                    (v.images for v in inputs.values() if hasattr(v, "images") and len(v) > 0),
                    None,
                )
                if examples is not None:
                    final_step = max(len(history) - 1, 0) if history is not None else 0
                    current.log_model(run, models[0], examples, final_step)
        for dataset, value in outputs.items():
            if isinstance(value, Mapping) and "test_accuracy" in value:
                current.log_report(run, value)
            elif isinstance(value, Figure):
                current.client.log_figure(
                    run.run_id, value, f"figures/{_short_dataset_name(dataset)}.png"
                )

    def _finish(self, status: str, error: BaseException | None = None) -> None:
        current = self._current
        if current is None or current.pid != os.getpid():
            return
        self._restore_sigint_handler()
        try:
            if error is not None:
                from mlflow.entities import RunTag

                tags = [RunTag(TAG_ERROR, _truncate(f"{type(error).__name__}: {error}"))]
                if current.failed_node:
                    tags.append(RunTag(TAG_FAILED_NODE, current.failed_node))
                current.client.log_batch(current.main.run_id, tags=tags, synchronous=True)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not tag the failed run: %s", exc)
        current.close_all(status, None)
        self._current = None

    def _abandon(self, status: str) -> None:
        """End the runs of a pipeline that never reached after_pipeline_run/on_pipeline_error."""
        for closer in list(self._closers):
            closer.join(timeout=30)
        self._closers.clear()
        self._restore_sigint_handler()
        current = self._current
        if current is None or current.pid != os.getpid():
            return
        self._current = None
        if current.open:
            current.close_all(status)

    @staticmethod
    def _safely(func: Any, *args: Any) -> None:
        try:
            func(*args)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            logger.warning("MLflow: %s failed: %s", getattr(func, "__name__", func), exc)

    # -- Ctrl-C ------------------------------------------------------------------------------

    def _install_sigint_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if previous in (signal.SIG_IGN, None):
            return

        def on_sigint(signum: int, frame: Any) -> None:
            current = self._current
            if current is not None and current.open:
                # Not here: this handler may have interrupted an MLflow call (or a
                # lock) in this very thread. A helper thread ends the runs; it is
                # not a daemon, so the interpreter waits for it before exiting.
                closer = threading.Thread(
                    target=current.close_all, args=("KILLED",), name="mlflow-end-killed-runs"
                )
                closer.start()
                self._closers.append(closer)
            # A second Ctrl-C goes straight to the previous handler.
            self._restore_sigint_handler()
            if callable(previous):
                previous(signum, frame)
            else:
                raise KeyboardInterrupt

        try:
            signal.signal(signal.SIGINT, on_sigint)
        except (ValueError, OSError):
            return
        self._previous_sigint = previous
        self._sigint_installed = True

    def _restore_sigint_handler(self) -> None:
        if not self._sigint_installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            signal.signal(signal.SIGINT, self._previous_sigint)
        except (ValueError, OSError, TypeError):
            pass
        self._sigint_installed = False
        self._previous_sigint = None

    def wait_for_closers(self, timeout: float = 30.0) -> None:
        """Wait until runs ended by a Ctrl-C are marked KILLED (for tests and notebooks)."""
        for closer in list(self._closers):
            closer.join(timeout=timeout)


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_end_open_runs_at_exit)
        _atexit_registered = True


def _pipeline_name(run_params: Mapping[str, Any], pipeline: Pipeline) -> str:
    """The name(s) the user asked for; ``__default__`` is named after the pipeline it equals."""
    names = list(run_params.get("pipeline_names") or []) or ["__default__"]
    if names == ["__default__"]:
        try:
            from kedro.framework.project import pipelines

            default = set(pipelines["__default__"].nodes)
            for name, candidate in pipelines.items():
                if name != "__default__" and set(candidate.nodes) == default:
                    return name
        except Exception:  # noqa: BLE001 - the plain name will do
            pass
    return "+".join(names)
