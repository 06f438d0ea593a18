"""The modelling template's wiring: names from the contract, nodes that ParallelRunner can send."""

from __future__ import annotations

import inspect
import pickle
from multiprocessing.reduction import ForkingPickler

from activation_compare.identity import ComparePlan, ModelKey, Role, Step
from activation_compare.pipelines.modelling import create_pipeline

PLAN = ComparePlan.of(["relu", "rrelu"], [0, 1])


def test_every_node_and_dataset_is_named_by_the_contract():
    pipeline = create_pipeline(PLAN)
    assert {node.name for node in pipeline.nodes} == {key.node(step) for key in PLAN.models for step in Step
                                                      if step in (Step.BUILD, Step.TRAIN, Step.EVALUATE, Step.PLOT)}
    key = ModelKey("rrelu", 1)
    train = next(node for node in pipeline.nodes if node.name == key.node(Step.TRAIN))
    assert key.dataset(Role.CHECKPOINTS) in train.inputs
    assert train.outputs == [key.dataset(Role.MODEL), key.dataset(Role.HISTORY)]
    assert {"training", "activation.rrelu", "seed.1"} <= train.tags


def test_nodes_pickle_for_worker_processes_and_stay_plain_functions():
    """ParallelRunner pickles every node; kedro-viz shows code only for plain functions."""
    for node in create_pipeline(PLAN).nodes:
        copy = pickle.loads(ForkingPickler.dumps(node))
        assert copy == node and copy.inputs == node.inputs and copy.tags == node.tags
        assert inspect.isfunction(copy.func)
        assert getattr(copy.func, "bound_arguments", None) == getattr(node.func, "bound_arguments", None)


def test_rigorous_nodes_pickle_too():
    from activation_compare.pipelines.modelling import create_rigorous_pipeline

    plan = ComparePlan((ModelKey("relu", 0, trial=0), ModelKey("relu", 0)), "relu", "rigorous")
    for node in create_rigorous_pipeline(plan).nodes:
        assert pickle.loads(ForkingPickler.dumps(node)) == node
