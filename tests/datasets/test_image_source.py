"""The catalog's image source: ``data.source`` and ``data.path`` pick the dataset."""

from __future__ import annotations

import numpy as np
import pytest
from kedro.io import DataCatalog, DatasetError

from activation_compare.datasets import (
    ChecksumError,
    Cifar10BinaryDataset,
    DataSourceError,
    ImageFolderDataset,
    ImageSourceDataset,
    SourceNotFoundError,
    SyntheticImageDataset,
    UnknownSourceError,
)


def test_unknown_source_fails_at_construction() -> None:
    with pytest.raises(UnknownSourceError) as info:
        ImageSourceDataset(source="imagenet")
    assert str(info.value) == (
        "data.source='imagenet' is not a known source; "
        "choose one of cifar10, image_folder, synthetic"
    )


def test_unknown_source_through_the_catalog() -> None:
    config = {
        "raw_images": {"type": "activation_compare.datasets.ImageSourceDataset", "source": "x"}
    }
    with pytest.raises(DatasetError, match="data.source='x' is not a known source"):
        DataCatalog.from_config(config)["raw_images"]


def test_image_folder_needs_a_path() -> None:
    with pytest.raises(SourceNotFoundError) as info:
        ImageSourceDataset(source="image_folder", path=None)
    message = str(info.value)
    assert "data.path" in message and "data.source='image_folder'" in message
    assert "train/<class>/*" in message


def test_image_folder_missing_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dataset = ImageSourceDataset(source="image_folder", path=str(tmp_path / "gone"))
    assert not dataset.exists()
    with pytest.raises(SourceNotFoundError, match=r"data.path='.*gone' does not exist"):
        dataset.load()


def test_image_folder_delegation_with_relative_paths(
    tmp_path, make_image_tree, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(name="imgs")
    monkeypatch.chdir(tmp_path)
    dataset = ImageSourceDataset(source="image_folder", path="imgs", cache_dir="cache")
    assert isinstance(dataset.dataset, ImageFolderDataset)
    splits = dataset.load()
    assert splits.class_names == ("ant", "cat", "dog")
    images, labels = tree.expected("train", splits.class_names)
    np.testing.assert_array_equal(splits.train.images, images)
    np.testing.assert_array_equal(splits.train.labels, labels)
    assert list((tmp_path / "cache").glob("*.npz"))


def test_cifar10_delegation(tmp_path, make_cifar_archive, no_network) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    dataset = ImageSourceDataset(
        source="cifar10", path=str(archive.path), cache_dir=str(tmp_path / "cache")
    )
    assert isinstance(dataset.dataset, Cifar10BinaryDataset)
    assert dataset.dataset.archive == archive.path
    assert dataset.dataset._describe()["cache_dir"] == str(tmp_path / "cache")
    assert dataset.exists()
    # A generated archive is not the official one: the checksum check says so.
    with pytest.raises(ChecksumError, match=str(archive.path)):
        dataset.load()
    missing = ImageSourceDataset(source="cifar10", path=str(tmp_path / "none.tar.gz"))
    with pytest.raises(SourceNotFoundError, match=r"data.path='.*none.tar.gz' does not exist"):
        missing.load()
    assert no_network == []


def test_cifar10_without_path_uses_the_download_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dataset = ImageSourceDataset(source="cifar10", path=None, download_dir=str(tmp_path / "raw"))
    assert dataset.dataset.archive == tmp_path / "raw" / "cifar-10-binary.tar.gz"  # type: ignore[attr-defined]
    assert not dataset.exists()


def test_synthetic_through_the_catalog() -> None:
    config = {
        "raw_images": {
            "type": "activation_compare.datasets.ImageSourceDataset",
            "source": "synthetic",
            "path": None,
            "synthetic": {"n_train": 30, "n_test": 10, "seed": 1},
        }
    }
    catalog = DataCatalog.from_config(config)
    splits = catalog.load("raw_images")
    expected = SyntheticImageDataset(n_train=30, n_test=10, seed=1).load()
    assert splits.train.images.tobytes() == expected.train.images.tobytes()
    assert len(splits.test) == 10


def test_synthetic_with_an_unknown_option() -> None:
    with pytest.raises(DataSourceError, match=r"synthetic=\{'n_images': 3\} has an unknown option"):
        ImageSourceDataset(source="synthetic", synthetic={"n_images": 3})


def test_read_only() -> None:
    dataset = ImageSourceDataset(source="synthetic", synthetic={"n_train": 10, "n_test": 10})
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(dataset.load())
    assert "source='synthetic'" in repr(dataset)
