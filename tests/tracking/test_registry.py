"""The Model Registry: one version per trained model, linked to its logged model; ``best`` compares like with like.

Models are the project's real CNN (RReLU), logged by ``artifacts.log_model``
into a throwaway SQLite store, untrained: the registry reads the accuracies
from the report it is given. Experiments are named with quotes and non-ASCII
letters: names must never break a filter string.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from activation_compare.datasets.types import CIFAR10_CLASSES, LabelledImages
from activation_compare.identity import TEST_SET, TRAIN_SET, VALIDATION_SET, ModelKey
from activation_compare.params import DataParams, ModelParams
from activation_compare.pipelines.modelling.nodes import build_model
from activation_compare.tracking import TrackingSettings, artifacts, datasets, registry, runs
from activation_compare.tracking.resume import TAG_FINGERPRINT
from activation_compare.tracking.store import open_store
from report_factory import make_report

RRELU = {"type": "rrelu", "lower": 0.125, "upper": 1 / 3}
# What the issue tried, plus non-ASCII letters.
ODD_EXPERIMENT = "bob's \"exp\" – dåg"
DATA = DataParams(source="synthetic")


@pytest.fixture(scope="module")
def model():
    return build_model(RRELU, ModelParams(), key=ModelKey("rrelu", 0))


def _store(uri: str, experiment: str, artifacts_root):
    location = (artifacts_root / "artifacts").as_uri()
    return open_store(TrackingSettings(tracking_uri=uri, experiment_name=experiment, artifact_location=location))


def _split(seed: int, n: int = 20) -> LabelledImages:
    rng = np.random.default_rng(seed)
    return LabelledImages(rng.random((n, 32, 32, 3), dtype=np.float32), np.arange(n, dtype=np.int64) % 10)


SPLITS = {TRAIN_SET: _split(1), VALIDATION_SET: _split(2), TEST_SET: _split(3)}


def _report(test: float, val: float = 0.5, epochs: int = 2):
    return make_report("rrelu", 0, test, epochs=epochs, curve=[val] + [val - 0.1] * (epochs - 1),
                       class_names=tuple(CIFAR10_CLASSES))


def _evaluated(store, model, seed: int, report, *, kedro_run_id: str = "registry-1",
               params: dict | None = None, fingerprint: str | None = None, run=None):
    """A model's run as the hook makes it: datasets, the evaluated model logged, its report, registered."""
    key = ModelKey("rrelu", seed)
    if run is None:
        tags = {**key.run_tags(), runs.TAG_KEDRO_RUN_ID: kedro_run_id, runs.TAG_KEDRO_ENV: "smoke"}
        if fingerprint:
            tags[TAG_FINGERPRINT] = fingerprint
        base = {"activation": "rrelu", "seed": seed, "data.source": "synthetic", "training.epochs": 2,
                "compare.protocol": "standard", "data.validation_mode": "test_set"}
        run = runs.create_run(store, key.run_name, tags, {**base, **(params or {})})
    datasets.log_datasets(store, run.run_id, DATA, SPLITS)
    model_id = artifacts.log_model(store, run, key, model, SPLITS[TEST_SET].images, 2, list(CIFAR10_CLASSES))
    artifacts.log_report(store, run, report, model_id)
    version = registry.register_evaluated(store, run, key, report)
    return key, run, model_id, version


def _versions(client, name: str) -> list:
    """Every version of ``name``, found without a filter string (none can hold the name)."""
    return sorted((v for v in client.search_model_versions() if v.name == name), key=lambda v: int(v.version))


def test_a_version_is_linked_to_its_logged_model_which_has_its_params_metrics_and_datasets(
    scratch_store, model, tmp_path
):
    store = _store(scratch_store, ODD_EXPERIMENT, tmp_path)
    client = store.client
    name = registry.registered_model_name(ODD_EXPERIMENT, "rrelu")
    _, run, model_id, version = _evaluated(store, model, 0, _report(0.61, val=0.55))

    logged = client.get_logged_model(model_id)
    assert logged.name == "rrelu-seed0" and logged.source_run_id == run.run_id
    assert logged.params["activation"] == "rrelu" and logged.params["seed"] == "0"
    assert logged.params["model.parameter_count"] == "42442"
    assert logged.params["class_3"] == "cat"
    metrics = {m.key: m for m in logged.metrics}
    assert metrics["test_accuracy"].value == pytest.approx(0.61)
    assert metrics["best_val_accuracy"].value == pytest.approx(0.55) and metrics["best_epoch"].value == 1
    assert metrics["test_accuracy_class_3"].value == pytest.approx(0.61)
    # Each metric names the dataset it was measured on ("Datasets used" on the model's page).
    assert (metrics["test_accuracy"].dataset_name, metrics["test_accuracy"].dataset_digest) == (
        "synthetic-test", SPLITS[TEST_SET].content_digest)
    assert metrics["best_val_accuracy"].dataset_digest == SPLITS[VALIDATION_SET].content_digest

    recorded = datasets.run_datasets(store, run.run_id)
    assert {c: d.digest for c, d in recorded.items()} == {
        "train": SPLITS[TRAIN_SET].content_digest, "validation": SPLITS[VALIDATION_SET].content_digest,
        "test": SPLITS[TEST_SET].content_digest}
    assert recorded["train"].name == "synthetic-train" and recorded["train"].source_type == "code"

    # The registry and the logged model name each other.
    assert int(version.version) == 1 and version.run_id == run.run_id
    assert version.tags["model_id"] == model_id and version.source == logged.artifact_location
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": name, "version": "1"}]
    assert client.get_model_version_by_alias(name, "best").tags["model_id"] == model_id


def test_one_version_per_trained_model_and_best_follows_the_highest_test_accuracy(scratch_store, model, tmp_path):
    store = _store(scratch_store, "registry-best ünïcode 'q'", tmp_path)
    client = store.client
    name = registry.registered_model_name("registry-best ünïcode 'q'", "rrelu")

    key0, run0, _, first = _evaluated(store, model, 0, _report(0.61), fingerprint="aa11")
    assert client.get_model_version_by_alias(name, "best").run_id == run0.run_id
    _, run1, _, _ = _evaluated(store, model, 1, _report(0.65), fingerprint="bb22")
    best = client.get_model_version_by_alias(name, "best")
    assert best.run_id == run1.run_id  # a better version takes the alias
    assert best.tags["seed"] == "1" and float(best.tags["test_accuracy"]) == 0.65
    assert best.tags["selection_metric"] == "test_accuracy"
    assert best.tags["kedro.run_id"] == "registry-1" and best.tags["kedro.env"] == "smoke"
    assert best.tags["data.source"] == "synthetic" and best.tags["training.epochs"] == "2"
    assert client.get_model_version_by_alias(name, f"best-{best.tags['configuration']}").run_id == run1.run_id

    _evaluated(store, model, 2, _report(0.65), fingerprint="cc33")  # a tie keeps the older
    assert client.get_model_version_by_alias(name, "best").run_id == run1.run_id
    assert registry.register_evaluated(store, run0, key0, _report(0.61)).version == first.version  # continued run
    # A rerun that reuses seed 0's finished model (same fingerprint and epochs): no new version,
    # its logged model is linked to the existing one.
    _, reused, reused_model, again = _evaluated(store, model, 0, _report(0.61), kedro_run_id="registry-2",
                                                fingerprint="aa11")
    assert again.version == first.version and reused.run_id != run0.run_id
    assert json.loads(client.get_logged_model(reused_model).tags["mlflow.modelVersions"]) == [
        {"name": name, "version": str(first.version)}]
    # More epochs on the same checkpoint is another trained model.
    _, _, _, longer = _evaluated(store, model, 0, _report(0.5, epochs=3), kedro_run_id="registry-3",
                                 fingerprint="aa11", params={"training.epochs": 3})
    assert int(longer.version) == 4
    assert [int(v.version) for v in _versions(client, name)] == [1, 2, 3, 4]


def test_best_never_compares_models_trained_under_different_settings(scratch_store, model, tmp_path):
    store = _store(scratch_store, "registry-configs", tmp_path)
    client = store.client
    name = "registry-configs-rrelu"
    _, long_run, _, long_version = _evaluated(store, model, 0, _report(0.70), params={"training.epochs": 15})
    long_config = long_version.tags["configuration"]
    # Fewer epochs: another configuration. Its best is its own, even if worse.
    _, short_run, _, short_version = _evaluated(store, model, 1, _report(0.40), params={"training.epochs": 2})
    assert short_version.tags["configuration"] != long_config
    assert client.get_model_version_by_alias(name, "best").run_id == short_run.run_id
    assert client.get_model_version_by_alias(name, f"best-{long_config}").run_id == long_run.run_id
    settings = json.loads(short_version.tags["configuration.settings"])
    assert settings["training.epochs"] == "2" and settings["data.test"].startswith("synthetic-test@")

    # Rigorous protocol: validation accuracy chooses, never test accuracy.
    rigorous = {"compare.protocol": "rigorous", "data.validation_mode": "holdout", "tuning.learning_rates": "[0.001]"}
    _, by_val, _, first = _evaluated(store, model, 2, _report(0.30, val=0.80), params=rigorous)
    _, by_test, _, _ = _evaluated(store, model, 3, _report(0.90, val=0.60), params=rigorous)
    assert first.tags["selection_metric"] == "best_val_accuracy"
    assert client.get_model_version_by_alias(name, "best").run_id == by_val.run_id
    assert client.get_model_version_by_alias(name, f"best-{long_config}").run_id == long_run.run_id


def test_configuration_ignores_the_seed_and_a_rigorous_runs_chosen_rate():
    base = {"activation": "rrelu", "seed": "0", "training.epochs": "2", "compare.protocol": "rigorous",
            "training.learning_rate": "0.001", "tuning.learning_rates": "[0.001, 0.01]", "tensorflow_version": "2"}
    other = {**base, "seed": "1", "training.learning_rate": "0.01", "tensorflow_version": "3"}
    assert registry.configuration(base, {}) == registry.configuration(other, {})
    assert registry.configuration({**base, "model.precision": "float32"}, {}) != registry.configuration(base, {})


def test_trials_and_runs_without_a_model_or_accuracy_are_not_registered(scratch_store, model, tmp_path):
    store = _store(scratch_store, "registry-none", tmp_path)
    key = ModelKey("rrelu", 0)
    run = runs.create_run(store, key.run_name, key.run_tags(), {})
    artifacts.log_model(store, run, key, model, SPLITS[TEST_SET].images, 2)
    assert registry.register_evaluated(store, run, ModelKey("rrelu", 0, trial=1), {"test_accuracy": 0.5}) is None
    assert registry.register_evaluated(store, run, key, {"per_class_accuracy": {}}) is None
    bare = runs.create_run(store, "bare", ModelKey("rrelu", 3).run_tags(), {})
    assert registry.register_evaluated(store, bare, ModelKey("rrelu", 3), {"test_accuracy": 0.5}) is None
    assert _versions(store.client, "registry-none-rrelu") == []


@pytest.mark.slow
def test_a_registered_rrelu_model_loads_in_a_fresh_process(scratch_store, model, tmp_path):
    """``mlflow.pyfunc.load_model`` in a Python that never imported the project (the model brings its code)."""
    store = _store(scratch_store, "registry-load", tmp_path)
    _evaluated(store, model, 0, _report(0.5))
    script = (
        "import json, sys, numpy as np, mlflow\n"
        "model = mlflow.pyfunc.load_model('models:/registry-load-rrelu@best')\n"
        "assert 'activation_compare' not in sys.modules or 'code' in sys.modules['activation_compare'].__file__\n"
        "out = model.predict(np.zeros((3, 32, 32, 3), dtype=np.uint8))\n"
        "print(json.dumps({'answers': out, 'package': sys.modules['activation_compare'].__file__}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={"MLFLOW_TRACKING_URI": scratch_store, "PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2",
             "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"},
        cwd="/", capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found["answers"]) == 3
    for answer in found["answers"]:
        assert list(answer["probabilities"]) == list(CIFAR10_CLASSES)
        assert answer["class"] in CIFAR10_CLASSES
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert "/code/activation_compare/" in found["package"]  # the code bundled with the model


def test_a_shorter_trainings_own_checkpoint_folder_is_registered_once(scratch_store, model, tmp_path):
    """A training shorter than its checkpoint folder gets ``<fingerprint>-epochs<N>`` (training_state):
    that name is the run's fingerprint tag, and registration and reuse must take it."""
    store = _store(scratch_store, "registry-shorter", tmp_path)
    name = registry.registered_model_name("registry-shorter", "rrelu")
    _, _, _, first = _evaluated(store, model, 0, _report(0.6), fingerprint="ee55-epochs2")
    assert first is not None
    _, _, _, again = _evaluated(store, model, 0, _report(0.6), kedro_run_id="registry-2", fingerprint="ee55-epochs2")
    assert again.version == first.version
    assert [int(v.version) for v in _versions(store.client, name)] == [1]
