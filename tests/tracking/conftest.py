"""Fixtures for the MLflow tracking tests: project copies, smoke runs, an MLflow server.

Every run goes to a throwaway project copy and a throwaway store; the
developer's ``./data``, ``./mlflow.db`` and ``MLFLOW_TRACKING_URI`` are never
touched. Helpers are handed out by the ``tracking`` fixture (test modules
cannot import each other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from conftest import (
    BIN,
    PROJECT_ROOT,
    MlflowServer,
    copy_project,
    kedro_cli,
    metric_steps,
    run_session,
    saved_output,
    test_env,
)

SMOKE_EXPERIMENT = "activation-compare-smoke"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


# --- project copies and runs ------------------------------------------------------


# --- querying the store -------------------------------------------------------------


def runs_of(client, session_id: str | None = None, experiment: str = SMOKE_EXPERIMENT) -> list:
    """Every run of the experiment (of one Kedro run when ``session_id`` is given)."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in the store"
    flt = f"tags.`kedro.run_id` = '{session_id}'" if session_id else ""
    from mlflow.entities import ViewType

    return list(client.search_runs([exp.experiment_id], filter_string=flt, run_view_type=ViewType.ALL, max_results=1000))


def split_tree(runs: list) -> tuple[Any, list]:
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [(r.info.run_name, r.data.tags.get("mlflow.parentRunId")) for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1, "runs with a foreign parent"
    return parents[0], children


def artifact_files(client, run_id: str, path: str | None = None) -> dict[str, int]:
    """Every artifact file of a run (recursively) and its size."""
    found: dict[str, int] = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found.update(artifact_files(client, run_id, info.path))
        else:
            found[info.path] = info.file_size
    return found


@contextlib.contextmanager
def global_tracking_uri(uri: str):
    """``mlflow.pyfunc.load_model('runs:/...')`` resolves runs through the global tracking URI."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous = getattr(utils, "_tracking_uri", None)  # None: MLflow's default resolution
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def assert_model_run(client, run, *, activation: str, seed: int, epochs: int, env: str = "smoke") -> None:
    """One trained model's run: identity, params, live metric steps, final metrics, artifacts."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert run.info.run_name == f"{activation}-seed{seed}"
    assert run.info.status == "FINISHED"
    assert tags["activation"] == activation and tags["seed"] == str(seed)
    assert tags["kedro.env"] == env and tags["kedro.pipeline"] == "compare"
    assert tags["kedro.run_id"]
    # The project copy is not a git repository: no commit tag rather than a wrong one.
    assert "mlflow.source.git.commit" not in tags

    assert params["activation"] == activation and params["seed"] == str(seed)
    assert params["activation.type"] == activation
    if activation == "rrelu":
        assert float(params["activation.lower"]) == pytest.approx(0.125)
        assert float(params["activation.upper"]) == pytest.approx(1 / 3)
    expected = {
        "model.architecture": "seed_cnn",
        "model.parameter_count": "42442",
        "training.epochs": str(epochs),
        "training.batch_size": "100",
        "training.optimizer": "adam",
        "training.learning_rate": "0.001",
        "data.source": "synthetic",
        "data.train_size": "600",
        "data.validation_size": "200",
        "data.test_size": "200",
        "data.validation_mode": "test_set",
    }
    assert {k: params.get(k) for k in expected} == expected
    assert params["tensorflow_version"] and params["keras_version"]
    # What model.precision became on this machine (auto: bfloat16 only on CPUs that have it).
    from activation_compare.models.precision import dtype_policy

    assert params["model.dtype_policy"] == dtype_policy(params["model.precision"])

    for key in EPOCH_METRICS:  # epochs numbered from 1, MLflow step = epoch
        assert metric_steps(client, run.info.run_id, key) == list(range(1, epochs + 1)), key
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    for index, name in enumerate(CIFAR10_CLASSES):  # per class by index, the name a param
        assert 0.0 <= metrics[f"test_accuracy_class_{index}"] <= 1.0
        assert params[f"class_{index}"] == name

    files = artifact_files(client, run.info.run_id)
    for path in ("figures/accuracy_curves.png", "figures/confusion_matrix.png", "history.csv", "report.json"):
        assert files.get(path, 0) > 0, (path, files)

    outputs = run.outputs.model_outputs if run.outputs else []
    assert len(outputs) == 1, outputs
    model = client.get_logged_model(outputs[0].model_id)
    assert model.name == f"{activation}-seed{seed}" and model.source_run_id == run.info.run_id
    assert str(model.status).endswith("READY")
    # The model is what the run trained: its params, its final metrics, the datasets behind them.
    assert model.params["seed"] == str(seed) and model.params["training.epochs"] == str(epochs)
    linked = {m.key: m for m in model.metrics}
    assert linked["test_accuracy"].value == pytest.approx(metrics["test_accuracy"])
    assert {"best_val_accuracy", "best_epoch", "test_accuracy_class_0"} <= set(linked)
    assert linked["test_accuracy"].dataset_name == "synthetic-test" and linked["test_accuracy"].dataset_digest
    contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context"}
    assert contexts == {"train", "validation", "test"}


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- a fake pipeline with the modelling pipeline's names (trains nothing) ------------


def fake_parameters(activations=("relu", "rrelu"), seeds=(0,), epochs: int = 3) -> dict[str, Any]:
    """The run's parameters as Kedro's catalog holds them (``parameters``)."""
    return {
        "compare": {"activations": list(activations)},
        "training": {"seeds": list(seeds), "epochs": epochs},
        "data": {"source": "synthetic"},
    }


def fake_train(untrained, *, key, epochs=3, fail=False, mode="fresh", history=(), fingerprint="fp-1"):
    """Publishes what the training node publishes: a start, then one event per epoch (from 1)."""
    from activation_compare import training_events

    done = len(history)
    training_events.publish(
        training_events.TrainingStart(key, epochs, done, mode, fingerprint, [dict(r) for r in history])
    )
    for epoch in range(done + 1, epochs + 1):
        training_events.publish(
            training_events.EpochEnd(key, epoch, epochs, {"loss": 1.0 / epoch, "accuracy": 0.1 * epoch})
        )
    if fail:
        raise RuntimeError("diverged")
    return untrained, pd.DataFrame({"epoch": list(range(1, epochs + 1)), "loss": [1.0 / e for e in range(1, epochs + 1)]})


def _fake_build(data):
    return data


def _fake_compare(*reports):
    return "| table |"


def _fake_report(model, history):
    from report_factory import make_report

    return make_report(test_accuracy=0.5, class_names=("a b",), per_class={"a b": 0.25})


def _fake_figures(report):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1])
    return figure, figure


def fake_pipeline(plan, fail: str | None = None, **train_options):
    """The modelling pipeline's nodes and datasets for every model of ``plan`` (identity's names)."""
    from functools import partial, update_wrapper

    from kedro.pipeline import Node, Pipeline

    from activation_compare.identity import COMPARE_NODE, ComparisonOutput, Role, Step

    nodes = []
    for key in plan.models:
        train = update_wrapper(partial(fake_train, key=key, fail=key.activation == fail, **train_options), fake_train)
        nodes += [
            Node(_fake_build, "data", key.dataset(Role.UNTRAINED_MODEL), name=key.node(Step.BUILD)),
            Node(train, key.dataset(Role.UNTRAINED_MODEL), [key.dataset(Role.MODEL), key.dataset(Role.HISTORY)],
                 name=key.node(Step.TRAIN)),
            Node(_fake_report, [key.dataset(Role.MODEL), key.dataset(Role.HISTORY)], key.dataset(Role.REPORT),
                 name=key.node(Step.EVALUATE)),
            Node(_fake_figures, key.dataset(Role.REPORT),
                 [key.dataset(Role.ACCURACY_CURVES), key.dataset(Role.CONFUSION_MATRIX)], name=key.node(Step.PLOT)),
        ]
    nodes.append(Node(_fake_compare, plan.datasets(Role.REPORT), ComparisonOutput.MARKDOWN.value,
                      name=COMPARE_NODE))
    return Pipeline(nodes)


def run_fake(pipeline, hook, runner, project: Path, session_id: str, parameters: dict[str, Any]) -> None:
    """Kedro's order of hook calls around ``runner.run``, as a session makes them."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.io.data_catalog import SharedMemoryDataCatalog
    from kedro.runner import ParallelRunner

    from activation_compare.private_apis import kedro_hook_manager

    manager = kedro_hook_manager((hook,))
    # ParallelRunner's workers share outputs through a manager (as `kedro run` sets up).
    kind = SharedMemoryDataCatalog if isinstance(runner, ParallelRunner) else DataCatalog
    catalog = kind({"data": MemoryDataset(1), "parameters": MemoryDataset(parameters)})
    run_params = {"run_id": session_id, "project_path": str(project), "env": "test",
                  "pipeline_names": ["fake"], "runtime_params": {}}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    try:
        runner.run(pipeline, catalog, manager, run_id=session_id)
    except Exception as error:
        manager.hook.on_pipeline_error(error=error, run_params=run_params, pipeline=pipeline, catalog=catalog)
        raise
    manager.hook.after_pipeline_run(run_params=run_params, run_result={}, pipeline=pipeline, catalog=catalog)


def run_fake_in_parallel_in_a_new_interpreter(
    project: Path, session_id: str, store: str, activations: list[str], seeds: list[int]
) -> None:
    """``run_fake`` under ``ParallelRunner(max_workers=2)``, from a new Python process.

    ParallelRunner forks its manager and its workers from the calling process.
    This pytest process has TensorFlow loaded by earlier tests, and a fork of it
    can die in TensorFlow's C++ mutexes (CI once lost the manager to abseil's
    "Check w->waitp->cond == nullptr failed"); ``kedro run`` forks from a driver
    that has not imported TensorFlow, and so does this.
    """
    arguments = json.dumps([str(project), session_id, activations, seeds])
    script = f"import tracking.conftest as helpers; helpers._fake_parallel_main({arguments!r})"
    env = test_env(MLFLOW_TRACKING_URI=store, PYTHONPATH=os.pathsep.join([str(PROJECT_ROOT / "tests"), str(PROJECT_ROOT)]))
    result = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def _fake_parallel_main(arguments: str) -> None:
    from kedro.framework.project import configure_project
    from kedro.runner import ParallelRunner

    from activation_compare.hooks import MlflowTrackingHook
    from activation_compare.identity import ComparePlan

    project, session_id, activations, seeds = json.loads(arguments)
    configure_project("activation_compare")
    plan = ComparePlan.of(activations, seeds)
    run_fake(fake_pipeline(plan), MlflowTrackingHook(), ParallelRunner(max_workers=2), Path(project), session_id,
             fake_parameters(activations, seeds))


def runs_by_session(client, *session_ids, experiment: str = "activation-compare") -> list:
    exp = client.get_experiment_by_name(experiment)
    from mlflow.entities import ViewType

    return [
        run
        for session_id in session_ids
        for run in client.search_runs(
            [exp.experiment_id], filter_string=f"tags.`kedro.run_id` = '{session_id}'", run_view_type=ViewType.ALL
        )
    ]


@pytest.fixture(scope="session")
def scratch_store(tmp_path_factory) -> str:
    """One SQLite store shared by the in-process tests (each reads only its own Kedro run).

    Creating a store runs MLflow's schema migrations (seconds); once is enough.
    """
    return f"sqlite:///{tmp_path_factory.mktemp('scratch-store') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def tracking():
    """The helpers above, for the test modules."""
    return SimpleNamespace(
        PROJECT_ROOT=PROJECT_ROOT,
        BIN=BIN,
        SMOKE_EXPERIMENT=SMOKE_EXPERIMENT,
        EPOCH_METRICS=EPOCH_METRICS,
        copy_project=copy_project,
        kedro_cli=kedro_cli,
        run_session=run_session,
        runs_of=runs_of,
        split_tree=split_tree,
        steps=metric_steps,
        artifact_files=artifact_files,
        global_tracking_uri=global_tracking_uri,
        assert_model_run=assert_model_run,
        file_digests=file_digests,
        saved_output=saved_output,
        fake_parameters=fake_parameters,
        fake_pipeline=fake_pipeline,
        run_fake=run_fake,
        run_fake_in_parallel_in_a_new_interpreter=run_fake_in_parallel_in_a_new_interpreter,
        runs_by_session=runs_by_session,
        MlflowServer=MlflowServer,
    )
