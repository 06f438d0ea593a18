import numpy as np
import pytest

from activation_compare.datasets.types import LabelledImages
from activation_compare.params import DataParams
from activation_compare.pipelines.data_processing.nodes import normalize_images, split_validation


def _raw(n=40):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    images[0, 0, 0] = [0, 128, 255]
    return LabelledImages(images=images, labels=(np.arange(n) % 10).astype(np.uint8))


def test_normalize_gives_float32_in_unit_range_with_same_shape():
    raw = _raw()
    out = normalize_images(raw)
    assert out.images.dtype == np.float32
    assert out.images.shape == raw.images.shape
    assert out.labels.dtype == np.int64
    assert out.images.min() >= 0.0 and out.images.max() <= 1.0
    np.testing.assert_array_equal(out.images[0, 0, 0], np.float32([0, 128 / 255, 1]))


def test_normalize_matches_the_originals_float64_division_bit_for_bit():
    every_value = np.arange(256, dtype=np.uint8)
    images = np.resize(every_value, (1, 32, 32, 3))
    out = normalize_images(LabelledImages(images=images, labels=np.zeros(1, np.int64)))
    original = (images / 255.0).astype(np.float32)  # what the original fed Keras
    np.testing.assert_array_equal(out.images, original)


def test_default_uses_the_test_set_for_validation():
    train, test = normalize_images(_raw(40)), normalize_images(_raw(20))
    fit, validation, info = split_validation(train, test, DataParams())
    assert fit is train and validation is test
    assert info == {"mode": "test_set", "validation_size": 20, "train_size": 40}


def test_holdout_is_stratified_and_disjoint():
    train, test = normalize_images(_raw(100)), normalize_images(_raw(20))
    fit, validation, info = split_validation(train, test, DataParams(validation_split=0.2))
    assert info["mode"] == "holdout"
    assert len(fit) + len(validation) == 100
    assert np.bincount(validation.labels).tolist() == [2] * 10
    assert len(validation) == info["validation_size"] == 20


def test_holdout_too_large_for_a_class_is_rejected():
    train, test = normalize_images(_raw(10)), normalize_images(_raw(10))
    with pytest.raises(ValueError, match="data.validation_split=0.6 leaves no training images"):
        split_validation(train, test, DataParams(validation_split=0.6))


# --- the rigorous protocol's validation split -------------------------------------------------


def test_rigorous_holdout_has_the_exact_size_stratified_and_disjoint():
    from activation_compare.params import TuningParams
    from activation_compare.pipelines.data_processing.nodes import hold_out_validation

    raw = _raw(103)  # classes of 11 and 10 images: shares that do not divide evenly
    raw.images[:, 0, 0, 0] = np.arange(103)  # a marker per image, to check disjointness
    train = normalize_images(raw)
    fit, validation, info = hold_out_validation(train, DataParams(), TuningParams(validation_size=25))
    assert len(validation) == 25 and len(fit) == 78
    assert info == {"mode": "holdout", "protocol": "rigorous", "validation_size": 25, "train_size": 78}
    counts = np.bincount(validation.labels, minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() <= 1
    markers = lambda split: set(np.rint(split.images[:, 0, 0, 0] * 255).astype(int))  # noqa: E731
    assert markers(fit).isdisjoint(markers(validation))
    assert markers(fit) | markers(validation) == set(range(103))
    again, _, _ = hold_out_validation(train, DataParams(), TuningParams(validation_size=25))
    np.testing.assert_array_equal(again.images, fit.images)  # deterministic from data.split_seed


def test_rigorous_holdout_larger_than_the_training_set_is_rejected():
    from activation_compare.params import TuningParams
    from activation_compare.pipelines.data_processing.nodes import hold_out_validation

    with pytest.raises(ValueError, match="tuning.validation_size=40 leaves no training images of the 40"):
        hold_out_validation(normalize_images(_raw(40)), DataParams(), TuningParams(validation_size=40))
