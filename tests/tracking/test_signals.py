"""Ctrl-C and SIGTERM never cut a write to the tracking store in half.

A ``KeyboardInterrupt`` raised inside a SQLite write leaves its transaction
open and the database locked; the thread that then ends the runs KILLED waits
on that lock, and the process on that thread (seen in CI: a SIGTERMed
``kedro run`` that never exited, "database is locked" every 20 s). The
interrupt is held back until the store call returns.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from activation_compare.tracking.signals import InterruptGuard
from activation_compare.tracking.store import RetryingClient


class _SlowWriter:
    """A client whose write is interrupted half-way: SIGTERM arrives inside the transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE runs (id TEXT, status TEXT)")
            db.execute("INSERT INTO runs VALUES ('r', 'RUNNING')")

    def set_terminated(self, run_id: str, status: str) -> None:
        db = sqlite3.connect(self.path, timeout=0.5, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, mid-transaction
        db.execute("COMMIT")
        db.close()

    def end_killed(self) -> str:
        """What the helper thread does: mark the run KILLED (a write of its own)."""
        try:
            with sqlite3.connect(self.path, timeout=2) as db:
                db.execute("UPDATE runs SET status = 'KILLED' WHERE id = 'r'")
            return "ended"
        except sqlite3.OperationalError as exc:
            return str(exc)

    def status(self) -> str:
        with sqlite3.connect(self.path, timeout=0.5) as db:
            return db.execute("SELECT status FROM runs").fetchone()[0]


@pytest.fixture
def main_thread_only():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed in the main thread")
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def _guarded(client: RetryingClient | None, closed: list[str], store: _SlowWriter) -> InterruptGuard:
    guard = InterruptGuard(lambda: closed.append(store.end_killed()), defer=client.defer_interrupt if client else None)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    guard.install()
    return guard


def test_an_interrupt_waits_for_the_store_call_to_finish(tmp_path, main_thread_only):
    store = _SlowWriter(tmp_path / "store.db")
    client = RetryingClient(store)
    closed: list[str] = []
    guard = _guarded(client, closed, store)
    with pytest.raises(KeyboardInterrupt):
        client.set_terminated("r", "KILLED")
    guard.wait()
    # The write committed before the interrupt was raised, and nothing was left locked.
    assert store.status() == "KILLED"
    assert closed == ["ended"]


def test_without_deferral_the_interrupt_cuts_the_write_and_leaves_the_store_locked(tmp_path, main_thread_only):
    """What the deferral prevents (the behaviour before it), shown on the same store."""
    store = _SlowWriter(tmp_path / "store.db")
    closed: list[str] = []
    guard = _guarded(None, closed, store)
    with pytest.raises(KeyboardInterrupt) as interrupted:
        RetryingClient(store).set_terminated("r", "KILLED")
    guard.wait()
    # The cut write's transaction is still open (its frame lives on in the traceback).
    assert closed == ["database is locked"]
    del interrupted


def test_a_signal_outside_store_calls_interrupts_at_once(tmp_path, main_thread_only):
    store = _SlowWriter(tmp_path / "store.db")
    client = RetryingClient(store)
    guard = _guarded(client, [], store)
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    guard.wait()
    assert client.defer_interrupt() is False


def test_the_client_travels_with_the_catalog(tmp_path):
    """Pickled and deep-copied as the catalog's tracking entry is (worker processes): its calls work."""
    import copy
    import pickle

    store = _SlowWriter(tmp_path / "store.db")
    for clone in (pickle.loads(pickle.dumps(RetryingClient(store))), copy.deepcopy(RetryingClient(store))):
        assert clone.status() == "RUNNING"
        assert clone.defer_interrupt() is False


def test_calls_keep_their_keyword_arguments(tmp_path):
    """A client method's own ``name=`` (``create_registered_model(name=…)``) reaches it unchanged."""

    class Client:
        def create(self, name: str, attribute: str = "") -> str:
            return f"{name}/{attribute}"

    assert RetryingClient(Client()).create(name="model", attribute="a") == "model/a"
