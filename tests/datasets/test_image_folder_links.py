"""Image folders stay inside ``data.path``; ``data.max_images`` holds with a cache (issue 22)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from activation_compare.datasets.errors import (
    DataSourceError,
    TooManyImagesError,
    UnsafeLinkError,
)
from activation_compare.datasets.image_folder import ImageFolderDataset


def test_link_to_an_image_outside_the_folder_is_refused(  # type: ignore[no-untyped-def]
    make_image_tree, tmp_path: Path
) -> None:
    tree = make_image_tree()
    elsewhere = tmp_path / "elsewhere.png"
    shutil.copy(tree.root / "train" / "cat" / "000.png", elsewhere)
    link = tree.root / "train" / "cat" / "999.png"
    link.symlink_to(elsewhere)  # a valid image: today it silently becomes training data
    with pytest.raises(UnsafeLinkError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert str(link) in message and "outside the folder" in message and "data.path=" in message


def test_link_to_a_folder_outside_is_refused(  # type: ignore[no-untyped-def]
    make_image_tree, tmp_path: Path
) -> None:
    tree = make_image_tree()
    outside = tmp_path / "outside_cats"
    shutil.move(str(tree.root / "test" / "cat"), outside)
    (tree.root / "test" / "cat").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeLinkError, match="outside the folder"):
        ImageFolderDataset(str(tree.root), cache_dir=None).load()


def test_link_to_a_secret_never_echoes_its_contents(  # type: ignore[no-untyped-def]
    make_image_tree, tmp_path: Path
) -> None:
    tree = make_image_tree()
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tree.root / "train" / "dog" / "007.png").symlink_to(secret)
    with pytest.raises(DataSourceError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    assert isinstance(info.value, UnsafeLinkError)
    assert "root:x" not in str(info.value) and "root:" not in str(info.value)


def test_a_non_image_file_in_the_folder_is_named_not_quoted(  # type: ignore[no-untyped-def]
    make_image_tree
) -> None:
    tree = make_image_tree()
    (tree.root / "train" / "dog" / "001.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(DataSourceError) as info:
        ImageFolderDataset(str(tree.root), cache_dir=None).load()
    message = str(info.value)
    assert "001.png" in message and "root:" not in message


def test_links_inside_the_folder_are_kept(make_image_tree) -> None:  # type: ignore[no-untyped-def]
    tree = make_image_tree()
    inside = tree.root / "train" / "cat" / "000.png"
    (tree.root / "train" / "cat" / "005.png").symlink_to(inside)
    splits = ImageFolderDataset(str(tree.root), cache_dir=None).load()
    assert len(splits.train) == 3 * 3 + 1


def test_max_images_holds_with_an_existing_cache(  # type: ignore[no-untyped-def]
    make_image_tree, tmp_path: Path
) -> None:
    tree = make_image_tree(per_class={"train": 10, "test": 5})  # 45 images
    cache = tmp_path / "cache"
    assert len(ImageFolderDataset(str(tree.root), cache_dir=str(cache)).load().train) == 30
    assert any(cache.iterdir())
    refusal = r"holds 45 images, more than data.max_images=20"
    for cache_dir in (None, str(cache)):  # the same refusal whether or not a cache exists
        with pytest.raises(TooManyImagesError, match=refusal):
            ImageFolderDataset(str(tree.root), cache_dir=cache_dir, max_images=20).load()


def test_max_images_holds_with_an_existing_archive_cache(  # type: ignore[no-untyped-def]
    make_image_tree, tar_gz, tmp_path: Path
) -> None:
    tree = make_image_tree(per_class={"train": 10, "test": 5})
    archive = tar_gz(tree.root, tmp_path / "images.tar.gz")
    cache = tmp_path / "cache"
    ImageFolderDataset(str(archive), cache_dir=str(cache)).load()
    with pytest.raises(TooManyImagesError, match="data.max_images=20"):
        ImageFolderDataset(str(archive), cache_dir=str(cache), max_images=20).load()
