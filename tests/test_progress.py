"""The console progress of a multi-model run: model k/n, what happens to each model, epochs, time left."""

from __future__ import annotations

import logging

import pytest

from activation_compare import training_events
from activation_compare.pipelines.modelling.pipeline import create_pipeline
from activation_compare.progress import ProgressHooks


@pytest.fixture
def hooks_and_nodes():
    pipeline = create_pipeline("relu", [0, 1]) + create_pipeline("rrelu", [0])
    hooks = ProgressHooks()
    hooks.before_pipeline_run(run_params={}, pipeline=pipeline)
    training = sorted((n for n in pipeline.nodes if "training" in n.tags), key=lambda n: n.name)
    return hooks, training


def _train(hooks, node, start: training_events.TrainingStart, epochs: range) -> None:
    hooks.before_node_run(node=node, inputs={})
    training_events.publish(start)
    for epoch in epochs:
        training_events.publish(
            training_events.EpochEnd(epoch=epoch, epochs=start.epochs, metrics={"val_accuracy": 0.5})
        )
    hooks.after_node_run(node=node)


def test_each_model_says_whether_it_trains_resumes_or_is_reused(hooks_and_nodes, caplog):
    hooks, (first, second, third) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")

    _train(hooks, first, training_events.TrainingStart(epochs=3, initial_epoch=0, mode="fresh"), range(3))
    _train(hooks, second, training_events.TrainingStart(epochs=3, initial_epoch=2, mode="resume"), range(2, 3))
    _train(hooks, third, training_events.TrainingStart(epochs=3, initial_epoch=3, mode="reuse"), range(0))

    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "model 1/3 (relu, seed 0): training 3 epochs"
    assert lines[1].startswith("model 1/3 (relu, seed 0): epoch 1/3, val_accuracy 0.5000; left: ")
    assert lines[3].startswith("model 1/3 (relu, seed 0): epoch 3/3")
    assert lines[4] == "model 2/3 (relu, seed 1): resuming after epoch 2 of 3"
    assert lines[5].startswith("model 2/3 (relu, seed 1): epoch 3/3")
    assert lines[6] == "model 3/3 (rrelu, seed 0): already trained (3 epochs); reused"
    assert len(lines) == 7


def test_listeners_are_removed_after_the_node(hooks_and_nodes, caplog):
    hooks, (first, *_) = hooks_and_nodes
    caplog.set_level(logging.INFO, logger="activation_compare.progress")
    hooks.before_node_run(node=first, inputs={})
    hooks.on_node_error(node=first)
    training_events.publish(training_events.TrainingStart(epochs=3, initial_epoch=0, mode="fresh"))
    training_events.publish(training_events.EpochEnd(epoch=0, epochs=3))
    assert caplog.records == []
