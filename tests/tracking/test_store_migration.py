"""A SQLite store is created and upgraded atomically: no other MLflow process can leave it half-migrated.

The race tests start the project's store-opening step (``open_store``, what
``kedro run`` does before its first node) and, 0 to 5 s later, a real second
MLflow process on the same store (``MlflowClient(...).search_experiments()``,
which creates or migrates the schema exactly as ``mlflow ui`` does), against
a store that does not exist yet and against a store of an older schema with
history in it. The project's step must succeed every time; the other process
may fail with MLflow's own error; afterwards a new MLflow client opens the
store, the next run's opening finds it complete, no ``_alembic_tmp_`` table
is left and the history is kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy
from conftest import test_env

from activation_compare.private_apis import mlflow_migrate_schema, mlflow_schema_head
from activation_compare.tracking import TrackingSettings
from activation_compare.tracking.sqlite_schema import read_state
from activation_compare.tracking.store import TrackingUnavailableError, open_store, unavailable_message

# A schema some MLflow 3 releases back; the upgrade from it starts with a
# migration that only creates tables (nothing rolls those back if a migration
# fails later, on a store MLflow migrates itself).
OLD_REVISION = "3da73c924c2f"
OFFSETS_S = (0.0, 1.0, 2.0, 3.5, 5.0)

PROJECT_OPENS = """
import sys
from activation_compare.tracking import TrackingSettings
from activation_compare.tracking.store import open_store
store = open_store(TrackingSettings(tracking_uri=sys.argv[1], experiment_name="race"))
print("opened experiment", store.experiment_id)
"""
MLFLOW_OPENS = "import sys; from mlflow import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"


def _uri(path: Path) -> str:
    return f"sqlite:///{path}"


def _state(path: Path):
    with sqlite3.connect(path) as connection:
        return read_state(connection)


def _old_store(path: Path) -> None:
    """A store at OLD_REVISION with an experiment and a run in it."""
    engine = sqlalchemy.create_engine(_uri(path))
    with engine.begin() as connection:
        mlflow_migrate_schema(connection, OLD_REVISION)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO experiments (name, artifact_location, lifecycle_stage) VALUES ('history', '/h', 'active')"
        )
        experiment_id = connection.execute("SELECT experiment_id FROM experiments WHERE name = 'history'").fetchone()[0]
        connection.execute(
            "INSERT INTO runs (run_uuid, name, experiment_id, status, start_time, lifecycle_stage, artifact_uri,"
            " source_type, source_name, entry_point_name, user_id, source_version)"
            " VALUES ('0123456789abcdef0123456789abcdef', 'old run', ?, 'FINISHED', 1, 'active', '/h/r',"
            " 'LOCAL', '', '', 'u', '')",
            (experiment_id,),
        )


@pytest.fixture(scope="module")
def old_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("old") / "mlflow.db"
    _old_store(path)
    return path


def _settings(path: Path, **kwargs) -> TrackingSettings:
    return TrackingSettings(tracking_uri=_uri(path), experiment_name="race", **kwargs)


# --- one process --------------------------------------------------------------------------


def test_a_new_store_is_created_complete(tmp_path):
    path = tmp_path / "mlflow.db"
    store = open_store(_settings(path))
    assert _state(path).complete(mlflow_schema_head())
    assert store.client.get_experiment(store.experiment_id).name == "race"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db", "mlflow.db-setup-lock"]


def test_an_old_store_is_upgraded_keeping_its_history_and_a_backup(tmp_path, old_store):
    path = tmp_path / "mlflow.db"
    shutil.copyfile(old_store, path)
    store = open_store(_settings(path))
    assert _state(path).complete(mlflow_schema_head())
    assert store.client.get_run("0123456789abcdef0123456789abcdef").info.run_name == "old run"
    (backup,) = tmp_path.glob(f"mlflow.db-backup-{OLD_REVISION}-*")
    assert _state(backup).revision == OLD_REVISION


def test_leftover_migration_tables_are_dropped(tmp_path, old_store):
    """A store a failed MLflow migration left behind (every later MLflow open fails on it)."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(old_store, path)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE _alembic_tmp_experiments (x INTEGER)")
    store = open_store(_settings(path))
    state = _state(path)
    assert state.complete(mlflow_schema_head()) and not state.leftovers
    assert store.client.get_run("0123456789abcdef0123456789abcdef").info.run_name == "old run"


def test_a_store_that_cannot_be_migrated_is_refused_unchanged_with_the_repair(tmp_path, old_store):
    path = tmp_path / "mlflow.db"
    shutil.copyfile(old_store, path)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE jobs (x INTEGER)")  # the first migration creates it
    with pytest.raises(TrackingUnavailableError) as raised:
        open_store(_settings(path, connect_timeout_s=1))
    (backup,) = tmp_path.glob("mlflow.db-backup-*")
    message = str(raised.value)
    assert f"the MLflow store {path} is half-migrated and could not be repaired" in message
    assert f"restore the backup (cp {backup} {path})" in message
    assert "table jobs already exists" in message
    assert "Start the tracking server" not in message and "\n" not in message
    assert _state(path).revision == OLD_REVISION  # the failed migration was rolled back


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    path = tmp_path / "mlflow.db"
    path.write_bytes(b"not a database, but long enough to have a header " * 100)
    with pytest.raises(TrackingUnavailableError) as raised:
        open_store(_settings(path))
    message = str(raised.value)
    assert f"the MLflow store {path} is corrupt (SQLite: file is not a database)" in message
    assert f"mv {path} {path}.corrupt" in message
    assert "Start the tracking server" not in message and "\n" not in message


def test_a_locked_store_is_named(tmp_path):
    path = tmp_path / "mlflow.db"
    open_store(_settings(path))
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(TrackingUnavailableError) as raised:
            open_store(_settings(path, connect_timeout_s=1))
        assert time.monotonic() - started < 10
    finally:
        holder.close()
    message = str(raised.value)
    assert f"the MLflow store {path} is locked: another process" in message and "more than 1 s" in message
    assert "Start the tracking server" not in message


def test_later_errors_on_a_sqlite_store_name_the_file_not_a_server(tmp_path):
    """What the tracking hook says when MLflow fails later on a SQLite store (e.g. locked mid-setup)."""
    path = tmp_path / "mlflow.db"
    message = unavailable_message(_settings(path), "OperationalError: database is locked")
    assert f"The store is the SQLite file {path}" in message and "database is locked" in message
    assert "Start the tracking server" not in message
    assert "Start the tracking server" in unavailable_message(TrackingSettings(tracking_uri="http://h:5000"), "x")


# --- a real second MLflow process -------------------------------------------------------------


def _race(path: Path, offset_s: float) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    run = dict(env=test_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    project = subprocess.Popen([sys.executable, "-c", PROJECT_OPENS, _uri(path)], **run)
    time.sleep(offset_s)
    other = subprocess.Popen([sys.executable, "-c", MLFLOW_OPENS, _uri(path)], **run)
    results = []
    for process in (project, other):
        output, _ = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, output))
    return results[0], results[1]


def _check_after_the_race(path: Path, project: subprocess.CompletedProcess) -> None:
    from mlflow import MlflowClient

    assert project.returncode == 0 and "opened experiment" in project.stdout, project.stdout[-3000:]
    assert _state(path).revision == mlflow_schema_head()  # before anything else opens it
    names = {e.name for e in MlflowClient(_uri(path)).search_experiments()}
    assert "race" in names
    open_store(_settings(path))  # the next run
    state = _state(path)
    assert state.complete(mlflow_schema_head()) and not state.leftovers


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("offset_s", OFFSETS_S)
def test_a_new_store_survives_a_second_mlflow_process(tmp_path, offset_s):
    path = tmp_path / "mlflow.db"
    project, other = _race(path, offset_s)
    _check_after_the_race(path, project)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("offset_s", OFFSETS_S)
def test_an_old_store_survives_a_second_mlflow_process(tmp_path, old_store, offset_s):
    from mlflow import MlflowClient

    path = tmp_path / "mlflow.db"
    shutil.copyfile(old_store, path)
    project, other = _race(path, offset_s)
    _check_after_the_race(path, project)
    run = MlflowClient(_uri(path)).get_run("0123456789abcdef0123456789abcdef")
    assert run.info.run_name == "old run"


def test_kedro_run_on_a_corrupt_store_says_so_in_one_message(tmp_path, tracking):
    """The real CLI: the file and the cause, no traceback, no 'start the tracking server', no node run."""
    project = tracking.copy_project(tmp_path / "project")
    store = tmp_path / "store" / "mlflow.db"
    store.parent.mkdir()
    store.write_bytes(b"not a database " * 400)
    result = tracking.kedro_cli(
        project, "run", "--env", "smoke", "--pipeline=compare", env={"MLFLOW_TRACKING_URI": _uri(store)}
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert f"the MLflow store {store} is corrupt (SQLite: file is not a database)" in result.stderr, output[-3000:]
    assert f"mv {store} {store}.corrupt" in result.stderr
    assert "Traceback" not in output and "Running node" not in output
    assert "Start the tracking server" not in output
