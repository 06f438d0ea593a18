"""The archive safety rules shared by the CIFAR-10 and image-folder readers."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError

from activation_compare.datasets._archive import (
    ArchiveLimits,
    iter_archive,
    normalise_member_name,
)
from activation_compare.datasets.errors import (
    ArchiveTooLargeError,
    CorruptArchiveError,
    SourceNotFoundError,
    UnsafeArchiveError,
)

LIMITS = ArchiveLimits(max_members=100, max_total_bytes=10_000, max_member_bytes=5_000)


def build(
    path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tar:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tar.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def read_all(path: Path, limits: ArchiveLimits = LIMITS) -> dict[str, bytes | None]:
    return {e.name: e.data for e in iter_archive(path, limits, lambda name: True)}


def test_reads_files_and_folders(tmp_path: Path) -> None:
    archive = build(
        tmp_path / "ok.tar.gz",
        [special("top", tarfile.DIRTYPE), ("./top/a.txt", b"alpha"), ("top//b.txt", b"beta")],
    )
    entries = list(iter_archive(archive, LIMITS, lambda name: name.endswith("a.txt")))
    assert [(e.name, e.is_dir, e.data) for e in entries] == [
        ("top", True, None),
        ("top/a.txt", False, b"alpha"),
        ("top/b.txt", False, None),  # not wanted: skipped, not read
    ]


def test_reads_plain_tar(tmp_path: Path) -> None:
    archive = build(tmp_path / "plain.tar", [("x.bin", b"123")], mode="w")
    assert read_all(archive) == {"x.bin": b"123"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("a/b", "a/b"), ("./a/./b/", "a/b"), (".", ""), ("a//b", "a/b")],
)
def test_normalise_member_name(raw: str, expected: str) -> None:
    assert normalise_member_name(Path("x.tar.gz"), raw) == expected


@pytest.mark.parametrize(
    ("member", "fragment"),
    [
        (("/etc/passwd", b"x"), "absolute path"),
        (("C:/windows/x", b"x"), "absolute path"),
        (("../escape.txt", b"x"), "'..'"),
        (("train/../../escape.txt", b"x"), "'..'"),
        (("train\\cat\\x.png", b"x"), "backslash"),
        (special("link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link (to '/etc/passwd')"),
        (special("hard", tarfile.LNKTYPE, "other"), "hard link (to 'other')"),
        (special("dev", tarfile.CHRTYPE), "device file"),
        (special("blk", tarfile.BLKTYPE), "device file"),
        (special("pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_refuses_unsafe_members(tmp_path: Path, member, fragment: str) -> None:  # type: ignore[no-untyped-def]
    archive = build(tmp_path / "evil.tar.gz", [("fine.txt", b"ok"), member])
    with pytest.raises(UnsafeArchiveError) as info:
        read_all(archive)
    message = str(info.value)
    assert fragment in message
    assert str(archive) in message
    assert isinstance(info.value, DatasetError)


def test_refuses_too_many_members(tmp_path: Path) -> None:
    archive = build(tmp_path / "many.tar.gz", [(f"f{i}", b"") for i in range(6)])
    limits = ArchiveLimits(max_members=5, max_total_bytes=10_000, max_member_bytes=5_000)
    with pytest.raises(ArchiveTooLargeError, match="more than 5 members") as info:
        read_all(archive, limits)
    assert str(archive) in str(info.value)


def test_refuses_too_much_data_in_total(tmp_path: Path) -> None:
    archive = build(tmp_path / "big.tar.gz", [(f"f{i}", b"\0" * 4_000) for i in range(3)])
    with pytest.raises(ArchiveTooLargeError, match="uncompressed") as info:
        read_all(archive)
    assert "decompression bomb" in str(info.value)


def test_refuses_a_member_over_the_per_file_cap(tmp_path: Path) -> None:
    archive = build(tmp_path / "one_big.tar.gz", [("huge.bin", b"\0" * 6_000)])
    with pytest.raises(ArchiveTooLargeError, match="'huge.bin' is .* more than the cap"):
        read_all(archive)


def test_caps_the_decompressed_stream_itself(tmp_path: Path) -> None:
    # A pax header carrying ~30 kB of metadata: no member is large, the stream is.
    big = tarfile.TarInfo("x")
    big.pax_headers = {"comment": "z" * 30_000}
    archive = tmp_path / "pax.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(big, io.BytesIO(b""))
    limits = ArchiveLimits(max_members=2, max_total_bytes=1_000, max_member_bytes=1_000)
    with pytest.raises(ArchiveTooLargeError, match="decompresses to more than"):
        read_all(archive, limits)


def test_truncated_gzip_is_reported(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, 4_000, dtype=np.uint8).tobytes()
    whole = build(tmp_path / "whole.tar.gz", [("a.bin", noise)])
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(CorruptArchiveError) as info:
        read_all(cut)
    message = str(info.value)
    assert str(cut) in message and "corrupt or truncated" in message


def test_garbage_is_reported(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    with pytest.raises(CorruptArchiveError, match="corrupt or truncated"):
        read_all(garbage)
    text = tmp_path / "text.tar.gz"
    text.write_bytes(b"hello, I am not a tar file" * 40)
    with pytest.raises(CorruptArchiveError, match=str(text)):
        read_all(text)


def test_corrupt_gzip_crc_is_reported(tmp_path: Path) -> None:
    archive = build(tmp_path / "crc.tar.gz", [("a.bin", b"payload" * 100)])
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xFF  # the gzip trailer's CRC32
    archive.write_bytes(bytes(data))
    with pytest.raises(CorruptArchiveError, match="corrupt or truncated"):
        read_all(archive)


def test_empty_gzip_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(CorruptArchiveError, match=str(empty)):
        read_all(empty)


def test_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="does not exist"):
        read_all(tmp_path / "nope.tar.gz")
