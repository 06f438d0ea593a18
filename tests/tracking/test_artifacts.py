"""A run whose artifacts could not be stored does not look complete: FAILED, tagged, named in the log."""

from __future__ import annotations

import logging
import re

from kedro.runner import SequentialRunner
from mlflow import MlflowClient

from activation_compare.identity import ComparePlan
from activation_compare.hooks import MlflowTrackingHook
from activation_compare.tracking.artifacts import summary_metrics
from report_factory import make_report


def test_an_unwritable_artifact_store_fails_the_model_runs(tmp_path, tracking, monkeypatch, caplog, scratch_store):
    """The artifact folder cannot be created (a file is in the way: works for root too)."""
    uri = scratch_store
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the artifact folder should be")
    client = MlflowClient(uri)
    client.create_experiment("blocked", artifact_location=(blocker / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "blocked")

    plan = ComparePlan.of(["relu", "rrelu"], [0])
    with caplog.at_level(logging.ERROR, logger="activation_compare.tracking"):
        tracking.run_fake(tracking.fake_pipeline(plan), MlflowTrackingHook(), SequentialRunner(), tmp_path,
                          "blocked-1", tracking.fake_parameters())

    runs = {r.info.run_name: r for r in tracking.runs_by_session(client, "blocked-1", experiment="blocked")}
    parent_name = "relu vs rrelu, seed 0, 3 epochs, synthetic"
    assert set(runs) == {parent_name, "relu-seed0", "rrelu-seed0"}
    for name in ("relu-seed0", "rrelu-seed0"):
        run = runs[name]
        assert run.info.status == "FAILED"
        assert run.data.tags["activation_compare.artifacts"] == "failed"
        error = run.data.tags["kedro.error"]
        assert error.startswith("ArtifactError: could not store history.csv in the artifact store ")
        assert run.info.artifact_uri in error
        assert re.fullmatch(r"(\w+)\.train_model_\1_seed0_node", run.data.tags["kedro.failed_node"])
        # The metrics still reached the tracking store.
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1, 2, 3]
    parent = runs[parent_name]
    assert parent.data.tags["activation_compare.artifacts"] == "failed"
    assert parent.info.status == "FAILED"  # its own comparison.md could not be stored either
    assert "comparison.md" in parent.data.tags["kedro.error"]
    logged = [r.getMessage() for r in caplog.records]
    assert any("could not store history.csv in the artifact store" in m and str(blocker) in m for m in logged)


def test_summary_metrics_keep_finite_numbers_only():
    summary = {
        "baseline": "relu",
        "per_activation": {"relu": {"test_accuracy_mean": 0.6, "test_accuracy_std": float("nan")}},
        "comparisons": {"rrelu": {"mean": -0.01, "ci_low": -0.02, "ci_high": 0.0, "p_value": None}},
    }
    assert summary_metrics(summary) == {
        "test_accuracy_relu": 0.6,
        "test_accuracy_diff_rrelu_vs_relu": -0.01,
        "test_accuracy_diff_rrelu_vs_relu_ci_low": -0.02,
        "test_accuracy_diff_rrelu_vs_relu_ci_high": 0.0,
    }


def test_per_class_metric_keys_stay_unique_for_any_class_names(scratch_store, tmp_path):
    """Class names that differ only in non-ASCII letters (or in what MLflow keys allow) get their own keys."""
    from activation_compare.tracking import TrackingSettings, artifacts, runs
    from activation_compare.tracking.store import open_store

    names = ["dåg", "dög", "a b", "a_b"]
    report = make_report(test_accuracy=0.5, class_names=tuple(names),
                         per_class={name: i / 10 for i, name in enumerate(names)})
    assert {k: v for k, v in artifacts.report_metrics(report).items() if k.startswith("test_accuracy")} == {
        "test_accuracy": 0.5, "test_accuracy_class_0": 0.0, "test_accuracy_class_1": 0.1,
        "test_accuracy_class_2": 0.2, "test_accuracy_class_3": 0.3,
    }
    store = open_store(TrackingSettings(tracking_uri=scratch_store, experiment_name="per-class",
                                        artifact_location=(tmp_path / "a").as_uri()))
    run = runs.create_run(store, "dogs", {}, {})
    artifacts.log_report(store, run, report)
    data = MlflowClient(scratch_store).get_run(run.run_id).data
    assert {k: v for k, v in data.metrics.items() if k.startswith("test_accuracy_")} == {
        "test_accuracy_class_0": 0.0, "test_accuracy_class_1": 0.1,
        "test_accuracy_class_2": 0.2, "test_accuracy_class_3": 0.3,
    }
    assert {k: v for k, v in data.params.items() if k.startswith("class_")} == {
        "class_0": "dåg", "class_1": "dög", "class_2": "a b", "class_3": "a_b"}
    # More than ten classes: the index is zero-padded, so keys sort in class order.
    twelve = [f"c{i}" for i in range(12)]
    metrics = artifacts.report_metrics(make_report(class_names=tuple(twelve), per_class=dict.fromkeys(twelve, 1.0)))
    keys = [k for k in metrics if k.startswith("test_accuracy_class")]
    assert keys == sorted(keys) and keys[0] == "test_accuracy_class_00" and keys[-1] == "test_accuracy_class_11"
