"""Where and whether runs are tracked: ``conf/<env>/mlflow.yml``, environment overrides, URIs.

Nothing here imports MLflow: the settings are read (and checked) before the
pipeline starts, and travel to worker processes inside the catalog
(:mod:`activation_compare.hooks.tracking`), so they must stay plain, picklable data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from activation_compare.errors import UserError

CONFIG_KEY = "mlflow"  # conf/<env>/mlflow.yml (pattern declared in settings.py)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT_NAME = "activation-compare"
DEFAULT_ARTIFACT_LOCATION = "mlartifacts"
DEFAULT_CONNECT_TIMEOUT_S = 20.0
# Seconds one MLflow HTTP request may take, and how often MLflow retries it,
# once the run has started (MLflow's own defaults, 120 s x 7 retries with
# growing waits, would hold a training for many minutes per call if the server
# dies mid-run). The user's MLFLOW_HTTP_REQUEST_* variables win.
DEFAULT_REQUEST_TIMEOUT_S = 30
DEFAULT_REQUEST_MAX_RETRIES = 2
CONNECT_TIMEOUT_ENV = "ACTIVATION_COMPARE_MLFLOW_CONNECT_TIMEOUT"
CONFIG_KEYS = (
    "enabled",
    "tracking_uri",
    "experiment_name",
    "artifact_location",
    "log_models",
    "connect_timeout_s",
    "request_timeout_s",
    "request_max_retries",
)
_REMOTE_SCHEMES = {"http", "https", "databricks", "databricks-uc", "uc"}


class TrackingConfigError(UserError, ValueError):
    """A bad key or value in ``conf/<env>/mlflow.yml`` or a tracking environment variable."""


@dataclass(frozen=True)
class TrackingSettings:
    """Where and whether runs are tracked, resolved for one project."""

    enabled: bool = True
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment_name: str = DEFAULT_EXPERIMENT_NAME
    # Used only when the experiment is created; None lets the store decide.
    artifact_location: str | None = None
    log_models: bool = True
    # The longest the start of a run waits for a tracking server to answer.
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    request_timeout_s: int = DEFAULT_REQUEST_TIMEOUT_S
    request_max_retries: int = DEFAULT_REQUEST_MAX_RETRIES

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None,
        project_path: Path,
        environ: Mapping[str, str] | None = None,
    ) -> TrackingSettings:
        """Read ``conf/<env>/mlflow.yml``; ``MLFLOW_TRACKING_URI``, ``MLFLOW_EXPERIMENT_NAME`` and
        ``ACTIVATION_COMPARE_MLFLOW_CONNECT_TIMEOUT`` win.

        Raises:
            TrackingConfigError: On an unknown (e.g. misspelt) key or a bad value, naming both.
        """
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise TrackingConfigError(
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
        timeout = environ.get(CONNECT_TIMEOUT_ENV) or config.get(
            "connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S
        )
        source = CONNECT_TIMEOUT_ENV if environ.get(CONNECT_TIMEOUT_ENV) else "connect_timeout_s"
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
            connect_timeout_s=_as_number(timeout, source, float, minimum=1),
            request_timeout_s=_as_number(
                config.get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S), "request_timeout_s", int, 1
            ),
            request_max_retries=_as_number(
                config.get("request_max_retries", DEFAULT_REQUEST_MAX_RETRIES),
                "request_max_retries",
                int,
                0,
            ),
        )


def _as_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0", "yes", "no"}:
        return value.strip().lower() in {"true", "1", "yes"}
    raise TrackingConfigError(f"{CONFIG_KEY}.{key} must be true or false, got {value!r}")


def _as_number(value: Any, key: str, kind: type, minimum: float) -> Any:
    try:
        number = kind(value)
        if isinstance(value, bool) or number < minimum:
            raise ValueError
    except (TypeError, ValueError):
        name = key if key.isupper() else f"{CONFIG_KEY}.{key}"
        raise TrackingConfigError(
            f"{name} must be a{'n integer' if kind is int else ' number'} >= {minimum:g}, got {value!r}"
        ) from None
    return number


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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for any other store."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


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


def configure_mlflow(settings: TrackingSettings) -> None:
    """MLflow's process-wide knobs for a tracked run; the user's explicit settings win.

    Idempotent, so every process (the driver, each worker) calls it before its
    first MLflow call.
    """
    # tqdm bars for every artifact upload/download.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.request_timeout_s))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.request_max_retries))
    if sqlite_path(settings.tracking_uri) is not None:
        # MLflow keeps one SQLAlchemy engine per URI for the process; a pooled
        # SQLite connection must not cross a fork (ParallelRunner forks workers
        # after the driver has used the store), so none is pooled.
        os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
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


# Where the driver puts the tracking settings in the catalog, for node hooks in any process.
CATALOG_ENTRY = "mlflow_tracking"


@dataclass(frozen=True)
class TrackedPipeline:
    """What a node hook in any process needs besides its catalog's parameters and MLflow."""

    settings: TrackingSettings
    # Per model, the node after which nothing more is logged to its run (it ends FINISHED).
    final_nodes: frozenset[str] = frozenset()
