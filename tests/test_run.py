"""The whole project, run as a user runs it: the kedro CLI and a KedroSession, smoke env."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

import activation_compare.layers  # noqa: F401  (registers RReLU for loading)
from conftest import copy_project, kedro_cli, run_output

# Real CLI processes and whole smoke runs.
pytestmark = pytest.mark.slow

EXPECTED_NAMESPACES = {"relu", "rrelu"}
# The smoke environment's outputs (conf/smoke/globals.yml); each file is a Kedro version.
SMOKE = "data/smoke"


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One smoke ``compare`` through the real CLI, shared by the assertions below."""
    project = copy_project(tmp_path_factory.mktemp("cli") / "project")
    result = kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return project, result


def test_cli_compare_writes_the_report(cli_run):
    project, _ = cli_run
    reporting = project / SMOKE / "08_reporting"
    table = pd.read_csv(run_output(reporting / "comparison.csv"))
    assert set(table["activation"]) == EXPECTED_NAMESPACES
    assert table["seed"].tolist() == [0, 0]
    assert (table["parameter_count"] == 42442).all()
    assert table["test_accuracy"].between(0, 1).all()
    assert run_output(reporting / "accuracy_curves.png").stat().st_size > 10_000
    markdown = run_output(reporting / "comparison.md").read_text()
    assert "| relu" in markdown and "| rrelu" in markdown
    summary = json.loads(run_output(reporting / "comparison_summary.json").read_text())
    assert "single seed" in summary["comparisons"]["rrelu"]["verdict"]
    # Nothing of the smoke run lands in the default environment's outputs.
    assert not [p for p in (project / "data").rglob("*") if p.is_file() and SMOKE not in str(p)]


def test_cli_compare_saves_models_that_reload(cli_run):
    project, _ = cli_run
    for activation in EXPECTED_NAMESPACES:
        outputs = project / SMOKE
        path = run_output(outputs / "06_models" / f"{activation}_seed0.keras")
        model = keras.saving.load_model(path, safe_mode=True)
        assert model.count_params() == 42442
        history = pd.read_csv(run_output(outputs / "07_model_output" / f"{activation}_seed0_history.csv"))
        assert history["epoch"].tolist() == [1, 2]  # epochs are numbered from 1
        report = json.loads(run_output(outputs / "07_model_output" / f"{activation}_seed0_report.json").read_text())
        assert report["best_epoch"] in (1, 2)
        assert set(report["per_class_accuracy"]) == set(report["class_names"])
        assert np.asarray(report["confusion_matrix"]).sum() == 200


def test_cli_accepts_both_pipeline_flags(project_copy):
    """Kedro >= 1.5 prefers --pipelines; the user's --pipeline must keep working."""
    result = kedro_cli(project_copy, "run", "--env", "smoke", "--pipelines=data_processing")
    assert result.returncode == 0, result.stderr[-3000:]


def test_session_run_with_several_seeds_and_activations(project_copy):
    bootstrap_project(project_copy)
    with KedroSession.create(
        project_path=project_copy,
        env="smoke",
        runtime_params={
            "training": {"seeds": [3, 4], "epochs": 1},
            "compare": {"activations": ["relu", "leaky_relu"]},
        },
    ) as session:
        outputs = session.run(pipeline_names=["compare"])
    assert outputs == {} or isinstance(outputs, dict)
    outputs = project_copy / SMOKE
    table = pd.read_csv(run_output(outputs / "08_reporting" / "comparison.csv"))
    assert sorted(zip(table["activation"], table["seed"])) == [
        ("leaky_relu", 3), ("leaky_relu", 4), ("relu", 3), ("relu", 4)
    ]
    summary = json.loads(run_output(outputs / "08_reporting" / "comparison_summary.json").read_text())
    assert summary["comparisons"]["leaky_relu"]["n"] == 2
    for name in ("relu_seed3", "relu_seed4", "leaky_relu_seed3", "leaky_relu_seed4"):
        assert run_output(outputs / "06_models" / f"{name}.keras").exists()


def test_bad_parameter_fails_before_anything_runs(project_copy):
    result = kedro_cli(project_copy, "run", "--env", "smoke", "--params", "training.epochs=0")
    assert result.returncode != 0
    assert "training.epochs = 0" in result.stdout + result.stderr
    assert not (project_copy / SMOKE).exists()
