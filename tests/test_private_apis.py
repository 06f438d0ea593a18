"""Each private API of a library that the project uses (``activation_compare.private_apis``), tested.

A failure here after a lock-file change names the private API that moved.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy

from activation_compare.private_apis import mlflow_alembic_config, mlflow_migrate_schema, mlflow_schema_head


def test_mlflow_alembic_config_points_at_mlflows_migrations():
    from alembic.script import ScriptDirectory

    config = mlflow_alembic_config("sqlite:///x.db")
    assert config.get_main_option("sqlalchemy.url") == "sqlite:///x.db"
    assert ScriptDirectory.from_config(config).get_revision(mlflow_schema_head()) is not None


def test_mlflow_schema_head_is_mlflows_own():
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert mlflow_schema_head() == _get_latest_schema_revision()


def test_mlflow_migrate_schema_makes_a_store_mlflow_opens_and_stops_at_a_revision(tmp_path):
    from mlflow import MlflowClient

    path = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        mlflow_migrate_schema(connection, "3da73c924c2f")
    engine.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("3da73c924c2f",)]
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        mlflow_migrate_schema(connection)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(mlflow_schema_head(),)]
    # MLflow finds nothing to create or migrate: it would otherwise log "Creating initial MLflow database tables".
    assert [e.name for e in MlflowClient(f"sqlite:///{path}").search_experiments()] == ["Default"]
