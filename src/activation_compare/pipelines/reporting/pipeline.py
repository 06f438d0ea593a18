"""Wiring of the ``reporting`` step: one comparison over every trained model."""

from __future__ import annotations

import warnings

from kedro.pipeline import Node, Pipeline

from activation_compare.identity import COMPARE_NODE, ComparePlan, ComparisonOutput, Role

from .nodes import compare_activations


def create_pipeline(plan: ComparePlan) -> Pipeline:
    """Compare the reports of every model of the plan in one table, figure and summary."""
    with warnings.catch_warnings():
        # The reports live in the activations' namespaces ("relu.report_seed0")
        # by design (identity.py); Kedro warns about any dotted input of a node
        # outside a namespace.
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'")
        node = Node(
            func=compare_activations,
            inputs=["params:compare", *plan.datasets(Role.REPORT)],
            outputs=[output.value for output in ComparisonOutput],
            name=COMPARE_NODE,
        )
    return Pipeline([node])
