"""Parsing the official CIFAR-10 binary format (on small generated archives)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError

from activation_compare.datasets import (
    CIFAR10_CLASSES,
    CIFAR10_MD5,
    CIFAR10_SIZE,
    CIFAR10_URL,
    ChecksumError,
    Cifar10BinaryDataset,
    CorruptArchiveError,
    UnsafeArchiveError,
)
from activation_compare.datasets._download import file_md5


def load(archive, **kwargs):  # type: ignore[no-untyped-def]
    return Cifar10BinaryDataset(
        archive_path=str(archive.path), **archive.overrides(), **kwargs
    ).load()


def test_defaults_are_the_official_archive() -> None:
    assert CIFAR10_URL == "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    assert (CIFAR10_MD5, CIFAR10_SIZE) == ("c32a1d4ab5d03f1284b67883e8d87530", 170_052_171)
    described = Cifar10BinaryDataset()._describe()
    assert described["url"] == CIFAR10_URL and described["md5"] == CIFAR10_MD5


def test_parses_records_into_channels_last(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    splits = load(archive)

    assert splits.class_names == CIFAR10_CLASSES
    for split, images, labels in (
        (splits.train, archive.train_images, archive.train_labels),
        (splits.test, archive.test_images, archive.test_labels),
    ):
        assert split.images.dtype == np.uint8 and split.images.shape[1:] == (32, 32, 3)
        assert split.images.flags["C_CONTIGUOUS"]
        assert split.labels.dtype == np.int64
        np.testing.assert_array_equal(split.images, images)
        np.testing.assert_array_equal(split.labels, labels)
    assert len(splits.train) == 100 and len(splits.test) == 20
    assert archive.md5 in splits.description


def test_pixel_placement_in_a_hand_made_record(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    # One record built byte by byte: label 7; R plane value 11 at (row 2, col 5),
    # G plane 22 at (row 31, col 0), B plane 33 at (row 0, col 31).
    record = bytearray(3073)
    record[0] = 7
    record[1 + 0 * 1024 + 2 * 32 + 5] = 11
    record[1 + 1 * 1024 + 31 * 32 + 0] = 22
    record[1 + 2 * 1024 + 0 * 32 + 31] = 33
    archive = make_cifar_archive(member_data={"test_batch.bin": bytes(record)})
    test = load(archive).test
    assert test.labels.tolist() == [7]
    image = test.images[0]
    assert image[2, 5, 0] == 11 and image[31, 0, 1] == 22 and image[0, 31, 2] == 33
    assert int(image.sum()) == 11 + 22 + 33


def test_class_names_come_from_the_meta_file(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    names = "\n".join(f"class_{i}" for i in range(10))
    archive = make_cifar_archive(meta=f"\n  {names}\n\n\n")
    assert load(archive).class_names == tuple(f"class_{i}" for i in range(10))


def test_wrong_md5(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    dataset = Cifar10BinaryDataset(archive_path=str(archive.path), md5="f" * 32, size=archive.size)
    with pytest.raises(ChecksumError) as info:
        dataset.load()
    message = str(info.value)
    assert str(archive.path) in message
    assert f"MD5 {archive.md5}, expected {'f' * 32}" in message
    assert "check the file given as data.path" in message


def test_wrong_size_in_the_download_folder(tmp_path, make_cifar_archive, no_network) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive(folder=tmp_path / "raw")
    dataset = Cifar10BinaryDataset(
        download_dir=str(tmp_path / "raw"), md5=archive.md5, size=archive.size + 1
    )
    with pytest.raises(ChecksumError) as info:
        dataset.load()
    message = str(info.value)
    assert f"has {archive.size:,} bytes, expected {archive.size + 1:,}" in message
    assert "delete it and rerun" in message
    assert no_network == []


def test_truncated_archive(tmp_path, make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.path.read_bytes()[: archive.size // 2])
    # The checksums of the cut file itself, so that parsing is reached.
    dataset = Cifar10BinaryDataset(archive_path=str(cut), md5=file_md5(cut), size=cut.stat().st_size)
    with pytest.raises(CorruptArchiveError) as info:
        dataset.load()
    assert str(cut) in str(info.value) and "corrupt or truncated" in str(info.value)


def test_records_not_a_multiple_of_3073(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive(member_data={"data_batch_2.bin": b"\0" * (3073 * 2 + 5)})
    with pytest.raises(CorruptArchiveError) as info:
        load(archive)
    message = str(info.value)
    assert "cifar-10-batches-bin/data_batch_2.bin" in message
    assert "6,151 bytes" in message and "3,073" in message


def test_label_beyond_the_classes(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    record = bytearray(3073 * 2)
    record[3073] = 10  # the second record's label; the meta file names 10 classes
    archive = make_cifar_archive(member_data={"test_batch.bin": bytes(record)})
    with pytest.raises(CorruptArchiveError) as info:
        load(archive)
    message = str(info.value)
    assert "test_batch.bin" in message and "record 1 has label 10" in message
    assert "10 classes" in message


def test_missing_member(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive(member_data={"data_batch_4.bin": None})
    with pytest.raises(CorruptArchiveError) as info:
        load(archive)
    message = str(info.value)
    assert "cifar-10-batches-bin/data_batch_4.bin" in message and "lacks" in message
    assert str(archive.path) in message


def test_empty_meta_file(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive(meta="\n \n")
    with pytest.raises(CorruptArchiveError, match="batches.meta.txt lists no class names"):
        load(archive)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/cifar-10-batches-bin/x", tarfile.REGTYPE),
        ("../x", tarfile.REGTYPE),
        ("ln", tarfile.SYMTYPE),
    ],
)
def test_unsafe_member(tmp_path, name, kind) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(info, io.BytesIO(b""))
    dataset = Cifar10BinaryDataset(archive_path=str(path), md5=file_md5(path), size=path.stat().st_size)
    with pytest.raises(UnsafeArchiveError, match="Refusing archive"):
        dataset.load()


def test_read_only(make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    dataset = Cifar10BinaryDataset(archive_path=str(archive.path), **archive.overrides())
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(dataset.load())


def test_cache_roundtrip_and_invalidation(tmp_path, make_cifar_archive) -> None:  # type: ignore[no-untyped-def]
    archive = make_cifar_archive()
    cache = tmp_path / "cache"
    first = load(archive, cache_dir=str(cache))
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not list(cache.glob(".*"))  # no temporary file left
    second = load(archive, cache_dir=str(cache))
    np.testing.assert_array_equal(first.train.images, second.train.images)
    np.testing.assert_array_equal(first.test.labels, second.test.labels)
    assert second.class_names == first.class_names

    # A cache that the parser did not write is not trusted once the key changes:
    # touching the archive (new mtime) makes a new cache entry and drops the old one.
    os.utime(archive.path, ns=(1, 1))
    load(archive, cache_dir=str(cache))
    assert [p.name for p in cache.glob("*.npz")] != [p.name for p in files]
    assert len(list(cache.glob("*.npz"))) == 1


def test_relative_paths_resolve_against_the_working_directory(
    tmp_path: Path,
    make_cifar_archive,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    archive = make_cifar_archive(folder=tmp_path / "data" / "01_raw")
    monkeypatch.chdir(tmp_path)
    dataset = Cifar10BinaryDataset(**archive.overrides())  # download_dir="data/01_raw"
    assert dataset.exists()
    assert len(dataset.load().train) == 100
