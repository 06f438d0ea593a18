"""The Model Registry: a version per evaluated model, tagged; ``best`` follows the highest test accuracy.

Models are the project's real CNN (RReLU), logged by ``artifacts.log_model``
into a throwaway SQLite store, untrained: the registry reads the test accuracy
from the report it is given.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from activation_compare.identity import ModelKey
from activation_compare.params import ModelParams
from activation_compare.pipelines.modelling.nodes import build_model
from activation_compare.tracking import TrackingSettings, artifacts, registry, runs
from activation_compare.tracking.store import open_store

RRELU = {"type": "rrelu", "lower": 0.125, "upper": 1 / 3}


@pytest.fixture(scope="module")
def model():
    return build_model(RRELU, ModelParams(), key=ModelKey("rrelu", 0))


def _store(uri: str, experiment: str, artifacts_root):
    location = (artifacts_root / experiment).as_uri()
    return open_store(TrackingSettings(tracking_uri=uri, experiment_name=experiment, artifact_location=location))


def _model_run(store, model, seed: int, kedro_run_id: str = "registry-1"):
    """A model's run, as the hook makes it, with its model logged."""
    key = ModelKey("rrelu", seed)
    tags = {**key.run_tags(), runs.TAG_KEDRO_RUN_ID: kedro_run_id, runs.TAG_KEDRO_ENV: "smoke"}
    run = runs.create_run(store, key.run_name, tags, {"data.source": "synthetic", "training.epochs": 2})
    images = np.random.default_rng(seed).random((4, 32, 32, 3), dtype=np.float32)
    artifacts.log_model(store, run, model, images, final_step=2)
    return key, run


def test_versions_are_tagged_and_best_follows_the_highest_test_accuracy(scratch_store, model, tmp_path):
    store = _store(scratch_store, "registry-best", tmp_path)
    name = "registry-best-rrelu"
    assert registry.registered_model_name("registry-best", "rrelu") == name
    client = store.client

    key0, run0 = _model_run(store, model, 0)
    first = registry.register_evaluated(store, run0, key0, {"test_accuracy": 0.61})
    assert int(first.version) == 1
    assert client.get_model_version_by_alias(name, "best").run_id == run0.run_id

    key1, run1 = _model_run(store, model, 1)
    registry.register_evaluated(store, run1, key1, {"test_accuracy": 0.65})
    best = client.get_model_version_by_alias(name, "best")
    assert best.run_id == run1.run_id  # a better version takes the alias
    assert best.tags["seed"] == "1" and float(best.tags["test_accuracy"]) == 0.65
    assert best.tags["kedro.run_id"] == "registry-1" and best.tags["kedro.env"] == "smoke"
    assert best.tags["data.source"] == "synthetic" and best.tags["training.epochs"] == "2"
    assert best.source == registry.logged_model(store, run1.run_id).artifact_location

    key2, run2 = _model_run(store, model, 2)
    registry.register_evaluated(store, run2, key2, {"test_accuracy": 0.65})  # a tie keeps the older
    registry.register_evaluated(store, run0, key0, {"test_accuracy": 0.61})  # a continued run: no new version
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
    assert client.get_model_version_by_alias(name, "best").run_id == run1.run_id


def test_trials_and_runs_without_a_model_or_accuracy_are_not_registered(scratch_store, model, tmp_path):
    store = _store(scratch_store, "registry-none", tmp_path)
    key, run = _model_run(store, model, 0)
    assert registry.register_evaluated(store, run, ModelKey("rrelu", 0, trial=1), {"test_accuracy": 0.5}) is None
    assert registry.register_evaluated(store, run, key, {"per_class_accuracy": {}}) is None
    bare = runs.create_run(store, "bare", ModelKey("rrelu", 3).run_tags(), {})
    assert registry.register_evaluated(store, bare, ModelKey("rrelu", 3), {"test_accuracy": 0.5}) is None
    assert store.client.search_model_versions("name = 'registry-none-rrelu'") == []


@pytest.mark.slow
def test_a_registered_rrelu_model_loads_in_a_fresh_process(scratch_store, model, tmp_path):
    """``mlflow.pyfunc.load_model`` in a Python that never imported the project (the model brings its code)."""
    store = _store(scratch_store, "registry-load", tmp_path)
    key, run = _model_run(store, model, 0)
    registry.register_evaluated(store, run, key, {"test_accuracy": 0.5})
    script = (
        "import json, sys, numpy as np, mlflow\n"
        "model = mlflow.pyfunc.load_model('models:/registry-load-rrelu@best')\n"
        "assert 'activation_compare' not in sys.modules or 'code' in sys.modules['activation_compare'].__file__\n"
        "out = np.asarray(model.predict(np.zeros((3, 32, 32, 3), dtype=np.float32)))\n"
        "print(json.dumps({'shape': out.shape, 'sums': out.sum(axis=1).tolist(),"
        " 'package': sys.modules['activation_compare'].__file__}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"MLFLOW_TRACKING_URI": scratch_store, "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2",
             "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
        cwd="/", capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["shape"] == [3, 10]
    assert np.allclose(found["sums"], 1.0, atol=1e-5)
    assert "/code/activation_compare/" in found["package"]  # the code bundled with the model
