"""Node functions with some arguments fixed by the wiring (shared by every pipeline)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any


def bound(func: Callable, **fixed: Any) -> Callable:
    """``func`` with keyword-only arguments fixed.

    A plain function rather than a ``functools.partial``: kedro-viz shows code
    and docstrings only for functions, and Kedro reads the type hints of the
    remaining parameters to validate typed ``params:`` inputs.
    """

    @wraps(func)
    def bound(*args: Any, **more: Any) -> Any:
        return func(*args, **fixed, **more)

    signature = inspect.signature(func)
    bound.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p for name, p in signature.parameters.items() if name not in fixed]
    )
    return bound
