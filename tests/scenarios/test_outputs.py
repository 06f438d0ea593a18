"""A run's outputs are its own: concurrent runs with other settings, and other environments.

Real ``kedro run`` processes on one project copy, synthetic data, 2-3 epochs:

* two runs started together, with different learning rates or different epochs,
  both finish; each run's report, history and model file are its own (the
  validation set is the test set, so a run's test accuracy must equal its own
  final validation accuracy, and its model file must score that accuracy), and
  no checkpoint folder is lost (issue 15);
* a default-environment run, then a smoke run: not one byte of the first
  run's files changes (issue 12).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import activation_compare.layers  # noqa: F401 - registers RReLU for loading
from activation_compare.datasets.synthetic import SyntheticImageDataset
from conftest import KEDRO, checkpoint_folders, checkpoint_state, kedro_cli, test_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODELS = ("relu_seed0", "rrelu_seed0")


def _together(project: Path, *params: str) -> list[str]:
    """Start one smoke ``compare`` per ``--params`` value at once; wait for all; their logs."""
    processes = [
        subprocess.Popen(
            [KEDRO, "run", "--env", "smoke", "--pipeline=compare", *(["--params", p] if p else [])],
            cwd=project, env=test_env(COLUMNS="250"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for p in params
    ]
    logs = [process.communicate(timeout=800)[0] for process in processes]
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log[-5000:]
    return logs


def _test_images() -> tuple[np.ndarray, np.ndarray]:
    """The smoke run's test set, normalized as the pipeline does (x / 255)."""
    test = SyntheticImageDataset().load().test
    return test.images.astype(np.float32) / np.float32(255.0), test.labels


def _runs_outputs(outputs: Path, model: str) -> dict[str, dict]:
    """Per run (Kedro version): the model's report, history and model file."""
    found = {}
    for version in sorted(p.name for p in (outputs / "07_model_output" / f"{model}_report.json").iterdir()):
        found[version] = {
            "report": json.loads((outputs / "07_model_output" / f"{model}_report.json" / version
                                  / f"{model}_report.json").read_text()),
            "history": pd.read_csv(outputs / "07_model_output" / f"{model}_history.csv" / version
                                   / f"{model}_history.csv"),
            "model": outputs / "06_models" / f"{model}.keras" / version / f"{model}.keras",
        }
    return found


def _assert_each_run_has_its_own_results(outputs: Path, expected: set) -> dict[str, list]:
    """Every run's report agrees with its own history and its own model file."""
    images, labels = _test_images()
    seen: dict[str, list] = {}
    for model in MODELS:
        runs = _runs_outputs(outputs, model)
        assert len(runs) == 2, runs.keys()
        for version, run in runs.items():
            report, history = run["report"], run["history"]
            assert report["test_accuracy"] == pytest.approx(history["val_accuracy"].iloc[-1], abs=1e-6), (model, version)
            assert report["final_val_accuracy"] == pytest.approx(report["test_accuracy"], abs=1e-6)
            assert history["epoch"].tolist() == list(range(1, len(history) + 1))
            trained = keras.saving.load_model(run["model"], safe_mode=True)
            predicted = trained.predict(images, batch_size=100, verbose=0).argmax(axis=1)
            assert float((predicted == labels).mean()) == pytest.approx(report["test_accuracy"], abs=1e-6)
            learning_rate = float(keras.ops.convert_to_numpy(trained.optimizer.learning_rate))
            seen.setdefault(model, []).append((round(learning_rate, 8), len(history)))
        assert set(seen[model]) == expected, seen
    return seen


def _checkpoints(outputs: Path, model: str) -> dict[str, dict]:
    root = outputs / "06_models" / "checkpoints" / model
    return {p.name: checkpoint_state(p) for p in checkpoint_folders(root)}


def test_two_runs_with_different_learning_rates_at_once_keep_their_own_results(project_copy):
    _together(project_copy, "", "training.optimizer.learning_rate=0.00001")
    outputs = project_copy / "data" / "smoke"
    _assert_each_run_has_its_own_results(outputs, {(0.001, 2), (0.00001, 2)})
    for model in MODELS:
        folders = _checkpoints(outputs, model)
        # One checkpoint per setting, both kept, both finished.
        assert sorted(r["fingerprint"]["training.optimizer.learning_rate"] for r in folders.values()) == [1e-05, 0.001]
        assert {(r["status"], r["epochs_done"]) for r in folders.values()} == {("finished", 2)}


def test_two_runs_with_different_epochs_at_once_keep_their_own_results(project_copy):
    _together(project_copy, "", "training.epochs=3")
    outputs = project_copy / "data" / "smoke"
    _assert_each_run_has_its_own_results(outputs, {(0.001, 2), (0.001, 3)})
    for model in MODELS:
        folders = _checkpoints(outputs, model)
        # Epochs are not part of the fingerprint: the longer training continued the
        # shorter one's checkpoint, or the shorter one trained beside the longer one.
        assert {r["status"] for r in folders.values()} == {"finished"}
        assert max(r["epochs_done"] for r in folders.values()) == 3


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_smoke_run_leaves_every_file_of_a_default_run_unchanged(project_copy):
    # The default environment with the smoke run's data (synthetic, 600/200 images), so it is quick.
    result = kedro_cli(project_copy, "run", "--pipeline=compare", "--params",
                       "data.source=synthetic,training.epochs=2", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr[-5000:]
    data = project_copy / "data"
    before = _digests(data)
    assert any(name.startswith("06_models/checkpoints/relu_seed0/") for name in before)
    assert any(name.startswith("08_reporting/comparison.csv/") for name in before)

    result = kedro_cli(project_copy, "run", "--env", "smoke", "--pipeline=compare", env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr[-5000:]
    after = _digests(data)
    assert {k: v for k, v in after.items() if not k.startswith("smoke/")} == before
    assert any(name.startswith("smoke/08_reporting/comparison.csv/") for name in after)
