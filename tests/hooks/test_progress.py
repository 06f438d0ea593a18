"""The console progress of a multi-model run: model k/n, what happens to each model, epochs, time left."""

from __future__ import annotations

import logging
import threading

import pytest

from activation_compare import training_events
from activation_compare.hooks import ProgressHooks, ProjectHooks
from activation_compare.identity import ComparePlan, ModelKey, Step
from activation_compare.pipelines.modelling import create_pipeline


class _Project:
    """What the progress hook reads from the project hook: the run's plan."""

    def __init__(self, plan: ComparePlan) -> None:
        self.plan = plan


PLAN = ComparePlan((ModelKey("relu", 0), ModelKey("relu", 1), ModelKey("rrelu", 0)), "relu")


@pytest.fixture
def hooks_and_nodes():
    pipeline = create_pipeline(PLAN)
    hooks = ProgressHooks(_Project(PLAN))
    hooks.before_pipeline_run(run_params={}, pipeline=pipeline)
    nodes = {node.name: node for node in pipeline.nodes}
    return hooks, [nodes[key.node(Step.TRAIN)] for key in PLAN.models]


def _start(key: ModelKey, initial: int, mode: str) -> training_events.TrainingStart:
    return training_events.TrainingStart(key=key, epochs=3, initial_epoch=initial, mode=mode, fingerprint="f")


def _train(hooks, node, start: training_events.TrainingStart, epochs: range) -> None:
    hooks.before_node_run(node=node, inputs={})
    training_events.publish(start)
    for epoch in epochs:
        training_events.publish(
            training_events.EpochEnd(start.key, epoch, start.epochs, metrics={"val_accuracy": 0.5})
        )
    hooks.after_node_run(node=node)


def test_each_model_says_whether_it_trains_resumes_or_is_reused(hooks_and_nodes, caplog):
    hooks, (first, second, third) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    relu0, relu1, rrelu0 = PLAN.models

    _train(hooks, first, _start(relu0, 0, "fresh"), range(1, 4))
    _train(hooks, second, _start(relu1, 2, "resume"), range(3, 4))
    _train(hooks, third, _start(rrelu0, 3, "reuse"), range(0))

    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "model 1/3 (relu, seed 0): training 3 epochs"
    assert lines[1].startswith("model 1/3 (relu, seed 0): epoch 1/3, val_accuracy 0.5000; left: ")
    assert lines[3].startswith("model 1/3 (relu, seed 0): epoch 3/3")
    assert "left: 0m00s for this model" in lines[3]
    assert lines[4] == "model 2/3 (relu, seed 1): resuming after epoch 2 of 3"
    assert lines[5].startswith("model 2/3 (relu, seed 1): epoch 3/3")
    assert lines[6] == "model 3/3 (rrelu, seed 0): already trained (3 epochs); reused"
    assert len(lines) == 7


def test_each_model_is_labelled_with_its_own_position_whichever_starts_first(hooks_and_nodes, caplog):
    """ParallelRunner's worker processes each start with a copy of the hooks: a model's label
    is its place in the run, not how many models this copy has seen start (each said "model 1/n")."""
    hooks, (_, second, third) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    _train(hooks, third, _start(PLAN.models[2], 0, "fresh"), range(0))
    _train(hooks, second, _start(PLAN.models[1], 0, "fresh"), range(0))
    assert [r.getMessage() for r in caplog.records] == [
        "model 3/3 (rrelu, seed 0): training 3 epochs",
        "model 2/3 (relu, seed 1): training 3 epochs",
    ]


def test_only_training_nodes_of_the_plan_count(hooks_and_nodes, caplog):
    hooks, (first, *_) = hooks_and_nodes
    assert hooks._clock.models_total == 3
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    evaluate = next(n for n in create_pipeline(PLAN).nodes if n.name == PLAN.models[0].node(Step.EVALUATE))
    hooks.before_node_run(node=evaluate, inputs={})
    training_events.publish(_start(PLAN.models[0], 0, "fresh"))
    hooks.after_node_run(node=evaluate)
    assert caplog.records == []


def test_listeners_are_removed_after_the_node(hooks_and_nodes, caplog):
    hooks, (first, *_) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    hooks.before_node_run(node=first, inputs={})
    hooks.on_node_error(node=first)
    training_events.publish(_start(PLAN.models[0], 0, "fresh"))
    training_events.publish(training_events.EpochEnd(PLAN.models[0], 1, 3))
    assert caplog.records == []


def test_without_the_runs_plan_each_model_is_named_alone(caplog):
    """A Dask worker builds the hooks afresh: no run start, no plan; training nodes still log."""
    hooks = ProgressHooks(_Project(None))
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    node = next(n for n in create_pipeline(PLAN).nodes if n.name == PLAN.models[1].node(Step.TRAIN))
    _train(hooks, node, _start(PLAN.models[1], 1, "resume"), range(2, 4))

    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "relu, seed 1: resuming after epoch 1 of 3"
    assert lines[1].startswith("relu, seed 1: epoch 2/3, val_accuracy 0.5000; left: ")
    assert lines[2].startswith("relu, seed 1: epoch 3/3") and lines[2].endswith("left: 0m00s for this model")
    assert len(lines) == 3


def test_models_training_at_once_in_threads_keep_their_own_lines(hooks_and_nodes, caplog):
    """ThreadRunner: each node run listens in its own thread, and stops listening there."""
    hooks, (first, second, _) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    both_started = threading.Barrier(2)
    events_sent = threading.Barrier(2)

    def train(node, key, epochs_after_end):
        hooks.before_node_run(node=node, inputs={})
        both_started.wait()  # both threads subscribed before either publishes
        training_events.publish(_start(key, 0, "fresh"))
        training_events.publish(training_events.EpochEnd(key, 1, 3))
        events_sent.wait()
        hooks.after_node_run(node=node)
        for epoch in epochs_after_end:  # after the node: nobody listens in this thread
            training_events.publish(training_events.EpochEnd(key, epoch, 3))

    threads = [threading.Thread(target=train, args=(first, PLAN.models[0], [2])),
               threading.Thread(target=train, args=(second, PLAN.models[1], [2, 3]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = sorted(r.getMessage() for r in caplog.records)
    assert len(lines) == 4, lines
    for key in PLAN.models[:2]:
        mine = [line for line in lines if f"({key.label})" in line]
        assert len(mine) == 2 and mine[0].endswith(": epoch 1/3; left: " + mine[0].split("left: ")[1])
        assert any(line.endswith("training 3 epochs") for line in mine)
    assert {line.split(" (")[0] for line in lines} == {"model 1/3", "model 2/3"}


def test_the_project_hook_gives_the_plan_of_its_parameters():
    from conftest import PROJECT_ROOT
    from kedro.config import OmegaConfigLoader

    from activation_compare.params import validate_parameters

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local",
                               runtime_params={"training": {"seeds": [0, 1]}})
    project = ProjectHooks(validate_parameters(loader["parameters"]))
    assert [key.name for key in project.plan.models] == ["relu_seed0", "relu_seed1", "rrelu_seed0", "rrelu_seed1"]
    assert ProjectHooks().plan is None
