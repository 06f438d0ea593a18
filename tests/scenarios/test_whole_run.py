"""The whole project, run as a user runs it: the kedro CLI and a KedroSession, smoke env.

The plain smoke ``compare`` through the CLI, and what it saves, is checked in
tests/tracking/test_tracking_runs.py on the one CLI run it shares with the tracking assertions.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from conftest import kedro_cli, run_output

# Real CLI processes and whole smoke runs.
pytestmark = pytest.mark.slow

# The smoke environment's outputs (conf/smoke/globals.yml); each file is a Kedro version.
SMOKE = "data/smoke"


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
