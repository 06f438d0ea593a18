"""Several ``kedro run``s at once: one SQLite MLflow store, one project's checkpoints.

* processes that start together on a store that does not exist yet all get
  it created and record every run completely (MLflow alone fails there:
  its schema migrations race);
* two real ``kedro run``s of the same project at the same moment both finish
  and are both recorded; each model is trained once, by whichever run gets its
  lock first, and reused by the other, which waits.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from conftest import KEDRO, copy_project, run_output, test_env

PROCESSES = 3
MODELS = 2
EPOCHS = 8

_LOGGER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.pipeline import Node, Pipeline
    from kedro.runner import SequentialRunner
    from activation_compare import training_events
    from activation_compare.identity import ComparePlan, Step
    from activation_compare.hooks import MlflowTrackingHook
    from activation_compare.private_apis import kedro_hook_manager

    session, start_at, models, epochs = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    # The default parameters' plan (relu, rrelu; seed 0), named by the contract.
    plan = ComparePlan.of(["relu", "rrelu"][:models], [0])

    def trainer(key):
        def train(x):
            for epoch in range(1, epochs + 1):
                training_events.publish(training_events.EpochEnd(key, epoch, epochs, {"loss": 1.0 / epoch}))
            return x
        return train

    pipeline = Pipeline([
        node
        for key in plan.models
        for node in (
            Node(lambda x: x, "data", f"{key.name}_untrained", name=key.node(Step.BUILD)),
            Node(trainer(key), f"{key.name}_untrained", f"{key.name}_trained", name=key.node(Step.TRAIN),
                 tags=["training"]),
        )
    ])
    manager = kedro_hook_manager((MlflowTrackingHook(),))
    catalog = DataCatalog({"data": MemoryDataset(1), "parameters": MemoryDataset({})})
    run_params = {"run_id": session, "project_path": ".", "env": "test", "pipeline_names": ["fake"]}
    while time.time() < start_at:  # all processes open the (new) store at the same moment
        time.sleep(0.001)
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    SequentialRunner().run(pipeline, catalog, manager, run_id=session)
    manager.hook.after_pipeline_run(run_params=run_params, run_result={}, pipeline=pipeline, catalog=catalog)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_processes_starting_together_on_a_new_sqlite_store_are_all_recorded(tmp_path):
    uri = f"sqlite:///{tmp_path / 'shared' / 'mlflow.db'}"
    env = test_env(MLFLOW_TRACKING_URI=uri)
    script = tmp_path / "log_runs.py"
    script.write_text(_LOGGER_SCRIPT)
    start_at = time.time() + 20  # after every interpreter has imported MLflow and Kedro
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), f"session-{i}", str(start_at), str(MODELS), str(EPOCHS)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    assert time.time() > start_at, "a process finished before the common start: start later"

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("activation-compare")
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL, max_results=1000)
    assert len(runs) == PROCESSES * (1 + MODELS)
    assert {r.info.status for r in runs} == {"FINISHED"}
    for session in (f"session-{i}" for i in range(PROCESSES)):
        children = [r for r in runs if r.data.tags["kedro.run_id"] == session and "mlflow.parentRunId" in r.data.tags]
        assert len(children) == MODELS
        for child in children:
            steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, "loss"))
            assert steps == list(range(1, EPOCHS + 1)), (session, child.info.run_name)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_kedro_runs_at_once_on_one_project_both_finish_and_train_each_model_once(tmp_path):
    project = copy_project(tmp_path / "project")
    command = [KEDRO, "run", "--env", "smoke", "--pipeline=compare"]
    processes = [
        subprocess.Popen(command, cwd=project, env=test_env(COLUMNS="250"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=800)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-5000:]

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("activation-compare-smoke")
    runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and {p.info.status for p in parents} == {"FINISHED"}
    training = {}
    for parent in parents:
        children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
        assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
        for child in children:
            assert child.info.status == "FINISHED"
            for key in ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s"):
                steps = sorted(m.step for m in client.get_metric_history(child.info.run_id, key))
                assert steps == [1, 2], (child.info.run_name, key)
            assert "test_accuracy" in child.data.metrics
            training.setdefault(child.info.run_name, []).append(child.data.tags["kedro.training"])
    # Each model trained by one run, reused by the other (which waited for its lock
    # or came after): never trained twice, never interleaved.
    assert {name: sorted(kinds) for name, kinds in training.items()} == {
        "relu-seed0": ["reused", "trained"], "rrelu-seed0": ["reused", "trained"]
    }
    outputs = project / "data" / "smoke"
    for model in ("relu_seed0", "rrelu_seed0"):
        # One training fingerprint, one checkpoint folder, trained once.
        (folder,) = (outputs / "06_models/checkpoints" / model).iterdir()
        assert sorted(p.name for p in folder.iterdir()) == [".lock", "epoch-0002.npz", "state.json"]
        # Each run saved its own history (the reused model's is the trained one's).
        versions = sorted((outputs / "07_model_output" / f"{model}_history.csv").iterdir())
        assert len(versions) == 2
        histories = [pd.read_csv(run_output(v.parent, v.name)) for v in versions]
        assert [h["epoch"].tolist() for h in histories] == [[1, 2], [1, 2]]
        pd.testing.assert_frame_equal(histories[0], histories[1])
    assert not [p for p in (project / "data").rglob("*") if p.name.startswith(".") and p.name.endswith(".tmp")]
