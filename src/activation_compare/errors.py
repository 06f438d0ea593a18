"""The one base class of errors that a user causes and can fix.

A parameter out of range, a corrupt or hostile data file, a failed download,
a full disk, a training run whose loss diverged: each is raised as a subclass
of :class:`UserError` whose message says what went wrong, with which input,
what is allowed and what to do. The project's ``kedro run``
(``activation_compare.cli``) prints such a message as one short block and
exits non-zero, without a traceback unless one is asked for. Anything else is a
bug, and keeps its traceback.

This module imports nothing, so any layer (parameters, datasets, storage,
nodes) can use it without an import cycle.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave the project (parameters, data, environment)."""


def find_user_error(error: BaseException) -> UserError | None:
    """The :class:`UserError` that ``error`` is or was raised from, if any.

    Kedro re-raises some errors wrapped in its own (a dataset that fails to build
    becomes a ``DatasetError`` "from" ours), so the chain of causes is followed.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, UserError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
