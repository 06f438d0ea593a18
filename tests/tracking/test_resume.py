"""Continuing a model's interrupted run in a later Kedro run: found by model name and fingerprint."""

from __future__ import annotations

import pytest
from kedro.runner import SequentialRunner
from mlflow import MlflowClient

from activation_compare import training_events
from activation_compare.identity import ComparePlan
from activation_compare.hooks import MlflowTrackingHook


@pytest.fixture
def store(monkeypatch, scratch_store, request):
    """The shared scratch store, an experiment of this test's own (earlier runs are searched)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scratch_store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", f"resume-{request.node.name}")
    return MlflowClient(scratch_store)


@pytest.fixture
def runs_of(tracking, request):
    def runs(client, *sessions):
        return tracking.runs_by_session(client, *sessions, experiment=f"resume-{request.node.name}")

    return runs


def _rows(epochs: int) -> list[dict]:
    return [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.1 * e, "time_ms": 1000 * e} for e in range(1, epochs + 1)]


def _interrupt_after(epoch: int):
    def interrupt(event):
        if event.epoch == epoch:
            raise KeyboardInterrupt

    return interrupt


def test_interrupted_run_is_continued_reparented_and_back_filled(tmp_path, tracking, store, runs_of):
    """Killed after logging epoch 1 of 4; the checkpoint has 2 epochs (epoch 2 was never logged)."""
    plan = ComparePlan.of(["relu", "rrelu"], [0])
    parameters = tracking.fake_parameters(epochs=4)
    hook = MlflowTrackingHook()
    interrupt = training_events.subscribe(_interrupt_after(1))
    try:
        with pytest.raises(KeyboardInterrupt):
            tracking.run_fake(tracking.fake_pipeline(plan, epochs=4), hook, SequentialRunner(), tmp_path,
                              "first", parameters)
    finally:
        training_events.unsubscribe(interrupt)
    (killed,) = [r for r in runs_of(store, "first") if r.info.run_name == "relu-seed0"]
    first_parent = next(r for r in runs_of(store, "first") if "mlflow.parentRunId" not in r.data.tags)

    hook.abandon("KILLED")  # as at the exit of the interrupted process
    # The rerun (a new hook: a new process) resumes relu from its checkpoint's 2 epochs.
    resumed = tracking.fake_pipeline(plan, epochs=4, mode="resume", history=_rows(2))
    tracking.run_fake(resumed, MlflowTrackingHook(), SequentialRunner(), tmp_path, "second", parameters)

    runs = runs_of(store, "second")
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    relu = next(r for r in runs if r.info.run_name == "relu-seed0")
    assert relu.info.run_id == killed.info.run_id  # the same run, continued
    assert relu.info.status == "FINISHED"
    tags = relu.data.tags
    assert tags["mlflow.parentRunId"] == parent.info.run_id
    assert tags["kedro.previous_parent_run_id"] == first_parent.info.run_id
    assert tags["kedro.previous_run_ids"] == "first"
    assert tags["kedro.training"] == "resumed"
    for metric in ("loss", "accuracy"):
        assert sorted(m.step for m in store.get_metric_history(relu.info.run_id, metric)) == [1, 2, 3, 4]
    old_parent = store.get_run(first_parent.info.run_id)
    assert old_parent.info.status == "KILLED"
    assert old_parent.data.tags["kedro.resumed_in_run_id"] == parent.info.run_id


def test_a_finished_run_is_not_continued_a_reused_model_gets_a_new_run(tmp_path, tracking, store, runs_of):
    plan = ComparePlan.of(["relu"], [0])
    parameters = tracking.fake_parameters(["relu"], epochs=2)
    tracking.run_fake(tracking.fake_pipeline(plan, epochs=2), MlflowTrackingHook(), SequentialRunner(), tmp_path,
                      "trained", parameters)
    (trained,) = runs_of(store, "trained")
    tracking.run_fake(tracking.fake_pipeline(plan, epochs=2, mode="reuse", history=_rows(2)), MlflowTrackingHook(),
                      SequentialRunner(), tmp_path, "reused", parameters)
    (reused,) = runs_of(store, "reused")
    assert reused.info.run_id != trained.info.run_id and reused.info.status == "FINISHED"
    assert reused.data.tags["kedro.training"] == "reused"
    assert reused.data.tags["kedro.reused_from_run_id"] == trained.info.run_id
    assert sorted(m.step for m in store.get_metric_history(reused.info.run_id, "loss")) == [1, 2]


def test_another_fingerprint_is_another_training(tmp_path, tracking, store, runs_of):
    """A killed run trained on other settings is never continued by this training."""
    plan = ComparePlan.of(["relu"], [0])
    parameters = tracking.fake_parameters(["relu"], epochs=3)
    hook = MlflowTrackingHook()
    interrupt = training_events.subscribe(_interrupt_after(1))
    try:
        with pytest.raises(KeyboardInterrupt):
            tracking.run_fake(tracking.fake_pipeline(plan), hook, SequentialRunner(), tmp_path, "a", parameters)
    finally:
        training_events.unsubscribe(interrupt)
    hook.abandon("KILLED")
    tracking.run_fake(tracking.fake_pipeline(plan, mode="resume", history=_rows(1), fingerprint="fp-2"),
                      MlflowTrackingHook(), SequentialRunner(), tmp_path, "b", parameters)
    (killed,) = runs_of(store, "a")
    (run,) = runs_of(store, "b")
    assert run.info.run_id != killed.info.run_id
    assert killed.info.status == "KILLED" and run.info.status == "FINISHED"
    assert run.data.tags["activation_compare.fingerprint"] == "fp-2"
    assert "kedro.resumed_from_run_id" not in run.data.tags


def test_a_failed_run_continued_to_the_end_loses_its_error_tags(tmp_path, tracking, store, runs_of):
    """The attempt that failed is over: a continued run that ends FINISHED carries no kedro.error."""
    plan = ComparePlan.of(["relu", "rrelu"], [0])
    parameters = tracking.fake_parameters(epochs=3)
    with pytest.raises(RuntimeError, match="diverged"):
        tracking.run_fake(tracking.fake_pipeline(plan, fail="rrelu"), MlflowTrackingHook(), SequentialRunner(),
                          tmp_path, "failed", parameters)
    (failed,) = [r for r in runs_of(store, "failed") if r.info.run_name == "rrelu-seed0"]
    assert failed.info.status == "FAILED" and "RuntimeError: diverged" in failed.data.tags["kedro.error"]
    assert failed.data.tags["kedro.failed_node"]

    tracking.run_fake(tracking.fake_pipeline(plan, mode="resume", history=_rows(3)), MlflowTrackingHook(),
                      SequentialRunner(), tmp_path, "again", parameters)
    (continued,) = [r for r in runs_of(store, "again") if r.info.run_name == "rrelu-seed0"]
    assert continued.info.run_id == failed.info.run_id and continued.info.status == "FINISHED"
    assert "kedro.error" not in continued.data.tags and "kedro.failed_node" not in continued.data.tags
