"""The .npz cache of decoded splits: atomic, pickle-free, keyed."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from activation_compare.datasets import _cache
from activation_compare.datasets.types import ImageSplits, LabelledImages


def splits(seed: int = 0) -> ImageSplits:
    rng = np.random.default_rng(seed)
    return ImageSplits(
        train=LabelledImages(
            rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.arange(4) % 2
        ),
        test=LabelledImages(rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), np.array([1, 0])),
        class_names=("a", "b"),
        description="test",
    )


def test_roundtrip_without_pickle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = _cache.cache_path(tmp_path, "demo", "source", "key-1")
    _cache.save_splits(path, "key-1", splits())
    loaded = _cache.load_splits(path, "key-1", "from cache")
    assert loaded is not None and loaded.description == "from cache"
    np.testing.assert_array_equal(loaded.train.images, splits().train.images)
    assert loaded.train.labels.dtype == np.int64 and loaded.class_names == ("a", "b")
    with np.load(path, allow_pickle=False) as npz:  # readable without pickle
        assert npz["class_names"].dtype.kind == "U"
    assert os.listdir(tmp_path) == [path.name]


def test_another_key_is_a_miss_and_replaces_the_stale_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = _cache.cache_path(tmp_path, "demo", "source", "key-1")
    _cache.save_splits(old, "key-1", splits())
    assert _cache.load_splits(old, "key-2", "") is None
    new = _cache.cache_path(tmp_path, "demo", "source", "key-2")
    assert new != old
    _cache.save_splits(new, "key-2", splits(1))
    assert sorted(os.listdir(tmp_path)) == [new.name]


def test_an_interrupted_write_leaves_nothing(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = _cache.cache_path(tmp_path, "demo", "source", "key")

    def broken(handle, **arrays):  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(KeyboardInterrupt):
        _cache.save_splits(path, "key", splits())
    assert os.listdir(tmp_path) == []


def test_an_unwritable_cache_only_warns(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING):
        _cache.save_splits(blocker / "demo.npz", "key", splits())
    assert "Could not write the image cache" in caplog.text


def test_wrong_arrays_are_ignored(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((1, 8, 8, 3), np.uint8))
    with caplog.at_level(logging.WARNING):
        assert _cache.load_splits(path, "key", "") is None


def test_files_get_the_usual_permissions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0o022)
    try:
        path = _cache.cache_path(tmp_path, "demo", "source", "key")
        _cache.save_splits(path, "key", splits())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
