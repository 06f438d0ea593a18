"""Wiring of the ``reporting`` step: one comparison over every trained model."""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline

from activation_compare.pipelines.modelling.pipeline import report_names

from .nodes import compare_activations


def create_pipeline(activations: Sequence[str], seeds: Sequence[int]) -> Pipeline:
    """Compare the reports of every activation × seed in one table, figure and summary."""
    return Pipeline(
        [
            Node(
                func=compare_activations,
                inputs=["params:compare", *report_names(activations, seeds)],
                outputs=[
                    "comparison_table",
                    "comparison_markdown",
                    "comparison_curves",
                    "comparison_summary",
                ],
                name="compare_activations_node",
            )
        ]
    )
