"""One Dask task per model: how the runner groups a pipeline's nodes (no cluster needed)."""

from __future__ import annotations

import pytest
from kedro.pipeline import Node, Pipeline

from activation_compare.identity import (
    CLASS_NAMES,
    COMPARE_NODE,
    TEST_SET,
    TRAIN_SET,
    ComparePlan,
    ModelKey,
    Role,
    Step,
)
from activation_compare.runner.units import split_into_units


def _step(*inputs):
    return inputs


def _model_nodes(key: ModelKey) -> list[Node]:
    untrained, model = key.dataset(Role.UNTRAINED_MODEL), key.dataset(Role.MODEL)
    report, history = key.dataset(Role.REPORT), key.dataset(Role.HISTORY)
    return [
        Node(_step, "params:model", untrained, name=key.node(Step.BUILD)),
        Node(_step, [untrained, TRAIN_SET], [model, history], name=key.node(Step.TRAIN)),
        Node(_step, [model, history, TEST_SET, CLASS_NAMES], report, name=key.node(Step.EVALUATE)),
        Node(
            _step,
            report,
            [key.dataset(Role.ACCURACY_CURVES), key.dataset(Role.CONFUSION_MATRIX)],
            name=key.node(Step.PLOT),
        ),
    ]


MODEL_STEPS = (Step.BUILD, Step.TRAIN, Step.EVALUATE, Step.PLOT)
PLAN = ComparePlan.of(["relu", "rrelu"], [0, 1])
SHARED = [
    Node(_step, "raw_images", ["raw_train", "raw_test", CLASS_NAMES], name="ingest_node"),
    Node(_step, "raw_train", TRAIN_SET, name="normalize_train_node"),
    Node(_step, "raw_test", TEST_SET, name="normalize_test_node"),
]
COMPARE = Node(_step, PLAN.datasets(Role.REPORT), "comparison_table", name=COMPARE_NODE)
PIPELINE = Pipeline([*SHARED, *(n for key in PLAN.models for n in _model_nodes(key)), COMPARE])


def test_each_model_is_one_unit_and_shared_nodes_run_once():
    units = {unit.name: unit for unit in split_into_units(PIPELINE, PLAN)}

    assert set(units) == {key.name for key in PLAN.models} | {
        "ingest_node", "normalize_train_node", "normalize_test_node", COMPARE_NODE,
    }
    key = ModelKey("rrelu", 1)
    unit = units[key.name]
    assert unit.model == key
    assert [n.name for n in unit.nodes] == [key.node(step) for step in MODEL_STEPS]
    # Only what crosses the model's boundary: shared data in, the report out
    # (the untrained model, trained model and history stay on the worker).
    assert unit.inputs == {"params:model", TRAIN_SET, TEST_SET, CLASS_NAMES}
    assert unit.outputs == {
        key.dataset(Role.REPORT), key.dataset(Role.ACCURACY_CURVES), key.dataset(Role.CONFUSION_MATRIX),
    }
    assert units["ingest_node"].outputs == {"raw_train", "raw_test", CLASS_NAMES}
    assert units[COMPARE_NODE].model is None


def test_units_come_after_the_units_they_read_from():
    order = [unit.name for unit in split_into_units(PIPELINE, PLAN)]

    assert order.index("ingest_node") < order.index("normalize_train_node")
    for key in PLAN.models:
        assert order.index("normalize_train_node") < order.index(key.name) < order.index(COMPARE_NODE)


def test_a_node_outside_a_model_between_two_of_its_nodes_is_refused():
    key = ModelKey("relu", 0)
    nodes = _model_nodes(key)
    untrained = key.dataset(Role.UNTRAINED_MODEL)
    # A shared node that reads the model's build output and feeds its training.
    nodes[1] = Node(_step, ["inspected", TRAIN_SET], [key.dataset(Role.MODEL), key.dataset(Role.HISTORY)],
                    name=key.node(Step.TRAIN))
    between = Node(_step, untrained, "inspected", name="inspect_node")
    pipeline = Pipeline([Node(_step, "raw", TRAIN_SET, name="prep_node"), *nodes, between])

    with pytest.raises(ValueError, match="cannot run as one task.*cycle"):
        split_into_units(pipeline, ComparePlan.of(["relu"], [0]))


def test_without_models_every_node_is_its_own_unit():
    units = split_into_units(Pipeline(SHARED), ComparePlan(()))

    assert [len(unit.nodes) for unit in units] == [1, 1, 1]
    assert all(unit.model is None for unit in units)
