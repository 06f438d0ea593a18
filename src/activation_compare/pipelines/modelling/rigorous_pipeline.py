"""Wiring of the rigorous protocol's ``modelling`` template: trials → choice → final models.

Per activation (a namespace, as in :mod:`.pipeline`): one trial model per
learning rate (build → train on the training split → score on the validation
split), a node that chooses the learning rate, then the final models (build →
train with the chosen rate, keeping the best validation epoch → evaluate on the
test set → figures). The test set is an input of the evaluate nodes only.
"""

from __future__ import annotations

from collections.abc import Sequence

from kedro.pipeline import Node, Pipeline

from activation_compare.identity import (
    LEARNING_RATE,
    LEARNING_RATE_SELECTION,
    SELECT_NODE,
    ComparePlan,
    ModelKey,
    Role,
    Step,
)
from activation_compare.params import Protocol
from activation_compare.pipelines.binding import bound as _bound

from .pipeline import build_node, evaluation_nodes, in_namespace, train_node
from .tuning import score_trial, select_learning_rate, train_final, train_trial

# The tag of the trial nodes (``kedro run --tags tuning``).
TUNING_TAG = "tuning"


def _trial_nodes(key: ModelKey) -> list[Node]:
    """Build → train → score for one trial; nothing here reads the test set."""
    data, tags = key.local_dataset, [TUNING_TAG, *key.node_tags()]
    return [
        build_node(key),
        train_node(
            key, train_trial, "params:tuning", data(Role.CHECKPOINTS), outputs=[Role.HISTORY], tags=[TUNING_TAG]
        ),
        Node(
            func=_bound(score_trial, key=key),
            inputs=[data(Role.HISTORY), "params:tuning"],
            outputs=data(Role.TRIAL_SCORE),
            name=key.local_node(Step.SCORE),
            tags=tags,
        ),
    ]


def _final_nodes(key: ModelKey) -> list[Node]:
    """Build → train with the chosen rate → evaluate on the test set → figures."""
    return [
        build_node(key),
        train_node(key, train_final, key.local_dataset(Role.CHECKPOINTS), LEARNING_RATE),
        *evaluation_nodes(key, Protocol.RIGOROUS),
    ]


def rigorous_namespace_pipeline(
    activation: str, trials: Sequence[ModelKey], finals: Sequence[ModelKey]
) -> Pipeline:
    """The rigorous template for one activation, inside the namespace ``activation``."""
    choose = Node(
        func=select_learning_rate,
        inputs=[key.local_dataset(Role.TRIAL_SCORE) for key in trials],
        outputs=[LEARNING_RATE, LEARNING_RATE_SELECTION],
        name=SELECT_NODE,
        tags=[TUNING_TAG, f"activation.{activation}"],
    )
    nodes = [n for key in trials for n in _trial_nodes(key)] + [choose]
    nodes += [n for key in finals for n in _final_nodes(key)]
    return in_namespace(activation, nodes, "tuning")


def create_rigorous_pipeline(plan: ComparePlan) -> Pipeline:
    """One namespace per activation of a rigorous plan: its trials, the choice, its final models."""
    finals = plan.final_models
    return sum(
        (
            rigorous_namespace_pipeline(
                activation, plan.trials_of(activation), [k for k in finals if k.activation == activation]
            )
            for activation in plan.activations
        ),
        start=Pipeline([]),
    )
