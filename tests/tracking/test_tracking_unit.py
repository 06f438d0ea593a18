"""Fast tests of the tracking hook: configuration, and the run lifecycle on a fake pipeline.

The fake pipeline has the modelling pipeline's shape (namespaces, seeds, the
``training`` tag) but trains nothing, so the lifecycle is checked in seconds,
including under Kedro's ThreadRunner (node hooks in worker threads).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner, ThreadRunner
from mlflow import MlflowClient

from activation_compare import training_events
from activation_compare.tracking import (
    MlflowTrackingHook,
    TrackingSettings,
    _git_commit,
    _identity,
    resolve_tracking_uri,
)

# --- configuration ------------------------------------------------------------------


def test_default_store_is_resolved_against_the_project_not_the_cwd(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = TrackingSettings.from_config({}, project, environ={})
    assert settings.enabled
    assert settings.tracking_uri == f"sqlite:///{project.resolve().as_posix()}/mlflow.db"
    assert settings.artifact_location == (project / "mlartifacts").resolve().as_uri()
    assert settings.experiment_name == "activation-compare"


def test_conf_values_and_environment_overrides(tmp_path):
    conf = {
        "tracking_uri": "sqlite:///runs/store.db?timeout=30",
        "experiment_name": "mine",
        "artifact_location": "art",
        "enabled": True,
        "log_models": False,
    }
    settings = TrackingSettings.from_config(conf, tmp_path, environ={})
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve().as_posix()}/runs/store.db?timeout=30"
    assert settings.artifact_location == (tmp_path / "art").resolve().as_uri()
    assert settings.experiment_name == "mine" and settings.log_models is False

    env = {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000", "MLFLOW_EXPERIMENT_NAME": "from-env"}
    remote = TrackingSettings.from_config(conf, tmp_path, environ=env)
    assert remote.tracking_uri == "http://127.0.0.1:5000"
    assert remote.experiment_name == "from-env"
    # A server owns its artifact store: no client-side path is imposed on it.
    assert remote.artifact_location is None
    s3 = TrackingSettings.from_config({**conf, "artifact_location": "s3://bucket/x"}, tmp_path, environ=env)
    assert s3.artifact_location == "s3://bucket/x"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("postgresql://u@db/mlflow", "postgresql://u@db/mlflow"),
        ("https://mlflow.example.org", "https://mlflow.example.org"),
        ("mlruns", "{project}/mlruns"),
    ],
)
def test_resolve_tracking_uri(tmp_path, uri, expected):
    resolved = resolve_tracking_uri(uri, tmp_path)
    if expected.startswith("{project}"):
        assert resolved == (tmp_path / expected.removeprefix("{project}/")).resolve().as_uri()
    else:
        assert resolved == expected


def test_misspelt_config_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="tracking_url"):
        TrackingSettings.from_config({"tracking_url": "x"}, tmp_path, environ={})


def test_git_commit_only_inside_a_repository(tmp_path):
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the project is not a git checkout here")
    assert _git_commit(root) == head.stdout.strip()
    assert _git_commit(tmp_path) is None


def test_identity_from_tags_or_namespace_and_name():
    def node(name, tags=(), namespace=None):
        return SimpleNamespace(name=name, tags=set(tags), namespace=namespace)

    assert _identity(node("rrelu.train_model_seed3_node", ["activation:rrelu", "seed:3"], "rrelu")) == ("rrelu", 3)
    assert _identity(node("x", ["activation.elu", "seed.1"])) == ("elu", 1)
    assert _identity(node("relu.evaluate_model_seed0_node", [], "relu")) == ("relu", 0)
    assert _identity(node("select_splits_node")) is None
    assert _identity(node("compare_activations_node")) is None


# --- the lifecycle on a fake pipeline --------------------------------------------------


def _fake_train(x, *, epochs=3, fail=False):
    for epoch in range(epochs):
        training_events.publish(
            training_events.EpochEnd(epoch, epochs, {"loss": 1.0 / (epoch + 1), "accuracy": 0.1 * epoch})
        )
    if fail:
        raise RuntimeError("diverged")
    return x


def _fake_pipeline(activations, seeds, fail: str | None = None) -> Pipeline:
    nodes = []
    for activation in activations:
        template = []
        for seed in seeds:
            def train(x, _fail=(activation == fail)):
                return _fake_train(x, fail=_fail)

            template += [
                Node(lambda x: x, "data", f"untrained_seed{seed}", name=f"build_model_seed{seed}_node"),
                Node(train, f"untrained_seed{seed}", f"trained_seed{seed}",
                     name=f"train_model_seed{seed}_node", tags=["training"]),
                Node(lambda m: {"test_accuracy": 0.5, "per_class_accuracy": {"a b": 0.25}},
                     f"trained_seed{seed}", f"report_seed{seed}", name=f"evaluate_model_seed{seed}_node"),
            ]
        nodes.append(Pipeline(template, namespace=activation, inputs={"data"}))
    return sum(nodes, start=Pipeline([]))


def _run(pipeline, hook, runner, project: Path, session_id: str):
    manager = _create_hook_manager()
    manager.register(hook)
    catalog = DataCatalog({"data": MemoryDataset(1)})
    run_params = {"run_id": session_id, "project_path": str(project), "env": "test",
                  "pipeline_names": ["fake"], "runtime_params": {}}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    try:
        runner.run(pipeline, catalog, manager, run_id=session_id)
    except Exception as error:
        manager.hook.on_pipeline_error(error=error, run_params=run_params, pipeline=pipeline, catalog=catalog)
        raise
    manager.hook.after_pipeline_run(run_params=run_params, run_result={}, pipeline=pipeline, catalog=catalog)


def _all_runs(client, *session_ids):
    experiment = client.get_experiment_by_name("activation-compare")
    return [
        run
        for session_id in session_ids
        for run in client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`kedro.run_id` = '{session_id}'"
        )
    ]


def test_thread_runner_logs_each_model_to_its_own_child(tmp_path, monkeypatch, scratch_store):
    """Epoch events from worker threads land in the right child, with steps 0..epochs-1."""
    uri = scratch_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    _run(_fake_pipeline(["relu", "rrelu"], [0, 1]), MlflowTrackingHook(), ThreadRunner(max_workers=4),
         tmp_path, "session-1")

    client = MlflowClient(uri)
    runs = _all_runs(client, "session-1")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_name for p in parents] == ["fake"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "relu-seed1", "rrelu-seed0", "rrelu-seed1"]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["kedro.run_id"] == "session-1"
    for child in children:
        for key in ("loss", "accuracy"):
            assert sorted(m.step for m in client.get_metric_history(child.info.run_id, key)) == [0, 1, 2]
        assert child.data.metrics["test_accuracy_a b"] == 0.25


def test_failure_under_thread_runner_ends_every_run_failed(tmp_path, monkeypatch, scratch_store):
    uri = scratch_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(RuntimeError, match="diverged"):
        _run(_fake_pipeline(["relu", "rrelu"], [0], fail="rrelu"), MlflowTrackingHook(),
             ThreadRunner(max_workers=2), tmp_path, "session-2")
    runs = {r.info.run_name: r for r in _all_runs(MlflowClient(uri), "session-2")}
    assert runs["fake"].info.status == "FAILED"
    assert runs["rrelu-seed0"].info.status == "FAILED"
    assert runs["rrelu-seed0"].data.tags["kedro.error"] == "RuntimeError: diverged"
    # relu's nodes may all have finished in the other worker before the failure (then
    # FINISHED) or not (then FAILED with the pipeline); never left RUNNING.
    assert runs["relu-seed0"].info.status in {"FINISHED", "FAILED"}


def test_interrupted_run_is_killed_by_the_next_run_in_the_process(tmp_path, monkeypatch, scratch_store):
    """A KeyboardInterrupt without SIGINT (not routed to on_pipeline_error by Kedro)."""
    uri = scratch_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    hook = MlflowTrackingHook()

    def interrupt(event):
        raise KeyboardInterrupt

    training_events.subscribe(interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            _run(_fake_pipeline(["relu"], [0]), hook, SequentialRunner(), tmp_path, "interrupted")
    finally:
        training_events.unsubscribe(interrupt)
    client = MlflowClient(uri)
    assert {r.info.status for r in _all_runs(client, "interrupted")} == {"RUNNING"}
    _run(_fake_pipeline(["relu"], [0]), hook, SequentialRunner(), tmp_path, "next")
    statuses = {(r.data.tags["kedro.run_id"], r.info.status) for r in _all_runs(client, "interrupted", "next")}
    assert statuses == {("interrupted", "KILLED"), ("next", "FINISHED")}


def test_disabled_tracking_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    hook = MlflowTrackingHook()
    hook.after_context_created(SimpleNamespace(config_loader={"mlflow": {"enabled": False}}, project_path=tmp_path))
    _run(_fake_pipeline(["relu"], [0]), hook, SequentialRunner(), tmp_path, "off")
    assert not (tmp_path / "mlflow.db").exists()
