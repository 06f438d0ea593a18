"""Private APIs of libraries the project relies on, gathered in one place.

Each has a test in ``tests/test_private_apis.py`` that fails when an upgrade of
the library moves or changes it, so a new lock file shows at once what to fix.

MLflow's tracking-store schema: MLflow creates a new SQLite store's initial
tables and then runs its Alembic migrations (``mlflow.store.db.utils.
_initialize_tables``); the project runs the same two steps itself, on its own
connection inside one SQLite transaction (``tracking/sqlite_schema.py``), so
that no other process can see or leave a half-migrated store.
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
