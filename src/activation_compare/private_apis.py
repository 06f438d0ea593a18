"""Private APIs of libraries the project relies on, gathered in one place.

Each has a test in ``tests/test_private_apis.py`` that fails when an upgrade of
the library moves or changes it, so a new lock file shows at once what to fix.

MLflow's tracking-store schema: MLflow creates a new SQLite store's initial
tables and then runs its Alembic migrations (``mlflow.store.db.utils.
_initialize_tables``); the project runs the same two steps itself, on its own
connection inside one SQLite transaction (``tracking/sqlite_schema.py``), so
that no other process can see or leave a half-migrated store.

MLflow's serving: the project's pyfunc loader loads the Keras flavour the way
MLflow's own loader does, and marks the served signature so that the scoring
server hands requests over unparsed (``tracking/serving.py``).

Kedro's hook manager: a Dask worker builds one with the project's hooks only
(``runner/worker.py``).

Kedro's project pipelines: a second session in one process re-reads the
registry (``hooks/project.py``). Kedro's ``Node`` fields: a node with bound
arguments pickles itself from them (``pipelines/binding.py``). Kedro's
versioned datasets: where a version lives and whether it is there, their
version and protocol (``datasets/atomic.py``, ``runner/worker.py``); the
project's own datasets subclass ``AbstractVersionedDataset`` and override its
``_get_save_path`` / read ``_get_load_path`` and ``_filepath`` (Kedro's way to
write a versioned dataset), tested here too.
"""

from __future__ import annotations

from typing import Any


def mlflow_alembic_config(url: str) -> Any:
    """The Alembic ``Config`` of MLflow's tracking-store migrations, for the database ``url``."""
    from mlflow.store.db.utils import _get_alembic_config

    return _get_alembic_config(url)


def mlflow_schema_head() -> str:
    """The Alembic revision of the installed MLflow's tracking-store schema."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(mlflow_alembic_config("")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"MLflow's schema migrations have {len(heads)} heads: {heads}")
    return heads[0]


def mlflow_migrate_schema(connection: Any, revision: str = "heads") -> None:
    """Create MLflow's initial tables where missing and migrate the schema to ``revision``.

    ``connection``: a SQLAlchemy connection. MLflow's Alembic environment opens
    its own connection from ``connection.engine``, so the engine must hand out
    this very connection (a ``StaticPool``) for both steps to share one
    transaction.
    """
    from alembic import command
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    InitialBase.metadata.create_all(connection)
    config = mlflow_alembic_config(str(connection.engine.url))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def mlflow_load_keras_pyfunc(path: str) -> Any:
    """MLflow's Keras flavour loaded as its pyfunc loader does (``mlflow.keras.load._load_pyfunc``)."""
    from mlflow.keras.load import _load_pyfunc

    return _load_pyfunc(path)


def mlflow_pass_requests_unparsed(signature: Any) -> Any:
    """Mark ``signature`` as one from type hints: MLflow's scoring server then hands the
    model a request as sent, without casting it to the signature's dtype first."""
    signature._is_signature_from_type_hint = True
    return signature


def kedro_hook_manager(hooks: Any = ()) -> Any:
    """A new Kedro hook manager with ``hooks`` registered (and no plugin hooks)."""
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks

    manager = _create_hook_manager()
    _register_hooks(manager, hooks)
    return manager


def kedro_pipelines_module(project_pipelines: Any) -> str | None:
    """The module Kedro's ``kedro.framework.project.pipelines`` was configured with (the registry)."""
    return project_pipelines._pipelines_module


# The fields of a Kedro ``Node`` that ``Node(...)`` takes as arguments, by the attribute that holds each.
_NODE_FIELDS = {
    "inputs": "_inputs", "outputs": "_outputs", "name": "_name", "namespace": "_namespace",
    "tags": "_tags", "confirms": "_confirms", "preview_fn": "_preview_fn",
}


def kedro_node_fields(node: Any) -> dict[str, Any]:
    """The arguments that make ``node`` again with ``Node(func=..., **fields)`` (all but its function)."""
    return {argument: getattr(node, attribute) for argument, attribute in _NODE_FIELDS.items()}


def kedro_dataset_version(dataset: Any) -> Any:
    """A versioned dataset's ``Version`` (load, save); None for a dataset without versions."""
    return getattr(dataset, "_version", None)


def kedro_dataset_protocol(dataset: Any) -> str:
    """The fsspec protocol of a file dataset (``file`` for a local path or one that has none)."""
    return getattr(dataset, "_protocol", "file")


def kedro_versioned_path(dataset: Any, version: str) -> Any:
    """Where ``version`` of a versioned dataset lives: ``<filepath>/<version>/<file name>``."""
    return dataset._get_versioned_path(version)


def kedro_version_exists(dataset: Any, version: str) -> bool:
    """Whether a versioned dataset holds ``version`` (on its own filesystem)."""
    return bool(dataset._exists_function(str(kedro_versioned_path(dataset, version))))
