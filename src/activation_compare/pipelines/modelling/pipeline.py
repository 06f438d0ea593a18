"""Wiring of the ``modelling`` template: one instance per activation, as a namespace."""

from __future__ import annotations

from collections.abc import Callable, Sequence
import inspect
from functools import wraps
from typing import Any

from kedro.pipeline import Node, Pipeline

from activation_compare.pipelines.reporting.nodes import plot_model_figures

from .nodes import build_model, evaluate_model, train_model

# Inputs shared by every namespace rather than namespaced per activation.
SHARED_INPUTS = {"train_set", "validation_set", "test_set", "class_names"}
TRAINING_TAG = "training"


def seed_suffix(seed: int) -> str:
    """Dataset suffix of one seed's model, so every file says which seed made it."""
    return f"_seed{seed}"


def _bound(func: Callable, **fixed: Any) -> Callable:
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


def model_identity(node: Node) -> tuple[str, int] | None:
    """The (activation, seed) of a per-model node, read from its tags; None for other nodes."""
    tags = dict(tag.split(".", 1) for tag in node.tags if tag.startswith(("activation.", "seed.")))
    if "activation" not in tags or "seed" not in tags:
        return None
    return tags["activation"], int(tags["seed"])


def _model_nodes(activation: str, seed: int, suffix: str) -> list[Node]:
    # Node tags allow letters, digits, "_", "-" and "."; model_identity() reads these back.
    identity = [f"activation.{activation}", f"seed.{seed}"]
    return [
        Node(
            func=_bound(build_model, seed=seed, name=activation),
            inputs=["params:activation", "params:model"],
            outputs=f"untrained_model{suffix}",
            name=f"build_model{suffix}_node",
            tags=identity,
        ),
        Node(
            func=_bound(train_model, seed=seed),
            inputs=[
                f"untrained_model{suffix}",
                "train_set",
                "validation_set",
                "params:training",
                # The model's checkpoint folder (resume, reuse): checkpoints.TrainingState.
                f"training_state{suffix}",
            ],
            outputs=[f"model{suffix}", f"history{suffix}"],
            name=f"train_model{suffix}_node",
            tags=[TRAINING_TAG, *identity],
        ),
        Node(
            func=_bound(evaluate_model, activation=activation, seed=seed),
            inputs=[f"model{suffix}", f"history{suffix}", "test_set", "class_names"],
            outputs=f"report{suffix}",
            name=f"evaluate_model{suffix}_node",
            tags=identity,
        ),
        Node(
            func=plot_model_figures,
            inputs=f"report{suffix}",
            outputs=[f"accuracy_curves{suffix}", f"confusion_matrix{suffix}"],
            name=f"plot_model_figures{suffix}_node",
            tags=identity,
        ),
    ]


def create_pipeline(activation: str, seeds: Sequence[int]) -> Pipeline:
    """Build → train → evaluate for every seed, inside the namespace ``activation``.

    The activation's spec is read from ``params:activations.<activation>``;
    data and training parameters are shared by all namespaces.
    """
    template = Pipeline(
        [node for seed in seeds for node in _model_nodes(activation, seed, seed_suffix(seed))]
    )
    return Pipeline(
        template,
        namespace=activation,
        inputs=SHARED_INPUTS,
        parameters={
            "params:activation": f"params:activations.{activation}",
            "params:model": "params:model",
            "params:training": "params:training",
        },
    )


def report_names(activations: Sequence[str], seeds: Sequence[int]) -> list[str]:
    """The per-model report datasets that the comparison collects, in order."""
    return [
        f"{activation}.report{seed_suffix(seed)}"
        for activation in activations
        for seed in seeds
    ]
