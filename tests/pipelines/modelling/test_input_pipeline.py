"""The training node's input pipeline and its reproducibility (same seed, same metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from activation_compare import training_events
from activation_compare.datasets.types import LabelledImages
from activation_compare.identity import ModelKey
from activation_compare.params import ModelParams, TrainingParams
from activation_compare.pipelines.modelling import input_pipeline
from activation_compare.pipelines.modelling.nodes import HISTORY_COLUMNS, build_model, train_model


def _ids(dataset) -> list[np.ndarray]:
    """The image ids (stored in pixel [0, 0, 0]) of each batch of one pass."""
    return [images[:, 0, 0, 0].astype(int) for images, _ in dataset.as_numpy_iterator()]


@pytest.fixture
def numbered():
    images = np.zeros((23, 32, 32, 3), dtype=np.float32)
    images[:, 0, 0, 0] = np.arange(23)
    return images, np.arange(23) % 10


def test_each_pass_visits_every_image_once_in_a_new_order(numbered):
    images, labels = numbered
    dataset = input_pipeline.batches(images, labels, 5, shuffle_seed=1)
    assert len(dataset) == 5
    first, second = _ids(dataset), _ids(dataset)
    assert [len(b) for b in first] == [5, 5, 5, 5, 3]
    for batches in (first, second):
        assert sorted(np.concatenate(batches)) == list(range(23))
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    # Labels travel with their images.
    for images_batch, labels_batch in dataset.as_numpy_iterator():
        assert np.array_equal(images_batch[:, 0, 0, 0].astype(int) % 10, labels_batch)


def test_the_order_depends_only_on_the_seed_and_the_pass(numbered):
    images, labels = numbered
    again = input_pipeline.batches(images, labels, 5, shuffle_seed=1)
    other = input_pipeline.batches(images, labels, 5, shuffle_seed=2)
    resumed = input_pipeline.batches(images, labels, 5, shuffle_seed=1, first_pass=1)
    reference = input_pipeline.batches(images, labels, 5, shuffle_seed=1)
    pass0, pass1 = np.concatenate(_ids(reference)), np.concatenate(_ids(reference))
    assert np.array_equal(np.concatenate(_ids(again)), pass0)
    assert not np.array_equal(np.concatenate(_ids(other)), pass0)
    assert np.array_equal(np.concatenate(_ids(resumed)), pass1)


def test_without_a_seed_the_order_is_kept(numbered):
    images, labels = numbered
    dataset = input_pipeline.batches(images, labels, 10)
    assert np.array_equal(np.concatenate(_ids(dataset)), np.arange(23))


def test_the_batches_are_not_autotuned(numbered):
    # tf.data's autotuning thread made fit() wait seconds for it at the end of an
    # epoch's iterator (docs/speed.md): the pipeline has nothing to tune.
    images, labels = numbered
    for seed in (None, 1):
        assert input_pipeline.batches(images, labels, 5, shuffle_seed=seed).options().autotune.enabled is False
    # What benchmarks.epoch_probe --autotune asks for, to show the stall again.
    assert input_pipeline.batches(images, labels, 5, autotune=True).options().autotune.enabled is True


def test_mismatched_lengths_are_rejected(numbered):
    images, labels = numbered
    with pytest.raises(ValueError, match="23 images but 22 labels"):
        input_pipeline.batches(images, labels[:-1], 5)


@pytest.mark.parametrize("activation", ["relu", "rrelu"])
def test_train_model_is_reproducible(activation):
    rng = np.random.default_rng(0)
    train = LabelledImages(rng.random((250, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 250))
    validation = LabelledImages(rng.random((70, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, 70))
    params = TrainingParams(epochs=2, batch_size=64, verbose=0)
    events: list[training_events.EpochEnd] = []
    listener = training_events.subscribe(events.append)
    try:
        first, second, other_seed = (
            train_model(
                build_model({"type": activation}, ModelParams(), key=ModelKey(activation, seed)),
                train,
                validation,
                params,
                key=ModelKey(activation, seed),
            )[1]
            for seed in (5, 5, 6)
        )
    finally:
        training_events.unsubscribe(listener)
    assert list(first.columns) == HISTORY_COLUMNS
    assert list(first["epoch"]) == [1, 2]  # epochs are numbered from 1
    metrics = ["loss", "accuracy", "val_loss", "val_accuracy"]
    # Same seed: bit-identical metrics; another seed: other weights, other batches.
    assert first[metrics].equals(second[metrics])
    assert not first["loss"].equals(other_seed["loss"])
    assert not first["val_loss"].equals(other_seed["val_loss"])
    assert [e.epoch for e in events] == [1, 2, 1, 2, 1, 2]
    assert [e.key.seed for e in events] == [5, 5, 5, 5, 6, 6]
    assert events[-1].metrics["val_loss"] == pytest.approx(other_seed["val_loss"].iloc[-1])
