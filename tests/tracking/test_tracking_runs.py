"""MLflow tracking of real smoke ``compare`` runs: the run tree, live metrics, failures, reruns.

Smoke runs are the expensive part (TensorFlow), so one CLI run is shared by
the structure assertions and the checks of its Kedro outputs (module fixture; the
smoke compare through the CLI runs once in the suite), and the other runs happen in this
process (no second TensorFlow start-up): a rerun, a failing run, an
interrupted run, and a run against a real ``mlflow server``.
"""

from __future__ import annotations

import json
import re
import signal
import time

import keras
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

import activation_compare.layers  # noqa: F401 - registers RReLU for keras.saving
from activation_compare import training_events
from conftest import run_output

# Real smoke runs (TensorFlow training, the kedro CLI, an mlflow server).
pytestmark = pytest.mark.slow

ACTIVATIONS = ("relu", "rrelu")
# The smoke environment's outputs (conf/smoke/globals.yml); each file is a Kedro version.
SMOKE = "data/smoke"
EPOCHS = 2  # conf/smoke/parameters.yml


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, tracking, mlflow_server):
    """One smoke ``compare`` through the real ``kedro`` CLI, default tracking config.

    ``mlflow_server`` is only requested to start the server now: its start-up
    overlaps this run instead of adding to the suite's time.
    """
    project = tracking.copy_project(tmp_path_factory.mktemp("cli") / "project")
    started = time.monotonic()
    result = tracking.kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri)
    (run_id,) = {r.data.tags["kedro.run_id"] for r in tracking.runs_of(client)}
    return {
        "project": project,
        "uri": uri,
        "client": client,
        "run_id": run_id,
        "output": result.stdout + result.stderr,
        "seconds": time.monotonic() - started,
    }


def test_default_store_is_sqlite_and_artifacts_in_the_project(cli_run, tracking):
    """No config, no env var: <project>/mlflow.db and <project>/mlartifacts, no server."""
    project, client = cli_run["project"], cli_run["client"]
    assert (project / "mlflow.db").is_file()
    experiment = client.get_experiment_by_name(tracking.SMOKE_EXPERIMENT)
    assert experiment.artifact_location == (project / "mlartifacts").as_uri()
    for run in tracking.runs_of(client):
        assert run.info.artifact_uri.startswith((project / "mlartifacts").as_uri() + "/")
    assert any((project / "mlartifacts").rglob("MLmodel"))
    assert not (project / "mlruns").exists()


def test_compare_run_tree(cli_run, tracking):
    """One parent named for what it compares, one child per activation x seed, all FINISHED."""
    client = cli_run["client"]
    runs = tracking.runs_of(client)
    parent, children = tracking.split_tree(runs)
    assert parent.info.run_name == "relu vs rrelu, seed 0, 2 epochs, synthetic"
    assert parent.info.status == "FINISHED"
    tags = parent.data.tags
    assert tags["kedro.pipeline"] == "compare" and tags["kedro.env"] == "smoke"
    assert tags["kedro.run_id"]
    assert "mlflow.source.git.commit" not in tags  # the copy is not a git repository
    assert {c.data.tags["kedro.run_id"] for c in children} == {tags["kedro.run_id"]}
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    for child in children:
        tracking.assert_model_run(
            client, child, activation=child.data.tags["activation"], seed=0, epochs=EPOCHS
        )
    # The same metric keys in every child: MLflow's compare view overlays them.
    keys = [set(c.data.metrics) for c in children]
    assert keys[0] == keys[1]


def test_child_test_accuracy_matches_the_kedro_report(cli_run, tracking):
    project, run_id = cli_run["project"], cli_run["run_id"]
    table = pd.read_csv(tracking.saved_output(project, run_id, "08_reporting/comparison.csv"))
    _, children = tracking.split_tree(tracking.runs_of(cli_run["client"]))
    for child in children:
        row = table[table["activation"] == child.data.tags["activation"]].iloc[0]
        assert child.data.metrics["test_accuracy"] == pytest.approx(row["test_accuracy"])
        name = child.data.tags["activation_compare.model"]
        history = pd.read_csv(tracking.saved_output(project, run_id, f"07_model_output/{name}_history.csv"))
        logged = cli_run["client"].get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.value for m in sorted(logged, key=lambda m: m.step)] == pytest.approx(
            history["val_accuracy"].tolist()
        )


def test_parent_holds_the_comparison(cli_run, tracking):
    client = cli_run["client"]
    parent, children = tracking.split_tree(tracking.runs_of(client))
    files = tracking.artifact_files(client, parent.info.run_id)
    for path in ("comparison.csv", "comparison.md", "accuracy_curves.png", "comparison_summary.json"):
        assert files.get(path, 0) > 0, (path, files)
    summary = json.loads(
        tracking.saved_output(cli_run["project"], cli_run["run_id"], "08_reporting/comparison_summary.json").read_text()
    )
    accuracy = {c.data.tags["activation"]: c.data.metrics["test_accuracy"] for c in children}
    metrics = parent.data.metrics
    for activation in ACTIVATIONS:
        assert metrics[f"test_accuracy_{activation}"] == pytest.approx(accuracy[activation])
    assert metrics["test_accuracy_diff_rrelu_vs_relu"] == pytest.approx(
        accuracy["rrelu"] - accuracy["relu"]
    )
    assert metrics["test_accuracy_diff_rrelu_vs_relu"] == pytest.approx(summary["comparisons"]["rrelu"]["mean"])
    assert parent.data.params["compare.activations"] == json.dumps(list(ACTIVATIONS))


def test_logged_models_load_with_pyfunc_and_agree_with_kedro(cli_run, tracking):
    """The MLflow pyfunc model (pixels 0-255) predicts the classes the Kedro-saved .keras model predicts (x/255)."""
    import mlflow

    client = cli_run["client"]
    _, children = tracking.split_tree(tracking.runs_of(client))
    pixels = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    with tracking.global_tracking_uri(cli_run["uri"]):
        for child in children:
            pyfunc = mlflow.pyfunc.load_model(f"models:/{child.outputs.model_outputs[0].model_id}")
            assert pyfunc.metadata.signature is not None
            assert pyfunc.metadata.saved_input_example_info is not None
            assert "keras" in pyfunc.metadata.flavors
            name = child.data.tags["activation_compare.model"]
            saved = keras.saving.load_model(
                tracking.saved_output(cli_run["project"], cli_run["run_id"], f"06_models/{name}.keras")
            )
            expected = saved.predict(pixels.astype(np.float32) / 255, verbose=0).argmax(axis=1)
            answers = pyfunc.predict(pixels)
            classes = [child.data.params[f"class_{i}"] for i in range(10)]
            assert [a["class"] for a in answers] == [classes[i] for i in expected]


def test_tracking_is_quiet_on_the_console(cli_run):
    output = cli_run["output"]
    for noise in ("Creating initial MLflow database tables", "alembic", "Uploading artifacts",
                  "Failed to resolve installed pip version", "mlflow.utils"):
        assert noise not in output


def test_cli_compare_writes_the_report(cli_run):
    """The Kedro outputs of the shared CLI run (read at its own version: the rerun below adds one)."""
    project, version = cli_run["project"], cli_run["run_id"]
    reporting = project / SMOKE / "08_reporting"
    table = pd.read_csv(run_output(reporting / "comparison.csv", version))
    assert set(table["activation"]) == set(ACTIVATIONS)
    assert table["seed"].tolist() == [0, 0]
    assert (table["parameter_count"] == 42442).all()
    assert table["test_accuracy"].between(0, 1).all()
    assert run_output(reporting / "accuracy_curves.png", version).stat().st_size > 10_000
    markdown = run_output(reporting / "comparison.md", version).read_text()
    assert "| relu" in markdown and "| rrelu" in markdown
    summary = json.loads(run_output(reporting / "comparison_summary.json", version).read_text())
    assert "single seed" in summary["comparisons"]["rrelu"]["verdict"]
    # Nothing of the smoke run lands in the default environment's outputs.
    assert not [p for p in (project / "data").rglob("*") if p.is_file() and SMOKE not in str(p)]


def test_cli_compare_saves_models_that_reload(cli_run):
    project, version = cli_run["project"], cli_run["run_id"]
    for activation in ACTIVATIONS:
        outputs = project / SMOKE
        path = run_output(outputs / "06_models" / f"{activation}_seed0.keras", version)
        model = keras.saving.load_model(path, safe_mode=True)
        assert model.count_params() == 42442
        history = pd.read_csv(run_output(outputs / "07_model_output" / f"{activation}_seed0_history.csv", version))
        assert history["epoch"].tolist() == [1, 2]  # epochs are numbered from 1
        report = json.loads(run_output(outputs / "07_model_output" / f"{activation}_seed0_report.json", version).read_text())
        assert report["best_epoch"] in (1, 2)
        assert set(report["per_class_accuracy"]) == set(report["class_names"])
        assert np.asarray(report["confusion_matrix"]).sum() == 200


def test_rerun_makes_new_runs_and_keeps_earlier_artifacts(cli_run, tracking, monkeypatch):
    """A second run in the same project (single model: one run, no parent) adds, never overwrites.

    In-process, with pytest's cwd elsewhere: the store is still <project>/mlflow.db.
    """
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    project, client = cli_run["project"], cli_run["client"]
    before = tracking.runs_of(client)
    artifacts = project / "mlartifacts"
    digests = tracking.file_digests(artifacts)

    session_id = tracking.run_session(
        project, {"compare": {"activations": ["rrelu"]}, "training": {"epochs": 1}}
    )

    (run,) = tracking.runs_of(client, session_id)  # one model: one run, no parent/child
    assert run.info.run_name == "rrelu-seed0"
    assert "mlflow.parentRunId" not in run.data.tags
    tracking.assert_model_run(client, run, activation="rrelu", seed=0, epochs=1)
    files = tracking.artifact_files(client, run.info.run_id)
    assert {"comparison.csv", "comparison.md", "accuracy_curves.png", "comparison_summary.json"} <= set(files)
    assert run.data.metrics["test_accuracy_rrelu"] == pytest.approx(run.data.metrics["test_accuracy"])

    after = tracking.runs_of(client)
    assert len(after) == len(before) + 1
    assert run.info.run_id not in {r.info.run_id for r in before}
    assert run.info.artifact_uri not in {r.info.artifact_uri for r in before}
    old_models = {r.outputs.model_outputs[0].model_id for r in before if r.outputs and r.outputs.model_outputs}
    assert run.outputs.model_outputs[0].model_id not in old_models
    # Every earlier artifact is still there, byte for byte; the earlier runs are untouched.
    assert {k: v for k, v in tracking.file_digests(artifacts).items() if k in digests} == digests
    assert {r.info.run_id: r.info.status for r in tracking.runs_of(client) if r.info.run_id != run.info.run_id} == {
        r.info.run_id: "FINISHED" for r in before
    }


def test_failing_node_leaves_failed_runs_and_none_running(tmp_path, tracking, monkeypatch, scratch_store):
    """Adam at 1e12 makes the loss non-finite in the first epoch: the train node raises."""
    from activation_compare.errors import UserError

    uri = scratch_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    project = tracking.copy_project(tmp_path / "project")
    with pytest.raises(UserError, match="loss") as raised:
        tracking.run_session(project, {"training": {"optimizer": {"learning_rate": 1e12}}})

    client = MlflowClient(uri)
    runs = tracking.runs_of(client, raised.value.session_id)
    parent, children = tracking.split_tree(runs)
    assert {r.info.status for r in runs} == {"FAILED"}
    error = f"{type(raised.value).__name__}: "
    assert parent.data.tags["kedro.error"].startswith(error)
    assert re.fullmatch(r"(\w+)\.train_model_\1_seed0_node", parent.data.tags["kedro.failed_node"])
    failed = [c for c in children if "kedro.error" in c.data.tags and c.data.tags["kedro.error"].startswith(error)]
    assert failed and re.fullmatch(r"(\w+)\.train_model_\1_seed0_node", failed[0].data.tags["kedro.failed_node"])
    assert failed[0].data.params["training.learning_rate"] == "1000000000000.0"  # --params reach the runs
    assert not [r for r in tracking.runs_of(client, raised.value.session_id) if r.info.status == "RUNNING"]


def test_a_blocked_artifact_store_fails_the_model_runs_of_a_real_run(tmp_path, tracking, monkeypatch, scratch_store):
    """The model (Keras flavour), history, report and figures cannot be stored: FAILED, tagged; data/ intact."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", scratch_store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "blocked-artifacts")
    blocker = tmp_path / "artifacts-blocked"
    blocker.write_text("a file where the artifact folder should be")
    client = MlflowClient(scratch_store)
    client.create_experiment("blocked-artifacts", artifact_location=(blocker / "store").as_uri())
    project = tracking.copy_project(tmp_path / "project")

    session_id = tracking.run_session(project, {"training": {"epochs": 1}})

    runs = tracking.runs_of(client, session_id, experiment="blocked-artifacts")
    parent, children = tracking.split_tree(runs)
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    for child in children:
        assert child.info.status == "FAILED"
        assert child.data.tags["activation_compare.artifacts"] == "failed"
        assert "could not store history.csv in the artifact store" in child.data.tags["kedro.error"]
        assert str(blocker) in child.data.tags["kedro.error"]
        assert 0 <= child.data.metrics["test_accuracy"] <= 1  # the metrics are recorded
    assert parent.data.tags["activation_compare.artifacts"] == "failed"
    # The pipeline's own outputs are unaffected.
    assert tracking.saved_output(project, session_id, "08_reporting/comparison.csv").stat().st_size > 0


def test_epoch_metrics_are_live_and_ctrl_c_ends_the_runs_killed(
    tmp_path, tracking, monkeypatch, scratch_store, terminal_sigint
):
    """Epoch k's metrics are in the store when epoch k+1 ends; SIGINT then ends every run KILLED.

    A listener subscribed before the session runs is called before the
    tracking hook's own (subscriptions are per thread, in order), so at the
    end of epoch 2 it sees what the hook logged at the end of epoch 1 and
    nothing of epoch 2. It then sends a real SIGINT, as Ctrl-C would.
    """
    uri = scratch_store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    project = tracking.copy_project(tmp_path / "project")
    client = MlflowClient(uri)
    seen: dict[str, dict[str, list[int]]] = {}

    def probe(event: training_events.EpochEnd) -> None:
        if event.epoch != 2:
            return
        for run in tracking.runs_of(client):
            if run.info.status == "RUNNING" and "mlflow.parentRunId" in run.data.tags and run.data.metrics:
                seen[run.info.run_name] = {
                    key: tracking.steps(client, run.info.run_id, key) for key in tracking.EPOCH_METRICS
                }
        signal.raise_signal(signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    training_events.subscribe(probe)
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            tracking.run_session(project, {"training": {"epochs": 3}})
    finally:
        training_events.unsubscribe(probe)

    assert len(seen) == 1, seen  # the model being trained, while it trains
    (steps_at_epoch_2,) = seen.values()
    assert steps_at_epoch_2 == {key: [1] for key in tracking.EPOCH_METRICS}

    deadline = time.monotonic() + 30
    while True:
        runs = tracking.runs_of(client, raised.value.session_id)
        if {r.info.status for r in runs} == {"KILLED"} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    parent, children = tracking.split_tree(runs)
    assert {r.info.status for r in runs} == {"KILLED"}, [(r.info.run_name, r.info.status) for r in runs]
    assert children
    assert signal.getsignal(signal.SIGINT) is handler_before  # the hook put Ctrl-C back


def test_same_tree_against_a_real_mlflow_server(tmp_path, tracking, mlflow_server, monkeypatch):
    """HTTP tracking URI: runs in the server's database, artifacts in its artifact store."""
    import mlflow

    uri = mlflow_server.url
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    project = tracking.copy_project(tmp_path / "project")
    session_id = tracking.run_session(project, {"training": {"epochs": 1}})

    client = MlflowClient(uri)
    runs = tracking.runs_of(client, session_id)
    parent, children = tracking.split_tree(runs)
    assert parent.info.run_name == "relu vs rrelu, seed 0, 1 epoch, synthetic"
    assert parent.data.tags["kedro.pipeline"] == "compare" and parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    for child in children:
        tracking.assert_model_run(client, child, activation=child.data.tags["activation"], seed=0, epochs=1)
        assert child.info.artifact_uri.startswith("mlflow-artifacts:/")
    files = tracking.artifact_files(client, parent.info.run_id)
    assert {"comparison.csv", "comparison.md", "accuracy_curves.png", "comparison_summary.json"} <= set(files)
    # Artifacts went through the server to its --artifacts-destination, not the project.
    assert any(mlflow_server.artifacts.rglob("accuracy_curves.png"))
    assert any(mlflow_server.artifacts.rglob("MLmodel"))
    assert not (project / "mlflow.db").exists() and not (project / "mlartifacts").exists()

    pixels = np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    saved = keras.saving.load_model(tracking.saved_output(project, session_id, "06_models/rrelu_seed0.keras"))
    rrelu = next(c for c in children if c.data.tags["activation"] == "rrelu")
    with tracking.global_tracking_uri(uri):
        pyfunc = mlflow.pyfunc.load_model(f"models:/{rrelu.outputs.model_outputs[0].model_id}")
    expected = saved.predict(pixels.astype(np.float32) / 255, verbose=0).argmax(axis=1)
    classes = [rrelu.data.params[f"class_{i}"] for i in range(10)]
    assert [answer["class"] for answer in pyfunc.predict(pixels)] == [classes[i] for i in expected]
