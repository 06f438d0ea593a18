"""Wiring of the ``reporting`` step: one comparison over every trained model."""

from __future__ import annotations

import warnings

from kedro.pipeline import Node, Pipeline

from activation_compare.identity import (
    COMPARE_NODE,
    LEARNING_RATE_SELECTION,
    ComparePlan,
    ComparisonOutput,
    Role,
    tuning_name,
)
from activation_compare.params import Protocol
from activation_compare.pipelines.binding import bound as _bound

from .nodes import compare_activations, compare_rigorous
from .provenance import PROVENANCE_INPUTS


def create_pipeline(plan: ComparePlan) -> Pipeline:
    """Compare the reports of every model of the plan in one table, figure and summary."""
    with warnings.catch_warnings():
        # The reports live in the activations' namespaces ("relu.report_seed0")
        # by design (identity.py); Kedro warns about any dotted input of a node
        # outside a namespace.
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        if plan.protocol is Protocol.RIGOROUS:
            selections = [tuning_name(a, LEARNING_RATE_SELECTION) for a in plan.activations]
            reports = [key.dataset(Role.REPORT) for key in plan.final_models]
            node = Node(
                func=_bound(compare_rigorous, selections=len(selections)),
                inputs=["params:compare", *PROVENANCE_INPUTS, *selections, *reports],
                outputs=[output.value for output in ComparisonOutput],
                name=COMPARE_NODE,
            )
        else:
            node = Node(
                func=compare_activations,
                inputs=["params:compare", *PROVENANCE_INPUTS, *plan.datasets(Role.REPORT)],
                outputs=[output.value for output in ComparisonOutput],
                name=COMPARE_NODE,
            )
    return Pipeline([node])
