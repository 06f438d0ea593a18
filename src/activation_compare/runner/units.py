"""Which nodes run together as one task on a worker: one task per model, one per shared node.

A model's nodes (build → train → evaluate → figures, found with
:meth:`ComparePlan.node`) form one *unit*: its untrained model, trained model
and report pass from node to node in the worker's memory, and nodes of
different models run concurrently on different workers. Every other node
(ingestion, normalization, the comparison) is a unit of its own and runs
once. Between units only what crosses a unit's boundary moves: a persisted
dataset is written to storage by its producer and read from there by its
consumers; an in-memory dataset is handed over by Dask, from the worker that
made it straight to the workers that read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node

from activation_compare.identity import ComparePlan, ModelKey


@dataclass(frozen=True)
class Unit:
    """Nodes that run as one Dask task, in a valid order.

    ``inputs`` are the datasets the unit reads from outside itself (parameters
    included); ``outputs`` the datasets it writes that another unit reads or
    that the pipeline returns.
    """

    name: str
    nodes: tuple[Node, ...]
    model: ModelKey | None
    inputs: frozenset[str]
    outputs: frozenset[str]


def split_into_units(pipeline: Pipeline, plan: ComparePlan) -> list[Unit]:
    """The pipeline's units in an order where every unit comes after those it reads from.

    Raises:
        ValueError: a model's nodes cannot form one task, because a node
            outside the model both reads from it and feeds it.
    """
    members: dict[str, list[Node]] = {}
    models: dict[str, ModelKey | None] = {}
    for node in pipeline.nodes:  # topological order, so each unit's nodes are too
        found = plan.node(node.name)
        name = found[0].name if found is not None else node.name
        members.setdefault(name, []).append(node)
        models[name] = found[0] if found is not None else None

    produced_by = {out: name for name, nodes in members.items() for n in nodes for out in n.outputs}
    free_outputs = pipeline.outputs()
    units = {}
    for name, nodes in members.items():
        made = {out for n in nodes for out in n.outputs}
        inputs = {ds for n in nodes for ds in n.inputs} - made
        read_elsewhere = {
            ds for other, others in members.items() if other != name
            for n in others for ds in n.inputs
        }
        outputs = made & (read_elsewhere | free_outputs)
        units[name] = Unit(name, tuple(nodes), models[name], frozenset(inputs), frozenset(outputs))

    order = _order(units.values(), produced_by)
    return [units[name] for name in order]


def producers(units: Iterable[Unit]) -> dict[str, str]:
    """The unit that writes each dataset crossing a unit boundary."""
    return {ds: unit.name for unit in units for ds in unit.outputs}


def _order(units: Iterable[Unit], produced_by: Mapping[str, str]) -> list[str]:
    graph = {
        unit.name: {produced_by[ds] for ds in unit.inputs if ds in produced_by} for unit in units
    }
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ValueError(
            f"the nodes of one model cannot run as one task: units {exc.args[1]} depend on each "
            "other in a cycle (a node outside the model reads one of its outputs and feeds it back)"
        ) from None
