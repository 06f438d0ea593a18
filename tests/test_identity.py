"""The naming contract: one key, every name derived from it, looked up without parsing."""

import pytest

from activation_compare.identity import ComparePlan, ModelKey, Role, Step


def test_names_of_a_final_model():
    key = ModelKey("relu", 0)
    assert key.name == "relu_seed0"
    assert key.dataset(Role.MODEL) == "relu.model_seed0"
    assert key.local_dataset(Role.HISTORY) == "history_seed0"
    assert key.node(Step.TRAIN) == "relu.train_model_relu_seed0_node"
    assert key.run_name == "relu-seed0"
    assert key.run_tags() == {"activation_compare.model": "relu_seed0", "activation": "relu", "seed": "0"}
    assert key.node_tags() == ["activation.relu", "seed.0"]


def test_a_trial_is_a_different_model_from_the_final_one():
    trial = ModelKey("leaky_relu", 3, trial=2)
    assert trial.name == "leaky_relu_trial2_seed3"
    assert trial.dataset(Role.REPORT) == "leaky_relu.report_trial2_seed3"
    assert trial.run_tags()["trial"] == "2"
    assert trial != ModelKey("leaky_relu", 3)


def test_plan_looks_up_nodes_and_datasets_by_their_full_names():
    plan = ComparePlan.of(["relu", "rrelu"], [0, 1], baseline="relu")
    assert [k.name for k in plan.models] == ["relu_seed0", "relu_seed1", "rrelu_seed0", "rrelu_seed1"]
    assert plan.node("rrelu.evaluate_model_rrelu_seed1_node") == (ModelKey("rrelu", 1), Step.EVALUATE)
    assert plan.dataset("relu.history_seed0") == (ModelKey("relu", 0), Role.HISTORY)
    assert plan.node("compare_activations_node") is None
    assert plan.dataset("train_set") is None
    assert plan.datasets(Role.REPORT)[-1] == "rrelu.report_seed1"
    assert plan.activations == ["relu", "rrelu"]


def test_a_plan_refuses_the_same_model_twice():
    with pytest.raises(ValueError, match="twice"):
        ComparePlan((ModelKey("relu", 0), ModelKey("relu", 0)))
