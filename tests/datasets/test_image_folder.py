"""Class-folder images from folders and .tar.gz archives."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib

import numpy as np
import pytest
from kedro.io import DatasetError
from PIL import Image

from activation_compare.datasets import (
    CIFAR10_CLASSES,
    ArchiveTooLargeError,
    CorruptArchiveError,
    DataSourceError,
    ImageFolderDataset,
    ImageLayoutError,
    InvalidImageError,
    SourceNotFoundError,
    TooManyImagesError,
    UnsafeArchiveError,
    _workers,
)
from activation_compare.datasets import _decode
from activation_compare.datasets._archive import ArchiveLimits


def check_splits(splits, tree, class_names) -> None:  # type: ignore[no-untyped-def]
    assert splits.class_names == class_names
    for split in ("train", "test"):
        images, labels = tree.expected(split, class_names)
        got = getattr(splits, split)
        assert got.images.dtype == np.uint8 and got.images.flags["C_CONTIGUOUS"]
        assert got.labels.dtype == np.int64
        np.testing.assert_array_equal(got.images, images)
        np.testing.assert_array_equal(got.labels, labels)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width``×``height``: enough for Image.open."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


# --- loading ---------------------------------------------------------------------


def test_png_folder_sorted_class_order(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(classes=("cat", "dog", "ant"))
    splits = ImageFolderDataset(str(tree.root), cache_dir=None).load()
    check_splits(splits, tree, ("ant", "cat", "dog"))
    assert len(splits.train) == 9 and len(splits.test) == 6
    assert "image folder" in splits.description and str(tree.root) in splits.description


def test_jpeg_folder_with_cifar_classes_uses_the_official_order(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    classes = tuple(reversed(CIFAR10_CLASSES))
    tree = make_image_tree(classes=classes, fmt="JPEG", per_class={"train": 1, "test": 1})
    splits = ImageFolderDataset(str(tree.root), cache_dir=None).load()
    check_splits(splits, tree, CIFAR10_CLASSES)
    assert splits.train.labels.tolist() == list(range(10))


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz"])
def test_jpeg_archive_under_a_top_folder(tmp_path, make_image_tree, tar_gz, suffix) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(fmt="JPEG", top="cifar10-jpeg")
    archive = tar_gz(
        tree.root / "cifar10-jpeg", tmp_path / f"images{suffix}", arcname="cifar10-jpeg"
    )
    splits = ImageFolderDataset(str(archive), cache_dir=None).load()
    check_splits(splits, tree, ("ant", "cat", "dog"))
    assert "image archive" in splits.description


def test_png_archive_at_the_root_ignores_hidden_files(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    (tree.root / "train" / "cat" / ".DS_Store").write_bytes(b"junk")
    (tree.root / "__MACOSX" / "train").mkdir(parents=True)
    (tree.root / "__MACOSX" / "train" / "._000.png").write_bytes(b"junk")
    (tree.root / "README.txt").write_text("not an image, outside train/ and test/")
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    check_splits(
        ImageFolderDataset(str(archive), cache_dir=None).load(), tree, ("ant", "cat", "dog")
    )
    check_splits(
        ImageFolderDataset(str(tree.root), cache_dir=None).load(), tree, ("ant", "cat", "dog")
    )


def test_folder_under_one_top_folder(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(top="data")
    splits = ImageFolderDataset(str(tree.root), cache_dir=None).load()
    check_splits(splits, tree, ("ant", "cat", "dog"))


def test_relative_path_resolves_against_the_working_directory(
    tmp_path, make_image_tree, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(name="imgs")
    monkeypatch.chdir(tmp_path)
    dataset = ImageFolderDataset("imgs", cache_dir="cache")
    assert dataset.exists()
    check_splits(dataset.load(), tree, ("ant", "cat", "dog"))
    assert list((tmp_path / "cache").glob("*.npz"))


def test_read_only_and_describe(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    dataset = ImageFolderDataset(str(tree.root), cache_dir=None, workers=0)
    assert dataset._describe() == {
        "path": str(tree.root),
        "cache_dir": None,
        "workers": 0,
        "max_images": ImageFolderDataset.DEFAULT_MAX_IMAGES,
    }
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save(dataset.load())
    assert not ImageFolderDataset(str(tree.root / "nope")).exists()


# --- cache -----------------------------------------------------------------------


def test_cache_is_used_and_invalidated_by_a_changed_folder(
    tmp_path, make_image_tree, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    cache = tmp_path / "cache"
    dataset = ImageFolderDataset(str(tree.root), cache_dir=str(cache))
    first = dataset.load()
    assert len(list(cache.glob("*.npz"))) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp file

    # A cache hit decodes nothing.
    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("decoded despite the cache")

    with monkeypatch.context() as patch:
        patch.setattr("activation_compare.datasets._decode.decode_batch", fail)
        cached = dataset.load()
    check_splits(cached, tree, first.class_names)

    # Changing one image invalidates the cache; the stale file is replaced.
    target = tree.root / "test" / "ant" / "000.png"
    new_pixels = np.full((32, 32, 3), 7, dtype=np.uint8)
    Image.fromarray(new_pixels).save(target)
    os.utime(target, ns=(1, 1))
    changed = dataset.load()
    np.testing.assert_array_equal(changed.test.images[0], new_pixels)
    assert len(list(cache.glob("*.npz"))) == 1


def test_cache_is_invalidated_by_a_changed_archive(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    dataset = ImageFolderDataset(str(archive), cache_dir=str(tmp_path / "cache"))
    assert len(dataset.load().train) == 9
    shutil.rmtree(tree.root / "train" / "dog")
    shutil.rmtree(tree.root / "test" / "dog")
    tar_gz(tree.root, archive)
    assert dataset.load().class_names == ("ant", "cat")


def test_a_corrupt_cache_is_ignored(tmp_path, make_image_tree, caplog) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    cache = tmp_path / "cache"
    dataset = ImageFolderDataset(str(tree.root), cache_dir=str(cache))
    dataset.load()
    (cache_file,) = cache.glob("*.npz")
    cache_file.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING):
        check_splits(dataset.load(), tree, ("ant", "cat", "dog"))
    assert "Ignoring unreadable image cache" in caplog.text


# --- parallel decoding ---------------------------------------------------------------


@pytest.fixture
def parallel(monkeypatch):  # type: ignore[no-untyped-def]
    """Decode in 2 worker processes even for a handful of images, 2 per chunk."""
    monkeypatch.setattr(ImageFolderDataset, "PARALLEL_MIN_IMAGES", 1)
    monkeypatch.setattr(ImageFolderDataset, "CHUNK_IMAGES", 2)


def test_parallel_decoding_matches(tmp_path, make_image_tree, tar_gz, parallel, caplog) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    with caplog.at_level(logging.INFO):
        check_splits(
            ImageFolderDataset(str(archive), cache_dir=None, workers=2).load(),
            tree,
            ("ant", "cat", "dog"),
        )
        check_splits(
            ImageFolderDataset(str(tree.root), cache_dir=None, workers=2).load(),
            tree,
            ("ant", "cat", "dog"),
        )
    assert "2 worker processes" in caplog.text
    assert "failed" not in caplog.text


def test_parallel_decoding_reports_bad_images(make_image_tree, parallel) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    (tree.root / "train" / "dog" / "001.png").write_bytes(b"not a png")
    with pytest.raises(InvalidImageError, match="001.png .* cannot be decoded"):
        ImageFolderDataset(str(tree.root), cache_dir=None, workers=2).load()


def test_broken_workers_fall_back_to_this_process(
    make_image_tree, parallel, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    monkeypatch.setattr(_workers, "_BOOTSTRAP", "import sys; sys.exit(3)")
    with caplog.at_level(logging.WARNING):
        splits = ImageFolderDataset(str(tree.root), cache_dir=None, workers=2).load()
    check_splits(splits, tree, ("ant", "cat", "dog"))
    assert "decoding in this process instead" in caplog.text


# --- bad inputs ---------------------------------------------------------------------


def test_missing_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SourceNotFoundError) as info:
        ImageFolderDataset(str(tmp_path / "nowhere")).load()
    message = str(info.value)
    assert "data.path=" in message and "nowhere" in message and "does not exist" in message
    assert "train/<class>/*" in message


def test_a_file_that_is_not_an_archive(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "images.zip"
    path.write_bytes(b"PK")
    with pytest.raises(DataSourceError, match=r"images.zip.* not a .tar.gz/.tgz archive"):
        ImageFolderDataset(str(path), cache_dir=None).load()


def test_no_train_or_test(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "imgs" / "photos").mkdir(parents=True)
    (tmp_path / "imgs" / "photos" / "a.png").write_bytes(b"x")
    with pytest.raises(ImageLayoutError) as info:
        ImageFolderDataset(str(tmp_path / "imgs"), cache_dir=None).load()
    message = str(info.value)
    assert "has no train/ or test/ folder" in message and "'photos'" in message
    assert "imgs" in message and "train/<class>/*" in message


def test_test_folder_missing(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(per_class={"train": 1})
    with pytest.raises(ImageLayoutError, match=r"has no test/ folder"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


def test_missing_class_folder(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    shutil.rmtree(tree.root / "test" / "dog")
    with pytest.raises(ImageLayoutError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert "test/ is missing the class folder(s) ['dog']" in message
    assert "expected the same class folders in both" in message


def test_train_and_test_with_different_classes(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    shutil.move(tree.root / "test" / "dog", tree.root / "test" / "eel")
    with pytest.raises(ImageLayoutError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert "['dog']" in message and "['eel']" in message and "different class folders" in message


def test_empty_class_folder(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    for image in (tree.root / "train" / "cat").iterdir():
        image.unlink()
    with pytest.raises(
        ImageLayoutError, match=r"class folder train/cat/ is empty; expected at least one image"
    ):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


def test_empty_class_folder_in_an_archive(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(top="top")
    for image in (tree.root / "top" / "test" / "ant").iterdir():
        image.unlink()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    with pytest.raises(ImageLayoutError, match=r"class folder top/test/ant/ is empty"):
        ImageFolderDataset(str(archive), cache_dir=None).load()


def test_nested_folder_and_stray_file(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    (tree.root / "train" / "cat" / "more").mkdir()
    with pytest.raises(ImageLayoutError, match=r"nested folder train/cat/more/"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    (tree.root / "train" / "cat" / "more").rmdir()
    (tree.root / "train" / "stray.png").write_bytes(b"x")
    with pytest.raises(ImageLayoutError, match=r"file train/stray.png directly in train/"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


def test_several_top_folders(tmp_path, make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree(top="a")
    shutil.copytree(tree.root / "a", tree.root / "b")
    with pytest.raises(ImageLayoutError, match=r"several top-level folders \['a', 'b'\]"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"this is not an image", "cannot be decoded as a PNG or JPEG image"),
        ("truncated", "cannot be decoded as a PNG image"),
        ("gif", "cannot be decoded as a PNG or JPEG image"),
    ],
)
def test_undecodable_image(make_image_tree, content, fragment) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    bad = tree.root / "train" / "dog" / "001.png"
    if content == "truncated":
        data = bad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif content == "gif":
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(bad, format="GIF")
    else:
        bad.write_bytes(content)
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert str(bad) in message and fragment in message and "data.path=" in message


def test_unreadable_image_file(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    bad = tree.root / "train" / "dog" / "001.png"
    bad.unlink()
    bad.symlink_to(tree.root / "does-not-exist.png")  # a dangling link: cannot be read
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert str(bad) in message and "cannot be read" in message and "data.path=" in message
    bad.unlink()
    os.mkfifo(bad)  # would block a reader forever: refused without opening it
    with pytest.raises(InvalidImageError, match="FIFO"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


@pytest.mark.parametrize(
    ("size", "mode", "fragment"),
    [
        ((28, 28), "RGB", "is 28×28 PNG (mode RGB), expected 32×32 RGB; resize it to 32×32"),
        ((32, 16), "RGB", "is 32×16 PNG (mode RGB), expected 32×32 RGB"),
        ((32, 32), "L", "in mode 'L', expected 8-bit 'RGB'"),
        ((32, 32), "RGBA", "in mode 'RGBA', expected 8-bit 'RGB'"),
        ((32, 32), "P", "in mode 'P', expected 8-bit 'RGB'"),
    ],
)
def test_image_not_32x32_rgb(make_image_tree, size, mode, fragment) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    bad = tree.root / "test" / "cat" / "000.png"
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).convert(mode).save(bad)
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert str(bad) in message and fragment in message
    assert "convert it to a 32×32 8-bit RGB" in message


def test_too_many_pixels_is_refused_before_decoding(make_image_tree, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    bad = tree.root / "test" / "cat" / "000.png"
    # The header claims 100,000 × 100,000 pixels; there is no pixel data at all.
    bad.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert str(bad) in message and "pixels" in message and "cap" in message
    # Our own cap, below Pillow's: checked from the header, before decoding.
    monkeypatch.setattr(ImageFolderDataset, "MAX_IMAGE_PIXELS", 2000)
    bad.write_bytes(png_header_only(50, 50))
    with pytest.raises(
        InvalidImageError, match="is 50×50 = 2,500 pixels, more than the cap of 2,000"
    ):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


def test_corrupt_archive(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(CorruptArchiveError) as info:
        ImageFolderDataset(str(archive), cache_dir=None).load()
    assert str(archive) in str(info.value) and "corrupt or truncated" in str(info.value)


@pytest.mark.parametrize(
    ("name", "kind", "fragment"),
    [
        ("/train/cat/x.png", tarfile.REGTYPE, "absolute path"),
        ("train/../../x.png", tarfile.REGTYPE, "'..'"),
        ("train/cat/link.png", tarfile.SYMTYPE, "symbolic link"),
        ("train/cat/hard.png", tarfile.LNKTYPE, "hard link"),
    ],
)
def test_unsafe_archive(tmp_path, make_image_tree, tar_gz, name, kind, fragment) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]
    evil = tarfile.TarInfo(name)
    evil.type = kind
    evil.linkname = "/etc/passwd" if kind != tarfile.REGTYPE else ""
    with tarfile.open(archive, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        tar.addfile(evil, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    with pytest.raises(UnsafeArchiveError) as info:
        ImageFolderDataset(str(archive), cache_dir=None).load()
    assert fragment in str(info.value) and str(archive) in str(info.value)
    assert not (tmp_path / "x.png").exists()


def test_too_many_members_and_too_large(tmp_path, make_image_tree, tar_gz, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    monkeypatch.setattr(
        ImageFolderDataset,
        "ARCHIVE_LIMITS",
        ArchiveLimits(max_members=5, max_total_bytes=10**9, max_member_bytes=10**6),
    )
    with pytest.raises(ArchiveTooLargeError, match="more than 5 members"):
        ImageFolderDataset(str(archive), cache_dir=None).load()
    monkeypatch.setattr(
        ImageFolderDataset,
        "ARCHIVE_LIMITS",
        ArchiveLimits(max_members=1000, max_total_bytes=5_000, max_member_bytes=10**6),
    )
    with pytest.raises(ArchiveTooLargeError, match="more than 5,000 bytes uncompressed"):
        ImageFolderDataset(str(archive), cache_dir=None).load()


# --- refused before decoding -----------------------------------------------------


@pytest.fixture
def no_decoding(monkeypatch):  # type: ignore[no-untyped-def]
    """Fail the test if a single image reaches the decoder."""

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("an image was decoded before the source was refused")

    monkeypatch.setattr(_decode, "decode_batch", refuse)
    monkeypatch.setattr(_decode, "decode_one", refuse)


def test_too_many_images_in_an_archive_refused_before_decoding(
    tmp_path, make_image_tree, tar_gz, no_decoding
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    images = sum(len(files) for split in tree.images.values() for files in split.values())
    with pytest.raises(TooManyImagesError) as info:
        ImageFolderDataset(str(archive), cache_dir=None, max_images=images - 1).load()
    message = str(info.value)
    assert f"more than data.max_images={images - 1}" in message and str(archive) in message
    assert "--params data.max_images=" in message


def test_too_many_images_in_a_folder_refused_before_decoding(make_image_tree, no_decoding) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    with pytest.raises(TooManyImagesError, match=r"holds \d+ images, more than data.max_images=2"):
        ImageFolderDataset(str(tree.root), cache_dir=None, max_images=2).load()


def test_max_images_must_be_positive(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    with pytest.raises(DataSourceError, match="data.max_images=0 must be a positive integer"):
        ImageFolderDataset(str(tree.root), max_images=0)


@pytest.mark.parametrize(
    ("size", "fragment"),
    [((64, 48), "is a 64×48 PNG (3,072 pixels, read from its header before decoding)"),
     ((100_000, 100_000), "is a 100000×100000 PNG (10,000,000,000 pixels")],
)
def test_an_oversized_image_in_an_archive_is_refused_from_its_header(
    tmp_path, make_image_tree, tar_gz, no_decoding, size, fragment
) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    (tree.root / "train" / "cat" / "000.png").write_bytes(png_header_only(*size))
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(archive), cache_dir=None).load()
    message = str(info.value)
    assert "train/cat/000.png (in the archive)" in message and fragment in message


def test_a_corrupt_image_in_an_archive_is_named(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    (tree.root / "test" / "dog" / "001.png").write_bytes(b"not an image at all")
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    with pytest.raises(InvalidImageError) as info:
        ImageFolderDataset(str(archive), cache_dir=None).load()
    message = str(info.value)
    assert "test/dog/001.png (in the archive)" in message and "BytesIO" not in message
    assert "no readable PNG or JPEG header" in message


def test_a_corrupt_image_message_never_quotes_a_buffer() -> None:
    with pytest.raises(_decode.ImageProblem) as info:
        _decode.decode_one(b"GIF89a not really", 32 * 32, 10_000)
    assert "BytesIO" not in str(info.value) and "GIF89a" in str(info.value)


def test_header_size_reads_png_and_jpeg_without_decoding() -> None:
    for fmt in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(buffer, format=fmt)
        assert _decode.header_size(buffer.getvalue()) == (fmt, 30, 20)
    assert _decode.header_size(png_header_only(7, 9)) == ("PNG", 7, 9)
    assert _decode.header_size(b"\xff\xd8\xff\xda\x00\x02") is None
    assert _decode.header_size(b"hello") is None


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM (Linux)")
def test_a_200000_member_archive_is_refused_in_seconds_and_little_memory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 15.2's bomb: 200,000 tiny valid PNGs (3.5 MB gzipped), read by a fresh process."""
    png = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png, format="PNG")
    data = png.getvalue()
    archive = tmp_path / "bomb.tar.gz"
    with gzip.open(archive, "wb", compresslevel=1) as stream, tarfile.open(
        fileobj=stream, mode="w|", format=tarfile.USTAR_FORMAT
    ) as tar:
        for i in range(200_000):
            info = tarfile.TarInfo(f"train/c{i % 10}/{i:06d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    script = (
        "import json, sys, time\n"
        "from activation_compare.datasets import ImageFolderDataset\n"
        "started = time.perf_counter()\n"
        "try:\n"
        "    ImageFolderDataset(sys.argv[1], cache_dir=None).load()\n"
        "    error = None\n"
        "except Exception as exc:\n"
        "    error = f'{type(exc).__name__}: {exc}'\n"
        # VmHWM, not getrusage: Linux carries ru_maxrss over from the (large) pytest
        # process across fork and exec; VmHWM is this process's own peak.
        "peak = next(int(line.split()[1]) for line in open('/proc/self/status')\n"
        "            if line.startswith('VmHWM:'))\n"
        "print(json.dumps({'error': error, 'seconds': time.perf_counter() - started,\n"
        "    'max_rss_mib': peak / 1024}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(archive)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["error"] and report["error"].startswith("TooManyImagesError")
    assert "more than data.max_images=100,000" in report["error"]
    # ~3 s on an idle 2-core machine; the bound leaves room for a loaded CI host.
    assert report["seconds"] < 30, report
    assert report["max_rss_mib"] < 300, report


def test_train_images_of_an_archive_come_from_its_cache(tmp_path, make_image_tree, tar_gz) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    dataset = ImageFolderDataset(str(archive), cache_dir=str(tmp_path / "cache"))
    assert dataset.train_images() is None  # no cache yet: not read twice
    splits = dataset.load()
    assert dataset.train_images() == len(splits.train) == 9
    assert ImageFolderDataset(str(tree.root), cache_dir=None).train_images() == 9
