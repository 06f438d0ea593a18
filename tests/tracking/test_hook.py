"""The tracking hook on a fake pipeline with the modelling pipeline's names (it trains nothing).

Checks the run lifecycle in seconds, under Kedro's SequentialRunner and
ThreadRunner (node hooks in worker threads); ``test_parallel.py`` runs the
real pipeline under ParallelRunner (node hooks in worker processes).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from kedro.runner import SequentialRunner, ThreadRunner
from mlflow import MlflowClient

from activation_compare import training_events
from activation_compare.identity import ComparePlan
from activation_compare.hooks import MlflowTrackingHook


@pytest.fixture
def store(monkeypatch, scratch_store):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scratch_store)
    return MlflowClient(scratch_store)


def test_thread_runner_logs_each_model_to_its_own_child(tmp_path, tracking, store):
    """Epoch events from worker threads land in the right child, with steps 1..epochs."""
    plan = ComparePlan.of(["relu", "rrelu"], [0, 1])
    tracking.run_fake(tracking.fake_pipeline(plan), MlflowTrackingHook(), ThreadRunner(max_workers=4),
                      tmp_path, "session-1", tracking.fake_parameters(seeds=[0, 1]))

    runs = tracking.runs_by_session(store, "session-1")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    # Named for what it compares; the pipeline is a tag.
    assert [p.info.run_name for p in parents] == ["relu vs rrelu, seeds 0,1, 3 epochs, synthetic"]
    assert parents[0].data.tags["kedro.pipeline"] == "fake"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "relu-seed1", "rrelu-seed0", "rrelu-seed1"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["kedro.run_id"] == "session-1"
    for child in children:
        key = next(k for k in plan.models if k.run_name == child.info.run_name)
        assert {k: v for k, v in child.data.tags.items() if k in key.run_tags()} == key.run_tags()
        assert child.data.tags["kedro.training"] == "trained"
        assert child.data.tags["activation_compare.fingerprint"] == "fp-1"
        for metric in ("loss", "accuracy"):
            assert sorted(m.step for m in store.get_metric_history(child.info.run_id, metric)) == [1, 2, 3]
        assert child.data.metrics["test_accuracy_class_0"] == 0.25  # by index: class names can collide as keys
        assert child.data.params["class_0"] == "a b"
        assert child.data.params["activation"] == key.activation
        files = {f.path for f in store.list_artifacts(child.info.run_id)}
        assert {"history.csv", "report.json", "figures"} <= files
    assert "comparison.md" in {f.path for f in store.list_artifacts(parents[0].info.run_id)}


def test_one_model_is_one_run(tmp_path, tracking, store):
    plan = ComparePlan.of(["rrelu"], [0])
    tracking.run_fake(tracking.fake_pipeline(plan), MlflowTrackingHook(), SequentialRunner(),
                      tmp_path, "single", tracking.fake_parameters(["rrelu"]))
    (run,) = tracking.runs_by_session(store, "single")
    assert run.info.run_name == "rrelu-seed0" and run.info.status == "FINISHED"
    assert run.data.tags["activation_compare.model"] == "rrelu_seed0"
    assert sorted(m.step for m in store.get_metric_history(run.info.run_id, "loss")) == [1, 2, 3]
    assert run.data.metrics["test_accuracy"] == 0.5


def test_failure_under_thread_runner_ends_every_run_failed(tmp_path, tracking, store):
    plan = ComparePlan.of(["relu", "rrelu"], [0])
    with pytest.raises(RuntimeError, match="diverged"):
        tracking.run_fake(tracking.fake_pipeline(plan, fail="rrelu"), MlflowTrackingHook(),
                          ThreadRunner(max_workers=2), tmp_path, "session-2", tracking.fake_parameters())
    runs = {r.info.run_name: r for r in tracking.runs_by_session(store, "session-2")}
    parent = runs["relu vs rrelu, seed 0, 3 epochs, synthetic"]
    assert parent.info.status == "FAILED"
    assert parent.data.tags["kedro.error"] == "RuntimeError: diverged"
    assert parent.data.tags["kedro.failed_node"] == "rrelu.train_model_rrelu_seed0_node"
    assert runs["rrelu-seed0"].info.status == "FAILED"
    assert runs["rrelu-seed0"].data.tags["kedro.error"] == "RuntimeError: diverged"
    # relu's nodes may all have finished in the other worker before the failure (then
    # FINISHED) or not (then FAILED with the pipeline); never left RUNNING.
    assert runs["relu-seed0"].info.status in {"FINISHED", "FAILED"}


def test_interrupted_run_is_killed_by_the_next_run_in_the_process(tmp_path, tracking, store):
    """A KeyboardInterrupt without SIGINT (not routed to on_pipeline_error by Kedro)."""
    hook = MlflowTrackingHook()
    plan = ComparePlan.of(["relu"], [0])

    def interrupt(event):
        raise KeyboardInterrupt

    training_events.subscribe(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            tracking.run_fake(tracking.fake_pipeline(plan), hook, SequentialRunner(), tmp_path, "interrupted",
                              tracking.fake_parameters(["relu"]))
    finally:
        training_events.unsubscribe(interrupt)
    assert {r.info.status for r in tracking.runs_by_session(store, "interrupted")} == {"RUNNING"}
    tracking.run_fake(tracking.fake_pipeline(plan), hook, SequentialRunner(), tmp_path, "next",
                      tracking.fake_parameters(["relu"]))
    runs = tracking.runs_by_session(store, "interrupted", "next")
    statuses = {(r.data.tags["kedro.run_id"], r.info.status) for r in runs}
    assert statuses == {("interrupted", "KILLED"), ("next", "FINISHED")}


def test_disabled_tracking_creates_nothing(tmp_path, tracking, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    hook = MlflowTrackingHook()
    hook.after_context_created(SimpleNamespace(config_loader={"mlflow": {"enabled": False}}, project_path=tmp_path))
    tracking.run_fake(tracking.fake_pipeline(ComparePlan.of(["relu"], [0])), hook, SequentialRunner(), tmp_path,
                      "off", tracking.fake_parameters(["relu"]))
    assert not (tmp_path / "mlflow.db").exists()


def test_a_pipeline_without_models_is_not_tracked(tmp_path, tracking, monkeypatch):
    from kedro.pipeline import Node, Pipeline

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    pipeline = Pipeline([Node(lambda x: x, "data", "copy", name="select_splits_node")])
    tracking.run_fake(pipeline, MlflowTrackingHook(), SequentialRunner(), tmp_path, "data-only",
                      tracking.fake_parameters())
    assert not (tmp_path / "mlflow.db").exists()
