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
  ``on_node_error``/``on_pipeline_error``, KILLED on Ctrl-C or SIGTERM. Kedro
  does not pass ``KeyboardInterrupt`` (not an ``Exception``) to
  ``on_pipeline_error``, so the hook wraps the SIGINT and SIGTERM handlers
  while a pipeline runs, ends the runs from a helper thread and raises
  ``KeyboardInterrupt`` (SIGTERM behaves as Ctrl-C); an ``atexit`` handler and
  the next run in the same process close whatever is still open (e.g. after
  ``SystemExit``). A ``SIGKILL`` leaves runs RUNNING: the next run that resumes
  the model ends the dead process's parent run KILLED (runs carry
  ``kedro.host``/``kedro.pid`` tags to tell a dead owner from a live one).
* A model's run starts with its training (the training node's
  :class:`~activation_compare.training_events.TrainingStart`), not with the
  node that builds it, because only then is it known whether the model
  resumes an interrupted training (see ``pipelines/modelling/checkpoints.py``):

  - resumed: the SAME run continues. The run id is stored with the
    checkpoint; the run (KILLED, FAILED, or RUNNING with a dead owner) is set
    RUNNING again and re-attached to this ``kedro run``'s parent (tag
    ``kedro.previous_parent_run_id`` names the old one, which gets
    ``kedro.resumed_in_run_id``), and every epoch that the checkpoint holds but
    the run lacks is back-filled, so each epoch metric has steps 0..E-1 exactly
    once. A run that has steps the checkpoint lacks (cannot happen with the
    commit order of checkpoints.py) is not reused: a new run gets all epochs.
  - reused (finished before, not trained again) or continued after a FINISHED
    run (``training.epochs`` increased): a new run under this parent, its
    curves back-filled from the checkpoint, tags ``kedro.training`` = ``reused``
    and ``kedro.reused_from_run_id``/``kedro.resumed_from_run_id``; the
    FINISHED run stays in its own tree.
  - after training, any epoch of the returned history missing from the run (a
    failed live ``log_batch``) is logged, so the run is complete.
* SQLite stores: the first use of a store (schema creation and migrations,
  which MLflow does not serialise between processes) is done under an
  exclusive lock file next to the database, and every call is retried while
  SQLite answers "database is locked", so concurrent ``kedro run`` processes
  sharing one ``mlflow.db`` are all recorded completely.
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
import contextlib
import functools
import getpass
import socket
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

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
TAG_HOST = "kedro.host"
TAG_PID = "kedro.pid"
TAG_PID_STARTED = "kedro.pid_started"
TAG_TRAINING = "kedro.training"  # trained | resumed | reused
TAG_PREVIOUS_RUN_IDS = "kedro.previous_run_ids"  # Kedro session ids a resumed run spans
TAG_PREVIOUS_PARENT = "kedro.previous_parent_run_id"
TAG_RESUMED_IN = "kedro.resumed_in_run_id"
TAG_RESUMED_FROM = "kedro.resumed_from_run_id"
TAG_REUSED_FROM = "kedro.reused_from_run_id"
_EPOCH_ROW_FIELDS = ("epoch", "time_ms")
_MAX_BATCH_METRICS = 1000

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


# --- processes, concurrency ---------------------------------------------------------


def _process_tags() -> dict[str, str]:
    """Which process owns a run, so a later run can tell a dead owner from a live one."""
    tags = {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}
    try:
        import psutil

        tags[TAG_PID_STARTED] = f"{psutil.Process().create_time():.0f}"
    except Exception:  # noqa: BLE001 - the pid alone will do
        pass
    return tags


def _owner_alive(tags: Mapping[str, str]) -> bool:
    """Whether the process that owns a RUNNING run may still be running (True when unsure)."""
    host, pid = tags.get(TAG_HOST), tags.get(TAG_PID)
    if not host or not pid or host != socket.gethostname():
        return True
    try:
        import psutil

        process = psutil.Process(int(pid))
        started = tags.get(TAG_PID_STARTED)
        if started and abs(process.create_time() - float(started)) > 2:
            return False  # the pid was reused by another process
        return process.status() != psutil.STATUS_ZOMBIE
    except ImportError:  # pragma: no cover - psutil is a dependency
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except (OSError, ValueError):
            return True
        return True
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__ != "NoSuchProcess"


def _is_locked_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


class _RetryingClient:
    """An ``MlflowClient`` whose calls are retried while SQLite says "database is locked".

    MLflow's SQLite sessions already wait up to 20 s (``PRAGMA busy_timeout``);
    under heavy contention (several runs logging at once on a loaded machine)
    that can still run out. A failed SQLite transaction is rolled back, so a
    retry never applies a call twice.
    """

    def __init__(self, client: Any, attempts: int = 8) -> None:
        self._client = client
        self._attempts = attempts

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            delay = 0.5
            for attempt in range(1, self._attempts + 1):
                try:
                    return attribute(*args, **kwargs)
                except Exception as exc:
                    if attempt == self._attempts or not _is_locked_error(exc):
                        raise
                    logger.debug("MLflow: %s: database is locked, retry %d in %.1fs", name, attempt, delay)
                    time.sleep(delay)
                    delay = min(delay * 2, 8.0)
            raise AssertionError("unreachable")

        return call


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def _store_setup_lock(uri: str):
    """Serialise the first use of a SQLite store between processes.

    MLflow creates and migrates a new store's schema without a lock, and two
    processes doing it at once fail ("table ... already exists", "duplicate
    column"). The lock file sits next to the database (same disk, same hosts).
    """
    path = _sqlite_path(uri)
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # mlflow.db-setup-lock: .gitignore's "/mlflow.db-*" (SQLite's own -journal files) covers it.
    fd = os.open(path.with_name(f"{path.name}-setup-lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# --- the state of one tracked pipeline run ---------------------------------------


@dataclass
class _Run:
    """One MLflow run this hook opened, and what it has logged so far."""

    run_id: str
    name: str
    params: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    # A run of an earlier kedro run, continued here: metric keys it already had.
    reopened: bool = False
    earlier_metrics: set[str] = field(default_factory=set)


@dataclass
class _Plan:
    """What a pipeline will train: node counts per (activation, seed) and whether it compares."""

    models: Counter
    compares: bool
    trained: set = field(default_factory=set)  # models with a training node

    @classmethod
    def of(cls, pipeline: Pipeline) -> _Plan:
        models: Counter = Counter()
        trained = set()
        for node in pipeline.nodes:
            identity = _identity(node)
            if identity is not None:
                models[identity] += 1
                if TRAINING_TAG in node.tags:
                    trained.add(identity)
        return cls(
            models=models,
            compares=any(n.name == COMPARE_NODE for n in pipeline.nodes),
            trained=trained,
        )

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
        self._lock = threading.RLock()
        self._warned: set[str] = set()
        self.children: dict[tuple[str, int], _Run] = {}
        # Nodes of each model still to finish; its run ends FINISHED at 0.
        self.pending: Counter = Counter(plan.models)
        # Models whose run is settled (new, or continued from an earlier kedro run).
        self._settled: set[tuple[str, int]] = set()
        # Data sizes seen by a training node before the model's run is settled.
        self._stashed_params: dict[tuple[str, int], dict[str, Any]] = {}
        # (thread, listeners) subscribed for each model's training node.
        self._listeners: dict[tuple[str, int], tuple[int, list[Any]]] = {}
        self.failed_node: str | None = None
        with _store_setup_lock(settings.tracking_uri):
            self.client: MlflowClient = _RetryingClient(MlflowClient(tracking_uri=settings.tracking_uri))
            self.experiment_id = self._experiment_id()
        self.session_id = str(run_params.get("run_id") or "")
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
        tags.update(_process_tags())
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
        """Log params not logged yet (MLflow params are write-once).

        A run continued from an earlier kedro run keeps its params; a value that
        differs now is recorded as a tag ``kedro.param_changed.<key>``.
        """
        from mlflow.entities import Param, RunTag

        with self._lock:
            values = {k: _param_value(v) for k, v in params.items() if v is not None}
            new = {k: v for k, v in values.items() if k not in run.params}
            changed = {
                k: v for k, v in values.items() if k in run.params and run.params[k] != v
            } if run.reopened else {}
            run.params.update(new)
        if new:
            self.client.log_batch(
                run.run_id, params=[Param(k, v) for k, v in new.items()], synchronous=True
            )
        if changed:
            self.client.log_batch(
                run.run_id,
                tags=[RunTag(f"kedro.param_changed.{k}", _truncate(v)) for k, v in changed.items()],
                synchronous=True,
            )

    def _log_metrics(self, run: _Run, metrics: Mapping[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        timestamp = _now_ms()
        batch = [
            Metric(_metric_key(k), float(v), timestamp, step)
            for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
            # A continued run may have its report already (killed after evaluating).
            and _metric_key(k) not in run.earlier_metrics
        ]
        if batch:
            self.client.log_batch(run.run_id, metrics=batch, synchronous=True)

    def _set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        if tags:
            self.client.log_batch(
                run_id, tags=[RunTag(k, _truncate(str(v))) for k, v in tags.items()], synchronous=True
            )

    # -- runs of models ----------------------------------------------------------------

    def model_run(self, identity: tuple[str, int]) -> _Run:
        """The run of one model, created (as a child of the parent) when first needed."""
        with self._lock:
            run = self.children.get(identity)
            if run is None:
                tags = {
                    **self.common_tags,
                    **self._identity_tags(identity),
                    TAG_PARENT_RUN_ID: self.main.run_id,
                }
                run = self._create_run(_run_name(identity), tags)
                self.children[identity] = run
                created = True
            else:
                created = False
        if created:
            self._log_params(run, self._model_params(identity))
        return run

    def waits_for_training(self, identity: tuple[str, int]) -> bool:
        """A node of a model that runs before its training (building it): no model run yet."""
        with self._lock:
            return identity in self.plan.trained and identity not in self._settled and (
                self.children.get(identity) in (None, self.main)
            )

    def stash_params(self, identity: tuple[str, int], params: Mapping[str, Any]) -> None:
        with self._lock:
            self._stashed_params.setdefault(identity, {}).update(params)

    def training_run(
        self, identity: tuple[str, int], start: training_events.TrainingStart | None = None
    ) -> _Run:
        """The run that records this model's training, settled once per model.

        ``start`` (from the training state) says whether the model resumes an
        earlier run's training; without it the model gets a run of its own.
        """
        with self._lock:
            if identity in self._settled:
                return self.children[identity]
            self._settled.add(identity)
        try:
            run, logged = self._settle(identity, start)
        except BaseException:
            with self._lock:
                self._settled.discard(identity)
            raise
        with self._lock:
            stashed = self._stashed_params.pop(identity, {})
        self._log_params(run, stashed)
        if start is not None:
            self._backfill(run, start.history, logged)
            if start.attach_run is not None:
                start.attach_run(run.run_id)
        return run

    def _settle(
        self, identity: tuple[str, int], start: training_events.TrainingStart | None
    ) -> tuple[_Run, dict[str, set[int]]]:
        previous_id = start.previous_run_id if start is not None else None
        if previous_id:
            previous, logged = self._continuable(previous_id, start.history)
            if previous is not None:
                return self._reopen(identity, previous), logged
        run = self.model_run(identity)
        tags = {TAG_TRAINING: {"resume": "resumed", "reuse": "reused"}.get(
            start.mode if start is not None else "", "trained"
        )}
        if previous_id:
            tags[TAG_REUSED_FROM if start.mode == "reuse" else TAG_RESUMED_FROM] = previous_id
        self._set_tags(run.run_id, tags)
        return run, {}

    def _continuable(
        self, run_id: str, history: list[Mapping[str, float]]
    ) -> tuple[Any, dict[str, set[int]]]:
        """The earlier run of a model if this run may continue it, and its logged epoch steps.

        Only a run that stopped early (KILLED, FAILED, or RUNNING with a dead
        owner) and has no epoch the checkpoint lacks; a FINISHED run stays as it is.
        """
        from mlflow.entities import LifecycleStage, RunStatus

        try:
            previous = self.client.get_run(run_id)
        except Exception:  # noqa: BLE001 - deleted, or another store
            return None, {}
        info = previous.info
        if info.experiment_id != self.experiment_id or info.lifecycle_stage != LifecycleStage.ACTIVE:
            return None, {}
        status = info.status
        if status == RunStatus.to_string(RunStatus.FINISHED):
            return None, {}
        if status in ("RUNNING", "SCHEDULED") and _owner_alive(previous.data.tags):
            return None, {}
        keys = set(previous.data.metrics) | {
            _metric_key(k) for row in history for k in row if k not in _EPOCH_ROW_FIELDS
        }
        logged = {key: self._logged_steps(run_id, key) for key in keys}
        if any(step >= len(history) for steps in logged.values() for step in steps):
            return None, {}
        return previous, logged

    def _logged_steps(self, run_id: str, key: str) -> set[int]:
        return {int(m.step) for m in self.client.get_metric_history(run_id, key)}

    def _reopen(self, identity: tuple[str, int], previous: Any) -> _Run:
        """Continue an earlier kedro run's model run here: RUNNING again, under this parent."""
        run_id = previous.info.run_id
        tags = dict(previous.data.tags)
        old_parent = tags.get(TAG_PARENT_RUN_ID)
        sessions = [s for s in tags.get(TAG_PREVIOUS_RUN_IDS, "").split(",") if s]
        if tags.get(TAG_KEDRO_RUN_ID):
            sessions.append(tags[TAG_KEDRO_RUN_ID])
        new_tags = {
            TAG_KEDRO_RUN_ID: self.common_tags.get(TAG_KEDRO_RUN_ID, ""),
            TAG_PREVIOUS_RUN_IDS: ",".join(dict.fromkeys(sessions)),
            TAG_TRAINING: "resumed",
            **_process_tags(),
        }
        if old_parent != self.main.run_id:
            new_tags[TAG_PARENT_RUN_ID] = self.main.run_id
            if old_parent:
                new_tags[TAG_PREVIOUS_PARENT] = old_parent
        self.client.update_run(run_id, status="RUNNING")
        self._set_tags(run_id, {k: v for k, v in new_tags.items() if v})
        run = _Run(
            run_id=run_id,
            name=previous.info.run_name or _run_name(identity),
            params=dict(previous.data.params),
            reopened=True,
            earlier_metrics=set(previous.data.metrics),
        )
        with self._lock:
            self.children[identity] = run
        if old_parent and old_parent != self.main.run_id:
            self._retire_parent(old_parent)
        logger.info(
            "MLflow: continuing run %s (%s) of an interrupted kedro run under %s",
            run.name, run_id, self.main.run_id,
        )
        return run

    def _retire_parent(self, parent_id: str) -> None:
        """The parent of a continued run: point to this run; KILLED if its process died."""
        try:
            parent = self.client.get_run(parent_id)
            resumed_in = [r for r in parent.data.tags.get(TAG_RESUMED_IN, "").split(",") if r]
            self._set_tags(parent_id, {TAG_RESUMED_IN: ",".join(dict.fromkeys([*resumed_in, self.main.run_id]))})
            if parent.info.status == "RUNNING" and not _owner_alive(parent.data.tags):
                self.client.set_terminated(parent_id, status="KILLED", end_time=_now_ms())
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not update the interrupted parent run %s: %s", parent_id, exc)

    def _backfill(
        self, run: _Run, rows: list[Mapping[str, Any]], logged: Mapping[str, set[int]]
    ) -> None:
        """Log every (metric, epoch) of ``rows`` that the run does not have yet."""
        from mlflow.entities import Metric

        now = _now_ms()
        metrics = []
        for row in rows:
            step = int(row["epoch"])
            timestamp = int(row.get("time_ms") or now)
            for key, value in row.items():
                name = _metric_key(key)
                if key in _EPOCH_ROW_FIELDS or step in logged.get(name, ()):
                    continue
                try:
                    metrics.append(Metric(name, float(value), timestamp, step))
                except (TypeError, ValueError):
                    continue
        for start in range(0, len(metrics), _MAX_BATCH_METRICS):
            self.client.log_batch(
                run.run_id, metrics=metrics[start : start + _MAX_BATCH_METRICS], synchronous=True
            )

    def complete_epochs(self, run: _Run, history: Any) -> None:
        """Log any epoch of the final history that the run lacks (a failed live log_batch)."""
        if "epoch" not in getattr(history, "columns", ()):
            return
        rows = history.to_dict("records")
        keys = {_metric_key(k) for k in history.columns if k not in _EPOCH_ROW_FIELDS}
        logged = {key: self._logged_steps(run.run_id, key) for key in keys}
        self._backfill(run, rows, logged)

    def start_training(self, identity: tuple[str, int]) -> None:
        """Follow one model's training from its node's thread: settle its run, log each epoch."""

        def on_start(event: training_events.TrainingStart) -> None:
            try:
                self.training_run(identity, event)
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                self.warn_once("start", "MLflow: could not set up the run of %s: %s", _run_name(identity), exc)

        def on_epoch_end(event: training_events.EpochEnd) -> None:
            try:
                run = self.training_run(identity)
                if run.closed:
                    return
                from mlflow.entities import Metric

                timestamp = _now_ms()
                metrics = [
                    Metric(_metric_key(key), float(value), timestamp, int(event.epoch))
                    for key, value in event.metrics.items()
                ]
                self.client.log_batch(run.run_id, metrics=metrics, synchronous=True)
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                self.warn_once("epoch", "MLflow: could not log epoch metrics of %s: %s", _run_name(identity), exc)

        self.stop_training(identity)
        listeners = [
            training_events.subscribe(on_start, training_events.TrainingStart),
            training_events.subscribe(on_epoch_end, training_events.EpochEnd),
        ]
        with self._lock:
            self._listeners[identity] = (threading.get_ident(), listeners)

    def stop_training(self, identity: tuple[str, int]) -> None:
        """Unsubscribe the model's listeners (subscriptions are per thread: from its node's)."""
        with self._lock:
            entry = self._listeners.get(identity)
            if entry is None or entry[0] != threading.get_ident():
                return
            del self._listeners[identity]
        for listener in entry[1]:
            training_events.unsubscribe(listener)

    def log_data_info(self, runs: list[_Run], inputs: Mapping[str, Any]) -> None:
        """Split sizes from the inputs a node gets; the source's description from the loaded images."""
        info = self.data_info(inputs)
        if info:
            for run in runs:
                self._log_params(run, info)

    @staticmethod
    def data_info(inputs: Mapping[str, Any]) -> dict[str, Any]:
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
        return info

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
        # Signal number -> the handler this hook replaced while a pipeline runs.
        self._previous_handlers: dict[int, Any] = {}
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
                if TRAINING_TAG in node.tags:
                    # The model's run is settled when its training starts (resume?).
                    current.stash_params(identity, current.data_info(inputs))
                    current.start_training(identity)
                elif not current.waits_for_training(identity):
                    runs.append(current.model_run(identity))
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
        run = None
        try:
            if identity is not None:
                if TRAINING_TAG in node.tags:
                    current.stop_training(identity)
                    run = current.training_run(identity)
                elif not current.waits_for_training(identity):
                    run = current.model_run(identity)
            if node.name == COMPARE_NODE:
                current.log_comparison(outputs)
            if run is not None:
                self._log_model_outputs(current, run, node, inputs, outputs)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            current.warn_once(
                f"after:{node.name}", "MLflow: could not log the outputs of %s: %s", node.name, exc
            )
        if identity is not None:
            with current._lock:
                current.pending[identity] -= 1
                done = current.pending[identity] <= 0
                run = current.children.get(identity)
            if done and run is not None and run is not current.main:
                self._safely(current.end_run, run, "FINISHED")

    @hook_impl
    def on_node_error(self, error: Exception, node: Node) -> None:
        current = self._active_here()
        if current is None:
            return
        identity = _identity(node)
        run = None
        if identity is not None:
            if TRAINING_TAG in node.tags:
                current.stop_training(identity)
                # A training that failed before its first epoch still gets its run.
                try:
                    run = current.training_run(identity)
                except Exception as exc:  # noqa: BLE001
                    logger.warning("MLflow: could not record the failure of %s: %s", node.name, exc)
            else:
                run = current.children.get(identity)
        if run is not None:
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
                current.complete_epochs(run, history)
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

    # -- Ctrl-C and SIGTERM -------------------------------------------------------------------

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def _install_sigint_handler(self) -> None:
        """While a pipeline runs, Ctrl-C and SIGTERM end its runs KILLED, then interrupt it.

        SIGTERM (``kill``, a scheduler stopping the job) behaves as Ctrl-C: a
        ``KeyboardInterrupt`` unwinds the run, so checkpoints stay and runs are
        marked KILLED instead of being left RUNNING by the default handler.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self._SIGNALS:
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_IGN, None):
                continue

            def on_signal(signum: int, frame: Any, previous: Any = previous) -> None:
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
                # A second signal goes straight to the previous handlers.
                self._restore_sigint_handler()
                if signum == signal.SIGTERM:
                    logger.warning("SIGTERM received: stopping the run as Ctrl-C would")
                if callable(previous):  # Python's own for SIGINT raises KeyboardInterrupt
                    previous(signum, frame)
                else:  # SIG_DFL: SIGTERM would end the process on the spot
                    raise KeyboardInterrupt

            try:
                signal.signal(signum, on_signal)
            except (ValueError, OSError):
                continue
            self._previous_handlers[signum] = previous

    def _restore_sigint_handler(self) -> None:
        if not self._previous_handlers or threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in list(self._previous_handlers.items()):
            try:
                signal.signal(signum, previous)
            except (ValueError, OSError, TypeError):
                pass
        self._previous_handlers.clear()

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
