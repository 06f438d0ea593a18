import numpy as np
import pytest

from activation_compare.datasets.types import ImageSplits, LabelledImages
from activation_compare.params import DataParams
from activation_compare.pipelines.data_ingestion.nodes import select_splits, stratified_subsample


def _images(labels):
    labels = np.asarray(labels, dtype=np.int64)
    images = np.arange(len(labels) * 32 * 32 * 3, dtype=np.uint64).reshape(len(labels), 32, 32, 3)
    return LabelledImages(images=(images % 251).astype(np.uint8), labels=labels)


def test_stratified_subsample_keeps_class_proportions_and_order():
    data = _images([0] * 60 + [1] * 30 + [2] * 10)
    sample = stratified_subsample(data, 20, seed=0, split="train")
    assert len(sample) == 20
    assert np.bincount(sample.labels).tolist() == [12, 6, 2]
    assert sample.images.dtype == np.uint8
    # Images travel with their labels and keep the source order.
    firsts = sample.images[:, 0, 0, 0]
    positions = [int(np.flatnonzero(data.images[:, 0, 0, 0] == f)[0]) for f in firsts]
    assert positions == sorted(positions)


def test_stratified_subsample_is_exact_when_shares_round():
    data = _images([0] * 7 + [1] * 7 + [2] * 7)
    assert len(stratified_subsample(data, 10, seed=1, split="train")) == 10


def test_stratified_subsample_is_deterministic():
    data = _images(np.arange(200) % 10)
    a = stratified_subsample(data, 50, seed=3, split="test")
    b = stratified_subsample(data, 50, seed=3, split="test")
    np.testing.assert_array_equal(a.images, b.images)


def test_no_limit_returns_the_data_unchanged():
    data = _images(np.arange(30) % 10)
    assert stratified_subsample(data, None, seed=0, split="train") is data
    assert stratified_subsample(data, 500, seed=0, split="train") is data


def test_limit_below_class_count_is_rejected():
    data = _images(np.arange(30) % 10)
    with pytest.raises(ValueError, match=r"data.limit_train=5 .* 10 classes"):
        stratified_subsample(data, 5, seed=0, split="train")


def test_select_splits_applies_both_limits():
    source = ImageSplits(
        train=_images(np.arange(100) % 10),
        test=_images(np.arange(50) % 10),
        class_names=tuple("abcdefghij"),
        description="test data",
    )
    train, test, names = select_splits(source, DataParams(limit_train=40, limit_test=20))
    assert (len(train), len(test)) == (40, 20)
    assert names == list("abcdefghij")
