"""Downloading the CIFAR-10 archive from a real (local) HTTP server."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from activation_compare.datasets import (
    ChecksumError,
    Cifar10BinaryDataset,
    DownloadError,
    SourceNotFoundError,
)
from activation_compare.datasets._download import download


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_downloads_when_missing(tmp_path, make_cifar_archive, file_server, capsys) -> None:  # type: ignore[no-untyped-def]
    source = make_cifar_archive(folder=tmp_path / "server")
    url = file_server.serve("/cifar-10-binary.tar.gz", source.path.read_bytes())
    download_dir = tmp_path / "raw"
    dataset = Cifar10BinaryDataset(download_dir=str(download_dir), url=url, **source.overrides())
    assert not dataset.exists()

    splits = dataset.load()

    assert file_server.requests == ["/cifar-10-binary.tar.gz"]
    assert leftovers(download_dir) == ["cifar-10-binary.tar.gz"]  # no temporary file
    assert (download_dir / "cifar-10-binary.tar.gz").read_bytes() == source.path.read_bytes()
    np.testing.assert_array_equal(splits.train.images, source.train_images)
    assert dataset.exists()
    assert "cifar-10-binary.tar.gz" in capsys.readouterr().err  # the tqdm progress bar

    # Present now: a second load does not download again.
    dataset.load()
    assert len(file_server.requests) == 1


def test_present_archive_is_not_downloaded(tmp_path, make_cifar_archive, file_server) -> None:  # type: ignore[no-untyped-def]
    local = make_cifar_archive(folder=tmp_path / "raw")
    url = file_server.serve("/cifar-10-binary.tar.gz", b"never served")
    dataset = Cifar10BinaryDataset(download_dir=str(tmp_path / "raw"), url=url, **local.overrides())
    assert len(dataset.load().train) == 100
    assert file_server.requests == []


def test_archive_path_is_never_downloaded(tmp_path, make_cifar_archive, file_server) -> None:  # type: ignore[no-untyped-def]
    local = make_cifar_archive(name="my-copy.tar.gz")
    url = file_server.serve("/cifar-10-binary.tar.gz", local.path.read_bytes())
    dataset = Cifar10BinaryDataset(
        archive_path=str(local.path),
        download_dir=str(tmp_path / "raw"),
        url=url,
        **local.overrides(),
    )
    assert len(dataset.load().test) == 20
    missing = Cifar10BinaryDataset(
        archive_path=str(tmp_path / "absent.tar.gz"),
        download_dir=str(tmp_path / "raw"),
        url=url,
        **local.overrides(),
    )
    with pytest.raises(SourceNotFoundError) as info:
        missing.load()
    message = str(info.value)
    assert "data.path=" in message and "absent.tar.gz" in message and "does not exist" in message
    assert file_server.requests == []
    assert leftovers(tmp_path / "raw") == []


def test_interrupted_download_leaves_nothing(tmp_path, make_cifar_archive, file_server) -> None:  # type: ignore[no-untyped-def]
    source = make_cifar_archive(folder=tmp_path / "server")
    body = source.path.read_bytes()
    url = file_server.serve("/cut.tar.gz", body, send=len(body) // 3)  # then closes
    download_dir = tmp_path / "raw"
    dataset = Cifar10BinaryDataset(download_dir=str(download_dir), url=url, **source.overrides())
    with pytest.raises(DownloadError) as info:
        dataset.load()
    message = str(info.value)
    assert url in message
    assert f"of the {len(body):,} bytes" in message or "failed after" in message
    assert "nothing was saved" in message and "rerun" in message
    assert leftovers(download_dir) == []  # neither the final name nor a temporary file


def test_wrong_checksum_download_leaves_nothing(tmp_path, make_cifar_archive, file_server) -> None:  # type: ignore[no-untyped-def]
    source = make_cifar_archive(folder=tmp_path / "server")
    url = file_server.serve("/cifar-10-binary.tar.gz", source.path.read_bytes())
    download_dir = tmp_path / "raw"
    dataset = Cifar10BinaryDataset(
        download_dir=str(download_dir), url=url, md5="0" * 32, size=source.size
    )
    with pytest.raises(ChecksumError) as info:
        dataset.load()
    message = str(info.value)
    assert f"MD5 {source.md5}, expected {'0' * 32}" in message
    assert url in message and "nothing was saved" in message
    assert leftovers(download_dir) == []


def test_wrong_size_download_leaves_nothing(tmp_path, make_cifar_archive, file_server) -> None:  # type: ignore[no-untyped-def]
    source = make_cifar_archive(folder=tmp_path / "server")
    url = file_server.serve("/cifar-10-binary.tar.gz", source.path.read_bytes())
    download_dir = tmp_path / "raw"
    for size in (source.size + 10, source.size - 10):
        with pytest.raises(ChecksumError) as info:
            download(url, download_dir / "x.tar.gz", size=size, md5=source.md5)
        assert f"expected {size:,}" in str(info.value)
        assert leftovers(download_dir) == []


def test_http_error_is_reported(tmp_path, file_server) -> None:  # type: ignore[no-untyped-def]
    url = file_server.base_url + "/missing.tar.gz"
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "raw" / "x.tar.gz", size=10, md5="0" * 32)
    message = str(info.value)
    assert url in message and "404" in message and "data.path" in message
    assert leftovers(tmp_path / "raw") == []


def test_rejects_non_http_urls() -> None:
    with pytest.raises(Exception, match="http:// or https://"):
        Cifar10BinaryDataset(url="file:///etc/passwd")


def test_downloaded_file_gets_the_usual_permissions(
    tmp_path, make_cifar_archive, file_server
) -> None:  # type: ignore[no-untyped-def]
    source = make_cifar_archive(folder=tmp_path / "server")
    url = file_server.serve("/a.tar.gz", source.path.read_bytes())
    old = os.umask(0o022)
    try:
        download(url, tmp_path / "raw" / "a.tar.gz", size=source.size, md5=source.md5)
    finally:
        os.umask(old)
    assert (tmp_path / "raw" / "a.tar.gz").stat().st_mode & 0o777 == 0o644
