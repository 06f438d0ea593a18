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
