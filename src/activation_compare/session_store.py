"""A session store that gives every ``kedro run`` a run id no concurrent run shares.

Kedro names a run after its session id, the UTC time to the millisecond: it is
the version folder of every file the run saves (``<file>/<run id>/<file>``)
and the tag by which tracking finds the run's MLflow runs in any process. Two
runs started together in one project (two terminals, a scheduler) can get the
same millisecond, and then the second fails on its first save, or finds the
other's MLflow run. This store appends the driver's process id, which no two
live processes on a host share; the id still sorts by time, so Kedro's "latest
version" stays the newest run.

The run's id is therefore ``session.store["session_id"]``, which is what Kedro's
``session.run`` uses (save version, the hooks' ``run_id``);
``KedroSession.session_id`` keeps Kedro's bare timestamp.
"""

from __future__ import annotations

import os
from typing import Any

from kedro.framework.session.store import BaseSessionStore

SESSION_ID = "session_id"


def unique_run_id(session_id: str, pid: int | None = None) -> str:
    """``session_id`` with this process's id appended, once."""
    suffix = f"-{os.getpid() if pid is None else pid}"
    return session_id if session_id.endswith(suffix) else session_id + suffix


class UniqueRunSessionStore(BaseSessionStore):
    """Kedro's in-memory session store, whose ``session_id`` is unique per process."""

    def __init__(self, path: str, session_id: str) -> None:
        super().__init__(path, unique_run_id(session_id))

    def __setitem__(self, key: str, value: Any) -> None:
        # KedroSession.create writes its timestamp here; the run reads its id,
        # save version and hook run_id back from this key.
        if key == SESSION_ID and isinstance(value, str):
            value = unique_run_id(value)
        super().__setitem__(key, value)
