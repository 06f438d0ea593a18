"""The run tree: parameters, tags, and a model's run found (or created once) by any process."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from activation_compare.identity import ModelKey
from activation_compare.params import validate_parameters
from activation_compare.tracking import TrackingSettings
from activation_compare.tracking import params as run_params
from activation_compare.tracking import runs
from activation_compare.tracking.store import open_store


@pytest.mark.ci  # CI runs in a clone: the commit must be read there
def test_git_commit_only_inside_a_repository(tmp_path):
    root = Path(__file__).resolve().parents[2]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("the project is not a git checkout here")
    assert runs.git_commit(root) == head.stdout.strip()
    assert runs.git_commit(tmp_path) is None


def test_model_params_leave_out_what_describes_the_whole_comparison():
    parameters = validate_parameters({
        "compare": {"activations": ["relu", "rrelu"], "baseline": "relu"},
        "training": {"seeds": [0, 1], "epochs": 2, "batch_size": 100, "optimizer": {"name": "adam"}},
        "activations": {"relu": {"type": "relu"}, "rrelu": {"type": "rrelu", "lower": 0.125, "upper": 0.25}},
    })
    params = run_params.model_params(parameters, ModelKey("rrelu", 1))
    assert params["activation"] == "rrelu" and params["seed"] == 1
    assert params["activation.lower"] == 0.125 and params["training.epochs"] == 2
    assert "compare.activations" not in params and "training.seeds" not in params
    assert run_params.shared_params(parameters)["compare.activations"] == ["relu", "rrelu"]


def test_a_model_run_created_by_two_processes_at_once_exists_once(scratch_store):
    """Two workers asking for the same model's run at the same moment get the same run."""
    store = open_store(TrackingSettings(tracking_uri=scratch_store, experiment_name="runs-created-once"))
    parent = runs.create_run(store, "compare", {runs.TAG_KEDRO_RUN_ID: "k1", "kedro.env": "test"}, {})
    key = ModelKey("relu", 0)
    found: list[runs.RunRef] = []
    barrier = threading.Barrier(3)

    def ask() -> None:
        barrier.wait()
        found.append(runs.model_run(store, parent, key, validate_parameters({})))

    workers = [threading.Thread(target=ask) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len({run.run_id for run in found}) == 1
    (child,) = [r for r in runs.search(store, {runs.TAG_KEDRO_RUN_ID: "k1"}) if r.parent_id]
    assert child.run_id == found[0].run_id
    assert child.tags["kedro.env"] == "test" and child.name == "relu-seed0"
    assert runs.find_model_run(store, "k1", key).run_id == child.run_id
    assert runs.find_parent(store, "k1").run_id == parent.run_id
