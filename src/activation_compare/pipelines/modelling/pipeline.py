"""Wiring of the ``modelling`` template: one instance per activation, as a namespace.

Every name comes from the contract (:mod:`activation_compare.identity`): a
model's nodes are ``key.local_node(step)`` and its datasets
``key.local_dataset(role)`` inside the namespace ``key.namespace``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kedro.pipeline import Node, Pipeline

from activation_compare.identity import (
    CLASS_NAMES,
    LEARNING_RATE,
    TEST_SET,
    TRAIN_SET,
    VALIDATION_SET,
    ComparePlan,
    ModelKey,
    Role,
    Step,
)
from activation_compare.params import Protocol
from activation_compare.pipelines.binding import bound as _bound
from activation_compare.pipelines.binding import picklable
from activation_compare.pipelines.reporting.figures import plot_model_figures
from activation_compare.pipelines.reporting.provenance import (
    PROVENANCE_INPUTS,
    RUN_PROVENANCE,
)

from .nodes import build_model, evaluate_model, train_model

# Inputs shared by every namespace rather than namespaced per activation.
SHARED_INPUTS = {TRAIN_SET, VALIDATION_SET, TEST_SET, CLASS_NAMES, RUN_PROVENANCE}
# The tag of the training nodes (``kedro run --tags training``).
TRAINING_TAG = "training"


def build_node(key: ModelKey) -> Node:
    """Build the model's untrained network from its activation's spec."""
    return Node(
        func=_bound(build_model, key=key),
        inputs=["params:activation", "params:model"],
        outputs=key.local_dataset(Role.UNTRAINED_MODEL),
        name=key.local_node(Step.BUILD),
        tags=key.node_tags(),
    )


def evaluation_nodes(key: ModelKey, protocol: Protocol = Protocol.ORIGINAL) -> list[Node]:
    """Evaluate the trained model on the test set (the only nodes that read it), then plot.

    The report records the settings that trained the model: the parameters, and
    under the rigorous protocol the learning rate its activation's tuning chose.
    """
    data, tags = key.local_dataset, key.node_tags()
    settings = ["params:activation", "params:model", "params:training", "params:data"]
    if protocol is Protocol.RIGOROUS:
        settings.append(LEARNING_RATE)
    return [
        Node(
            func=_bound(evaluate_model, key=key, protocol=protocol),
            inputs=[data(Role.MODEL), data(Role.HISTORY), TEST_SET, CLASS_NAMES, *settings],
            outputs=data(Role.REPORT),
            name=key.local_node(Step.EVALUATE),
            tags=tags,
        ),
        Node(
            func=plot_model_figures,
            inputs=[data(Role.REPORT), *PROVENANCE_INPUTS],
            outputs=[data(Role.ACCURACY_CURVES), data(Role.CONFUSION_MATRIX)],
            name=key.local_node(Step.PLOT),
            tags=tags,
        ),
    ]


def train_node(
    key: ModelKey, func: Callable, *inputs: str, outputs: Sequence[Role] = (Role.MODEL, Role.HISTORY),
    tags: Sequence[str] = (),
) -> Node:
    """The model's training node (every protocol's): ``func`` bound to ``key``, tagged ``training``.

    Its inputs: the untrained model, the training and validation sets,
    ``params:training``, then ``inputs`` (the model's checkpoints among them:
    a :class:`~activation_compare.training_state.Checkpoints` handle, for resume and reuse).
    """
    data = key.local_dataset
    return Node(
        func=_bound(func, key=key),
        inputs=[data(Role.UNTRAINED_MODEL), TRAIN_SET, VALIDATION_SET, "params:training", *inputs],
        # One output by name: Kedro hands it the function's value as it is, not unpacked.
        outputs=data(outputs[0]) if len(outputs) == 1 else [data(role) for role in outputs],
        name=key.local_node(Step.TRAIN),
        tags=[TRAINING_TAG, *tags, *key.node_tags()],
    )


def _model_nodes(key: ModelKey) -> list[Node]:
    """Build → train → evaluate → figures for one model, with names local to its namespace."""
    train = train_node(key, train_model, key.local_dataset(Role.CHECKPOINTS))
    return [build_node(key), train, *evaluation_nodes(key)]


def in_namespace(activation: str, nodes: Sequence[Node], *sections: str) -> Pipeline:
    """``nodes`` inside the namespace ``activation``, sharing the data and the given parameter sections.

    The activation's spec is read from ``params:activations.<activation>``;
    ``model``, ``training``, ``data`` and the named ``sections`` are shared by all
    namespaces.
    """
    shared = ("model", "training", "data", *sections)
    namespaced = Pipeline(
        Pipeline(list(nodes)),
        namespace=activation,
        inputs=SHARED_INPUTS,
        parameters={
            "params:activation": f"params:activations.{activation}",
            **{f"params:{section}": f"params:{section}" for section in shared},
        },
    )
    # Worker processes of ParallelRunner get the nodes by pickle.
    return picklable(namespaced)


def namespace_pipeline(activation: str, models: Sequence[ModelKey]) -> Pipeline:
    """The template for every model of one activation, inside the namespace ``activation``."""
    return in_namespace(activation, [node for key in models for node in _model_nodes(key)])


def create_pipeline(plan: ComparePlan) -> Pipeline:
    """One namespace per activation of the plan, with one set of nodes per model."""
    return sum(
        (namespace_pipeline(activation, plan.models_of(activation)) for activation in plan.activations),
        start=Pipeline([]),
    )
