"""Node functions with some arguments fixed by the wiring (shared by every pipeline)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps
from typing import Any

from kedro.pipeline import Node, Pipeline

from activation_compare.private_apis import kedro_node_fields


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
    bound.bound_arguments = fixed  # type: ignore[attr-defined]  # for BoundNode's pickling
    return bound


def _bound_node(func: Callable, fixed: dict[str, Any], fields: dict[str, Any]) -> Node:
    return BoundNode(func=bound(func, **fixed), **fields)


class BoundNode(Node):
    """A node whose function has bound arguments, pickled as the function and the arguments.

    ParallelRunner sends nodes to worker processes with pickle, which cannot
    send the closure :func:`bound` makes; this node sends the module-level
    function, the bound arguments and its own fields, and the worker binds them again.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return _bound_node, (self.func.__wrapped__, self.func.bound_arguments, kedro_node_fields(self))


def picklable(pipeline: Pipeline) -> Pipeline:
    """``pipeline`` with every node of a bound function made a :class:`BoundNode`.

    Call it on the final (namespaced) pipeline: namespacing copies nodes as plain ``Node`` objects.
    """
    return Pipeline([
        _bound_node(node.func.__wrapped__, fixed, kedro_node_fields(node))
        if (fixed := getattr(node.func, "bound_arguments", None)) is not None else node
        for node in pipeline.nodes
    ])
