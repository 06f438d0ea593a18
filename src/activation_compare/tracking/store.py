"""The tracking store: a client, the experiment, a bounded check that the store answers.

* **Fail fast.** :func:`check_reachable` asks a tracking server one question
  before anything else happens, with one deadline for the whole check
  (``connect_timeout_s``, 20 s by default): a closed port, an unknown host or a
  server that accepts connections and never answers stops the run at its
  start with a message that names the URI and what to do, instead of MLflow's
  own retries (minutes per call).
* **SQLite stores shared by processes.** MLflow creates and migrates a new
  store's schema without a lock, and two processes doing it at once fail
  ("table ... already exists") and can leave the store half-migrated, so
  before MLflow opens a SQLite store the project creates or upgrades its
  schema itself, atomically (:mod:`~activation_compare.tracking.sqlite_schema`),
  under an exclusive lock file next to the database that serialises the
  project's own processes; and every call is retried while SQLite answers
  "database is locked" (a failed SQLite transaction is rolled back, so a retry
  never applies a call twice).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from activation_compare.errors import UserError
from activation_compare.tracking.settings import (
    CONFIG_KEY,
    CONNECT_TIMEOUT_ENV,
    TrackingSettings,
    configure_mlflow,
    sqlite_path,
)

logger = logging.getLogger(__name__)

_LOCKED_RETRIES = 8


class TrackingUnavailableError(UserError, RuntimeError):
    """The tracking store cannot be used; the message says which and what to do."""


def unavailable_message(settings: TrackingSettings, problem: str) -> str:
    path = sqlite_path(settings.tracking_uri)
    if path is not None:
        todo = (
            f"The store is the SQLite file {path}: check that no other process holds it locked and "
            f"that it is an MLflow database, or point MLFLOW_TRACKING_URI / tracking_uri in "
            f"conf/<env>/{CONFIG_KEY}.yml elsewhere"
        )
    else:
        todo = f"Start the tracking server or fix MLFLOW_TRACKING_URI / tracking_uri in conf/<env>/{CONFIG_KEY}.yml"
    return (
        f"MLflow tracking could not start at {settings.tracking_uri!r} "
        f"(experiment {settings.experiment_name!r}): {problem}. {todo}, or set "
        f"'enabled: false' there to run without tracking. Nothing was run."
    )


def check_reachable(settings: TrackingSettings) -> None:
    """Raise :class:`TrackingUnavailableError` unless an HTTP tracking server answers in time.

    One GET of MLflow's REST API; any HTTP answer (even an error status, which
    MLflow reports better itself) proves the server is there. Refused
    connections are retried until the deadline (a server that is starting).
    Other stores (SQLite, a database, Databricks) are opened by MLflow itself.
    """
    uri = settings.tracking_uri
    if urlparse(uri).scheme not in ("http", "https"):
        return
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    timeout = settings.connect_timeout_s
    deadline = time.monotonic() + timeout
    problem = "no answer"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            with urllib.request.urlopen(url, timeout=left):  # noqa: S310 - the user's tracking URI
                return
        except urllib.error.HTTPError:
            return  # the server answered
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (TimeoutError, socket.timeout)) or "timed out" in str(reason):
                problem = "the server accepted the connection but did not answer"
                break
            last = f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
            problem = f"no answer (last error: {last})"
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    raise TrackingUnavailableError(
        unavailable_message(
            settings,
            f"{problem} within {timeout:g} s (connect_timeout_s in conf/<env>/{CONFIG_KEY}.yml "
            f"or {CONNECT_TIMEOUT_ENV})",
        )
    )


def _is_locked_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


# MLflow logs every SQLAlchemy OperationalError with its traceback (mlflow/store/db/utils.py,
# "SQLAlchemy database error. The following exception is caught."), ~65 lines, before raising it.
_MLFLOW_DB_LOGGER = "mlflow.store.db.utils"
# At most one "store is locked" warning per client in this many seconds.
_LOCKED_WARNING_INTERVAL_S = 60.0


class _LockedErrorFilter(logging.Filter):
    """Drops MLflow's traceback for "database is locked": :class:`RetryingClient` retries
    the call and says so in one line, or raises the error as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (error is not None and _is_locked_error(error))


_LOCKED_ERROR_FILTER = _LockedErrorFilter()


def _one_line(exc: BaseException) -> str:
    """The first line of an error (SQLAlchemy adds [SQL: …] and a link on lines of their own)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class RetryingClient:
    """An ``MlflowClient`` whose calls are retried while SQLite says "database is locked".

    MLflow's SQLite sessions already wait up to 20 s (``PRAGMA busy_timeout``);
    under heavy contention (several runs logging at once on a loaded machine),
    or while another process holds a write transaction open (a script, a
    ``sqlite3`` shell), that can still run out. Each such wait is one warning
    line (at most one a minute), not MLflow's traceback; a call that still
    finds the store locked after every retry raises MLflow's error in one line.

    Args:
        client: The ``MlflowClient``.
        attempts: Tries of each call while the store is locked.
        uri: The store's URI, named in the warning.
    """

    def __init__(self, client: Any, attempts: int = _LOCKED_RETRIES, uri: str | None = None) -> None:
        self._client = client
        self._attempts = attempts
        self._uri = uri
        self._warned_at: float | None = None
        # Per thread: how deep it is in calls to the store, and an interrupt held back.
        self._calls = threading.local()
        logging.getLogger(_MLFLOW_DB_LOGGER).addFilter(_LOCKED_ERROR_FILTER)  # once: same object

    def __getstate__(self) -> dict[str, Any]:
        # Pickled with the catalog's datasets (worker processes, deep copies): per-thread state stays.
        return {"_client": self._client, "_attempts": self._attempts, "_uri": self._uri}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._uri = state.get("_uri")
        self._warned_at = None
        self._calls = threading.local()
        logging.getLogger(_MLFLOW_DB_LOGGER).addFilter(_LOCKED_ERROR_FILTER)

    def defer_interrupt(self) -> bool:
        """Called by a signal handler: hold the interrupt back if this thread is inside a call.

        A ``KeyboardInterrupt`` raised in the middle of a SQLite write leaves that
        write's transaction open, and with it the database locked: the runs could
        then not be ended KILLED, and the process would wait on its own lock. Held
        back, the interrupt is raised as soon as the call returns. Returns whether
        it was held back.
        """
        if getattr(self._calls, "depth", 0) > 0:
            self._calls.pending = True
            return True
        return False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.depth = getattr(self._calls, "depth", 0) + 1
            try:
                return self._retried(name, attribute, *args, **kwargs)
            finally:
                self._calls.depth -= 1
                if self._calls.depth == 0 and getattr(self._calls, "pending", False):
                    self._calls.pending = False
                    raise KeyboardInterrupt

        return call

    def _retried(self, name: str, attribute: Any, /, *args: Any, **kwargs: Any) -> Any:
        delay = 0.5
        for attempt in range(1, self._attempts + 1):
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:
                if not _is_locked_error(exc):
                    raise
                if attempt == self._attempts:
                    raise _locked_error(exc) from exc
                self._warn_locked(name, exc)
                logger.debug("MLflow: %s: database is locked, retry %d in %.1fs", name, attempt, delay)
                time.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")

    def _warn_locked(self, name: str, exc: BaseException) -> None:
        now = time.monotonic()
        if self._warned_at is not None and now - self._warned_at < _LOCKED_WARNING_INTERVAL_S:
            return
        self._warned_at = now
        path = sqlite_path(self._uri) if self._uri else None
        logger.warning(
            "MLflow: the store %s is locked by another process (%s): %s waits and retries, "
            "up to %d times; the run goes on",
            path or self._uri or "", _one_line(exc), name, self._attempts - 1,
        )


def _locked_error(exc: BaseException) -> BaseException:
    """MLflow's "database is locked" error, its message one line (no [SQL: …] lines)."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE

    if isinstance(exc, MlflowException):
        return MlflowException(_one_line(exc), error_code=TEMPORARILY_UNAVAILABLE)
    return exc


@contextlib.contextmanager
def store_lock(uri: str, purpose: str = "setup") -> Iterator[None]:
    """An exclusive lock between processes and threads on a SQLite store (a lock file beside it).

    ``setup``: MLflow creates and migrates a new store's schema without a lock.
    ``runs``: looking up a model's run and creating it if missing is one step.
    Other stores: no lock.
    """
    path = sqlite_path(uri)
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # mlflow.db-setup-lock, mlflow.db-runs-lock: .gitignore's "/mlflow.db-*" covers them.
    # Each call opens its own file description, so threads exclude each other too.
    fd = os.open(path.with_name(f"{path.name}-{purpose}-lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def prepare_store(settings: TrackingSettings) -> None:
    """Create or upgrade a SQLite store's schema atomically before MLflow opens it; other stores: nothing.

    Call it under :func:`store_lock`. Another process may hold the store locked,
    or be mid-way through its own migration, for up to ``connect_timeout_s``.
    Raises :class:`TrackingUnavailableError` naming the cause (not a database,
    locked, cannot be migrated) and the path.
    """
    path = sqlite_path(settings.tracking_uri)
    if path is None:
        return
    from activation_compare.tracking.sqlite_schema import StoreSchemaError, ensure_schema

    try:
        ensure_schema(path, timeout_s=settings.connect_timeout_s)
    except StoreSchemaError as exc:
        raise TrackingUnavailableError(
            f"MLflow tracking could not start at {settings.tracking_uri!r}: {exc}. Nothing was run."
        ) from exc


@dataclass(frozen=True)
class Store:
    """An open tracking store: the client and the experiment the runs go to."""

    settings: TrackingSettings
    client: Any  # RetryingClient around mlflow.MlflowClient
    experiment_id: str
    pid: int  # the process that opened it: a client is not carried across a fork

    @property
    def uri(self) -> str:
        return self.settings.tracking_uri


def open_store(settings: TrackingSettings, *, create: bool = True) -> Store:
    """A client for the settings' store, and the experiment (created if ``create``).

    Raises:
        TrackingUnavailableError: The experiment does not exist and ``create`` is
            False (a worker looking for a run its driver never made).
    """
    configure_mlflow(settings)
    from mlflow import MlflowClient
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException

    with store_lock(settings.tracking_uri):
        prepare_store(settings)
        client = RetryingClient(MlflowClient(tracking_uri=settings.tracking_uri), uri=settings.tracking_uri)
        name = settings.experiment_name
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            if not create:
                raise TrackingUnavailableError(unavailable_message(settings, f"no experiment {name!r}"))
            try:
                experiment_id = client.create_experiment(name, artifact_location=settings.artifact_location)
                return Store(settings, client, experiment_id, os.getpid())
            except MlflowException:
                # Another process created it meanwhile.
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            if not create:  # a worker: its driver's experiment, deleted while it ran
                client.restore_experiment(experiment.experiment_id)
            else:
                experiment_id = _replace_deleted_experiment(client, settings, experiment.experiment_id)
                return Store(settings, client, experiment_id, os.getpid())
    return Store(settings, client, experiment.experiment_id, os.getpid())


def deleted_experiment_name(name: str, experiment_id: str) -> str:
    """The name a deleted experiment keeps in MLflow's trash once a new one has taken its name."""
    return f"{name} (deleted, id {experiment_id})"


def _replace_deleted_experiment(client: Any, settings: TrackingSettings, deleted_id: str) -> str:
    """A new experiment under the name of a deleted one, which stays deleted with its runs.

    A user who deleted the experiment (MLflow UI, ``mlflow experiments delete``)
    does not expect the next run to bring it back with its old runs, nor to
    resume or compare against them. MLflow keeps a deleted experiment's name
    until ``mlflow gc`` removes it for good, so the deleted one is renamed
    ``<name> (deleted, id <id>)`` (MLflow renames active experiments only:
    restored, renamed, deleted again) and a new experiment takes the name.
    Called under :func:`store_lock`.
    """
    name = settings.experiment_name
    trashed = deleted_experiment_name(name, deleted_id)
    client.restore_experiment(deleted_id)
    try:
        client.rename_experiment(deleted_id, trashed)
    finally:
        client.delete_experiment(deleted_id)
    experiment_id = client.create_experiment(name, artifact_location=settings.artifact_location)
    logger.warning(
        "MLflow experiment %r (id %s) was deleted: this run starts a new one (id %s); the deleted "
        "one stays in the trash with its runs as %r (mlflow experiments restore --experiment-id %s).",
        name, deleted_id, experiment_id, trashed, deleted_id,
    )
    return experiment_id
