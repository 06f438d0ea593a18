"""Modelling nodes on tiny data, and one model's slice of the pipeline on an in-memory catalog."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from activation_compare.datasets.atomic import AtomicCSVDataset, AtomicMatplotlibDataset
from activation_compare.datasets.report import ReportDataset
from activation_compare.datasets.provenance import RunProvenanceDataset
from activation_compare.datasets.synthetic import make_images
from activation_compare.datasets.types import CIFAR10_CLASSES, LabelledImages
from activation_compare.identity import ComparePlan, ModelKey, Role
from activation_compare.params import DataParams, ModelParams, TrainingParams
from activation_compare.pipelines.modelling import create_pipeline
from activation_compare.pipelines.modelling.nodes import build_model, evaluate_model, train_model
from activation_compare.training_state import Checkpoints

KEY = ModelKey("relu", 0)


def _images(n: int, seed: int) -> LabelledImages:
    raw = make_images(n, np.random.default_rng(seed))
    return LabelledImages(raw.images.astype(np.float32) / np.float32(255.0), raw.labels)


def test_build_model_names_the_model_after_its_key():
    model = build_model({"type": "relu"}, ModelParams(), key=KEY)
    assert model.name == "seed_cnn_relu_seed0"
    assert model.count_params() == 42442


def test_evaluate_model_scores_the_test_set_and_numbers_epochs_from_one():
    model = build_model({"type": "relu"}, ModelParams(precision="float32"), key=KEY)
    test = _images(30, 1)
    history = pd.DataFrame({
        "epoch": [1, 2, 3], "loss": [2.0, 1.5, 1.2], "accuracy": [0.2, 0.4, 0.5],
        "val_loss": [2.1, 1.4, 1.6], "val_accuracy": [0.3, 0.6, 0.5], "epoch_time_s": [1.0, 1.0, 1.0],
    })
    report = evaluate_model(
        model, history, test, list(CIFAR10_CLASSES), {"type": "relu"}, ModelParams(precision="float32"),
        TrainingParams(epochs=3, batch_size=10), DataParams(source="synthetic"), key=KEY,
    )
    predicted = model.predict(test.images, verbose=0).argmax(axis=1)
    assert report.test_accuracy == pytest.approx(float((predicted == test.labels).mean()))
    assert (report.model, report.activation, report.seed) == ("relu_seed0", "relu", 0)
    assert report.best_epoch == 2 and report.best_val_accuracy == 0.6
    assert report.curves.epoch == (1, 2, 3)
    assert np.asarray(report.confusion_matrix).sum() == 30
    assert report.train_test_gap == pytest.approx(0.5 - report.test_accuracy)
    # What trained it: the parameters, the effective dtype policy, the data scored.
    assert (report.settings.epochs, report.settings.batch_size, report.settings.learning_rate) == (3, 10, 0.001)
    assert (report.settings.precision, report.settings.dtype_policy) == ("float32", "float32")
    assert report.settings.protocol == "original" and report.data.source == "synthetic"
    assert report.data.test_images == 30 and report.data.test_digest == test.content_digest


def test_train_model_refuses_a_batch_larger_than_the_training_set():
    model = build_model({"type": "relu"}, ModelParams(), key=KEY)
    data = _images(20, 0)
    with pytest.raises(ValueError, match=r"training.batch_size=50 is larger than the training set \(20 images\)"):
        train_model(model, data, data, TrainingParams(epochs=1, batch_size=50, verbose=0), key=KEY)


@pytest.mark.parametrize("activation", ["relu", "rrelu"])
def test_the_validation_batch_size_changes_no_weight_and_no_validation_accuracy(monkeypatch, activation):
    # The validation pass runs in batches of its own size (larger than training's, for
    # speed). It must stay a pure measurement: no random draw, no state into training.
    from activation_compare.pipelines.modelling import nodes

    train, validation = _images(120, 0), _images(150, 1)
    params = TrainingParams(epochs=2, batch_size=30)
    key = ModelKey(activation, 0)
    results = []
    for size in (30, nodes._VALIDATION_BATCH_SIZE):
        monkeypatch.setattr(nodes, "_VALIDATION_BATCH_SIZE", size)
        model = build_model({"type": activation}, ModelParams(precision="float32"), key=key)
        _, history = train_model(model, train, validation, params, key=key)
        results.append((model.get_weights(), history))
    (weights_small, small), (weights_large, large) = results
    for a, b in zip(weights_small, weights_large, strict=True):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(small[["loss", "accuracy", "val_accuracy"]], large[["loss", "accuracy", "val_accuracy"]])
    np.testing.assert_allclose(small["val_loss"], large["val_loss"], rtol=1e-5)


def test_one_model_through_the_pipeline_on_an_in_memory_catalog(tmp_path):
    """build → train (checkpointed) → evaluate → figures, as Kedro runs it."""
    plan = ComparePlan((KEY,))
    train, test = _images(60, 0), _images(30, 1)
    catalog = DataCatalog({
        "train_set": MemoryDataset(train, copy_mode="assign"),
        "validation_set": MemoryDataset(test, copy_mode="assign"),
        "test_set": MemoryDataset(test, copy_mode="assign"),
        "class_names": MemoryDataset(list(CIFAR10_CLASSES)),
        "params:activations.relu": MemoryDataset({"type": "relu"}),
        "params:model": MemoryDataset(ModelParams()),
        "params:training": MemoryDataset(TrainingParams(epochs=2, batch_size=10, verbose=0)),
        # What the figures say they come from (pipelines/reporting/provenance.py).
        "params:data": MemoryDataset(DataParams(source="synthetic")),
        "run_provenance": RunProvenanceDataset(environment="test", outputs=str(tmp_path), project_path=str(tmp_path)),
        KEY.dataset(Role.CHECKPOINTS): MemoryDataset(Checkpoints(tmp_path / "relu_seed0"), copy_mode="assign"),
        KEY.dataset(Role.UNTRAINED_MODEL): MemoryDataset(copy_mode="assign"),
        KEY.dataset(Role.MODEL): MemoryDataset(copy_mode="assign"),
        # Files, as in the project's catalog: the runner releases in-memory data once used.
        KEY.dataset(Role.HISTORY): AtomicCSVDataset(filepath=str(tmp_path / "history.csv"), save_args={"index": False}),
        KEY.dataset(Role.REPORT): ReportDataset(filepath=str(tmp_path / "report.json")),
        KEY.dataset(Role.ACCURACY_CURVES): AtomicMatplotlibDataset(filepath=str(tmp_path / "curves.png")),
    })
    SequentialRunner().run(create_pipeline(plan), catalog)
    history = catalog.load(KEY.dataset(Role.HISTORY))
    report = catalog.load(KEY.dataset(Role.REPORT))
    assert history["epoch"].tolist() == [1, 2]
    # The validation set is the test set: the report agrees with the last epoch.
    assert report.test_accuracy == pytest.approx(history["val_accuracy"].iloc[-1], abs=1e-6)
    assert report.settings.epochs == 2 and report.epochs_trained == 2
    (folder,) = Checkpoints(tmp_path / "relu_seed0").folders()
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "epoch-0002.npz", "state.json"]
    assert (tmp_path / "curves.png").stat().st_size > 10_000
