"""A SQLite tracking store's schema: created and upgraded so that no race can leave it half-migrated.

MLflow creates a new store's tables and migrates an older store's schema
whenever any of its processes opens the store (a run, ``mlflow ui``, a script),
without a lock and statement by statement (Python's ``sqlite3`` commits each
``CREATE``/``ALTER`` on its own), so two processes doing it at once fail and
can leave leftover ``_alembic_tmp_*`` tables or a schema that no later open can
migrate. Before MLflow opens a SQLite store, :func:`ensure_schema` makes it
complete at the installed MLflow's schema:

* **A new store** is created and migrated in a private file beside it and
  hard-linked into place only if no file is there yet: another process sees
  no store or a complete one.
* **An existing store** that is empty, incomplete, at an older schema or has
  leftover ``_alembic_tmp_*`` tables is migrated in place in **one SQLite
  transaction** that holds the database's exclusive lock: another process
  waits or gets an error, and a failure rolls everything back. A store that
  holds runs is first copied to ``<store>-backup-<revision>-<time>``.
  Leftover ``_alembic_tmp_*`` tables (a failed migration's, or one that lost
  a race) are dropped in the same transaction.
* A migration that fails (another process mid-way through its own) is tried
  again until the deadline; then the store is refused with the exact repair.
  A file that is not a database, or a store locked for longer than the
  deadline, is refused naming that cause and the path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activation_compare.errors import UserError
from activation_compare.private_apis import mlflow_migrate_schema, mlflow_schema_head

logger = logging.getLogger(__name__)

_TMP_PREFIX = "_alembic_tmp_"
_RETRY_DELAY_S = 0.5
# An incomplete store that has not changed for this long is not being migrated by anyone.
_QUIET_S = 2.0


class StoreSchemaError(UserError, RuntimeError):
    """The SQLite store is not a database, is locked, or cannot be migrated; the message says what to do."""


@dataclass(frozen=True)
class SchemaState:
    """What a store's schema is: its tables, its Alembic revision, leftover migration tables."""

    tables: frozenset[str]
    revision: str | None

    @property
    def leftovers(self) -> list[str]:
        return sorted(t for t in self.tables if t.startswith(_TMP_PREFIX))

    def complete(self, head: str) -> bool:
        return self.revision == head and not self.leftovers


def read_state(connection: sqlite3.Connection) -> SchemaState:
    tables = frozenset(
        row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    )
    revision = None
    if "alembic_version" in tables:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return SchemaState(tables, revision)


def ensure_schema(path: Path, timeout_s: float) -> Path | None:
    """Make the SQLite store at ``path`` complete at the installed MLflow's schema.

    Call it under the project's setup lock (:func:`~activation_compare.tracking.store.store_lock`).
    ``timeout_s``: how long another process may hold the database locked, and
    how long a failing migration is retried. Returns the backup made before an
    upgrade, if one was made.

    Raises:
        StoreSchemaError: The file is not a database, the store stayed locked,
            or its schema could not be migrated; the message names the cause,
            the path and the repair.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = mlflow_schema_head()
    with _named_errors(path, timeout_s):
        if _is_complete(path, head, timeout_s):
            return None
        if _create(path):
            logger.info("MLflow: created the store %s (schema %s)", path, head)
            return None
        return _migrate_in_place(path, head, timeout_s)


def _is_complete(path: Path, head: str, timeout_s: float) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    with contextlib.closing(sqlite3.connect(path, timeout=timeout_s)) as connection:
        return read_state(connection).complete(head)


def _create(path: Path) -> bool:
    """Migrate a new store in a private file and link it into place if ``path`` is still free."""
    if path.exists():
        return False
    scratch = path.with_name(f"{path.name}-new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with contextlib.closing(sqlite3.connect(scratch, isolation_level=None)) as connection:
            connection.execute("BEGIN EXCLUSIVE")
            _migrate(connection, scratch)
            connection.execute("COMMIT")
        try:
            os.link(scratch, path)  # fails if another process created the store meanwhile
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: migrate in place instead
            return False
        return True
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + "-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


class _StoreChanged(Exception):
    """Another process committed to the store between its backup and the migration's lock."""


def _migrate_in_place(path: Path, head: str, timeout_s: float) -> Path | None:
    deadline = time.monotonic() + timeout_s
    backup: Path | None = None
    attempt = 0
    while True:
        attempt += 1
        with contextlib.closing(sqlite3.connect(path, timeout=timeout_s, isolation_level=None)) as connection:
            if attempt == 1:
                _wait_while_changing(connection, head, deadline)
            state = read_state(connection)
            if state.complete(head):
                return backup
            seen = _data_version(connection)
            if backup is None and state.revision is not None:
                backup = _back_up(path, state.revision)
            connection.execute("BEGIN EXCLUSIVE")  # readers and writers wait until COMMIT
            try:
                if _data_version(connection) != seen:
                    raise _StoreChanged
                for table in state.leftovers:
                    connection.execute(f'DROP TABLE "{table}"')
                _migrate(connection, path)
                after = read_state(connection)
                if not after.complete(head):
                    raise RuntimeError(f"the schema is at {after.revision} after the migration, not {head}")
                connection.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                    connection.execute("ROLLBACK")
                if _is_locked(exc) or _is_corrupt(exc):
                    raise
                if isinstance(exc, _StoreChanged) and backup is not None:
                    backup.unlink()  # taken before the other process's change: take it again
                    backup = None
                if time.monotonic() + _RETRY_DELAY_S >= deadline:
                    raise StoreSchemaError(_unmigratable_message(path, state, head, backup, exc)) from exc
                logger.debug("MLflow store %s: migration attempt %d failed (%r), retrying", path, attempt, exc)
                time.sleep(_RETRY_DELAY_S)
                continue
        if state.revision is None:
            logger.info("MLflow: completed the store %s (schema %s)", path, head)
        else:
            logger.warning(
                "MLflow: upgraded the store %s from schema %s to %s%s%s",
                path, state.revision, head,
                f", dropped leftover tables {state.leftovers}" if state.leftovers else "",
                f"; the store as it was is kept in {backup}" if backup else "",
            )
        return backup


def _wait_while_changing(connection: sqlite3.Connection, head: str, deadline: float) -> None:
    """Let another process that is migrating the store finish: wait until it is complete or quiet.

    A process that loses the store to the project's migration fails, and may
    leave a leftover table behind (the next open drops it).
    """
    seen = _data_version(connection)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < _QUIET_S and time.monotonic() < deadline:
        time.sleep(0.1)
        if read_state(connection).complete(head):
            return
        version = _data_version(connection)
        if version != seen:
            seen, quiet_since = version, time.monotonic()


def _data_version(connection: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the database (SQLite's ``PRAGMA data_version``)."""
    return connection.execute("PRAGMA data_version").fetchone()[0]


class _OneTransaction:
    """A ``sqlite3`` connection whose commits and rollbacks are left to its owner.

    SQLAlchemy and Alembic commit after each step; on this connection they all
    stay inside the transaction that :func:`_migrate_in_place` began and ends.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """MLflow's initial tables and migrations, on ``connection``, inside its open transaction."""
    import sqlalchemy
    from sqlalchemy.pool import StaticPool

    wrapped = _OneTransaction(connection)
    engine = sqlalchemy.create_engine(f"sqlite:///{path}", creator=lambda: wrapped, poolclass=StaticPool)
    try:
        with engine.connect() as sa_connection:
            mlflow_migrate_schema(sa_connection)
    finally:
        engine.dispose()


def _back_up(path: Path, revision: str) -> Path:
    """A consistent copy of the store (SQLite's backup API) before its schema is upgraded.

    Never a plain file copy: closing any other descriptor of the database file
    would drop the locks SQLite holds on it in this process.
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}-backup-{revision}-{stamp}")
    partial = backup.with_name(backup.name + ".partial")
    with contextlib.closing(sqlite3.connect(path)) as source, contextlib.closing(
        sqlite3.connect(partial)
    ) as target:
        source.backup(target)
    os.replace(partial, backup)
    return backup


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "file is not a database" in text or "malformed" in text or "file is encrypted" in text


@contextlib.contextmanager
def _named_errors(path: Path, timeout_s: float) -> Iterator[None]:
    """SQLite's "locked" and "not a database" errors as one message naming the cause and the path."""
    try:
        yield
    except StoreSchemaError:
        raise
    except Exception as exc:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # SQLAlchemy adds [SQL: ...] lines
        if _is_locked(exc):
            raise StoreSchemaError(
                f"the MLflow store {path} is locked: another process (an MLflow UI, a run, a script) "
                f"held it for more than {timeout_s:g} s. Let it finish or stop it, then run again"
            ) from exc
        if _is_corrupt(exc):
            backups = sorted(p for p in path.parent.glob(f"{path.name}-backup-*") if p.suffix != ".partial")
            repair = f"Restore a backup (cp {backups[-1]} {path}) or move it away" if backups else "Move it away"
            raise StoreSchemaError(
                f"the MLflow store {path} is corrupt (SQLite: {cause.removeprefix('(sqlite3.DatabaseError) ')}). "
                f"{repair} (mv {path} {path}.corrupt) to start a new store, then run again"
            ) from exc
        raise


def _unmigratable_message(
    path: Path, state: SchemaState, head: str, backup: Path | None, exc: BaseException
) -> str:
    found = f"schema {state.revision or 'none'}, expected {head}"
    if state.leftovers:
        found += f", leftover tables {state.leftovers}"
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if backup is not None:
        repair = f"stop every other process using it, restore the backup (cp {backup} {path}) and run again"
    else:
        repair = f"it holds no runs: move it away (mv {path} {path}.broken) and run again"
    return f"the MLflow store {path} is half-migrated and could not be repaired ({found}; {reason}): {repair}"
