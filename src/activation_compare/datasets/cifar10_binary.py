"""The official CIFAR-10 binary archive (``cifar-10-binary.tar.gz``), downloaded if needed.

The archive is parsed with :mod:`tarfile` and :func:`numpy.frombuffer` only — never
with pickle (the python-format release is a set of pickles, which can run code).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from . import _cache
from ._archive import ArchiveLimits, iter_archive
from ._download import download, file_md5
from .errors import (
    ChecksumError,
    CorruptArchiveError,
    DataSourceError,
    ReadOnlyDatasetError,
    SourceNotFoundError,
)
from .types import ImageSplits, LabelledImages

logger = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
CIFAR10_SIZE = 170_052_171
CIFAR10_TRAIN_IMAGES = 50_000
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
MEMBER_DIR = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"{MEMBER_DIR}/data_batch_{i}.bin" for i in range(1, 6))
TEST_MEMBER = f"{MEMBER_DIR}/test_batch.bin"
META_MEMBER = f"{MEMBER_DIR}/batches.meta.txt"
REQUIRED_MEMBERS = (*TRAIN_MEMBERS, TEST_MEMBER, META_MEMBER)
# One record: the label byte, then 1,024 red, 1,024 green and 1,024 blue bytes.
RECORD_BYTES = 1 + 3 * 32 * 32


def parse_class_names(data: bytes, archive: Path) -> tuple[str, ...]:
    """The non-empty, stripped lines of ``batches.meta.txt``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptArchiveError(
            f"CIFAR-10 archive '{archive}': member {META_MEMBER} is not UTF-8 text ({exc}); "
            "expected one class name per line"
        ) from None
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise CorruptArchiveError(
            f"CIFAR-10 archive '{archive}': member {META_MEMBER} lists no class names; "
            "expected one class name per line (airplane, automobile, …)"
        )
    if len(set(names)) != len(names):
        raise CorruptArchiveError(
            f"CIFAR-10 archive '{archive}': member {META_MEMBER} repeats class names {names}; "
            "expected distinct names"
        )
    return names


def parse_records(
    members: list[tuple[str, bytes]], n_classes: int, archive: Path
) -> LabelledImages:
    """Concatenate binary batches into (N, 32, 32, 3) uint8 images and int64 labels."""
    for name, data in members:
        if len(data) % RECORD_BYTES:
            raise CorruptArchiveError(
                f"CIFAR-10 archive '{archive}': member {name} holds {len(data):,} bytes, not a "
                f"multiple of the {RECORD_BYTES:,}-byte record (1 label byte + 3,072 pixel "
                "bytes); expected whole records — the archive is damaged or not the binary "
                "CIFAR-10 release"
            )
    total = sum(len(data) // RECORD_BYTES for _, data in members)
    images = np.empty((total, 32, 32, 3), dtype=np.uint8)
    labels = np.empty(total, dtype=np.int64)
    offset = 0
    for name, data in members:
        records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
        count = records.shape[0]
        batch_labels = records[:, 0]
        bad = np.flatnonzero(batch_labels >= n_classes)
        if bad.size:
            raise CorruptArchiveError(
                f"CIFAR-10 archive '{archive}': member {name}, record {int(bad[0])} has label "
                f"{int(batch_labels[bad[0]])}, but {META_MEMBER} names only {n_classes} classes "
                f"(labels 0–{n_classes - 1}); expected labels below {n_classes}"
            )
        labels[offset : offset + count] = batch_labels
        # Planes R, G, B, each 32×32 row-major: (N, 3, 32, 32) → channels last (N, 32, 32, 3).
        # Copying plane by plane is the same as .transpose(0, 2, 3, 1), but several times
        # faster than one strided copy.
        target = images[offset : offset + count].reshape(count, 32 * 32, 3)
        planes = records[:, 1:].reshape(count, 3, 32 * 32)
        for channel in range(3):
            target[:, :, channel] = planes[:, channel]
        offset += count
    return LabelledImages(images=images, labels=labels)


class Cifar10BinaryDataset(AbstractDataset[None, ImageSplits]):
    """Read-only: CIFAR-10 from the official binary archive, downloaded when missing.

    * ``archive_path`` given: that file is used; if it is missing, the load fails
      (naming ``data.path``) and nothing is downloaded.
    * Otherwise ``download_dir/cifar-10-binary.tar.gz`` is used if present, else it is
      downloaded from ``url`` (progress bar on stderr) into a temporary file in
      ``download_dir`` and moved into place only once complete and verified.
    * Before any byte is parsed the archive's size and MD5 are checked against
      ``size`` and ``md5`` (override both for another copy of the data).
    * Members ``cifar-10-batches-bin/data_batch_1..5.bin`` (train), ``test_batch.bin``
      (test) and ``batches.meta.txt`` (class names) are read straight from the
      archive — no extraction, no pickle — with the same safety rules as any
      untrusted archive (see ``_archive``).
    * ``cache_dir`` (optional; None by default) keeps the parsed arrays as an
      uncompressed ``.npz`` (no pickle, written atomically) keyed by the archive's
      MD5, size and mtime. Verifying and parsing the 170 MB archive takes about 2 s
      of CPU (MD5 0.35 s, gunzip 1 s, parsing 0.2 s); with the cache a load takes
      about 0.5 s, the MD5 check included (it is always done).

    Args:
        archive_path: an existing ``cifar-10-binary.tar.gz`` (``data.path``), or None.
        download_dir: where the archive is looked for and downloaded to.
        url: where it is downloaded from (http or https).
        md5: the archive's expected MD5 (hex).
        size: the archive's expected size in bytes.
        cache_dir: where to cache the parsed arrays, or None.
    """

    ARCHIVE_LIMITS = ArchiveLimits(
        max_members=64, max_total_bytes=512 * 2**20, max_member_bytes=256 * 2**20
    )

    def __init__(
        self,
        archive_path: str | None = None,
        download_dir: str = "data/01_raw",
        url: str = CIFAR10_URL,
        md5: str = CIFAR10_MD5,
        size: int = CIFAR10_SIZE,
        cache_dir: str | None = None,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise DataSourceError(f"url={url!r} must be an http:// or https:// URL")
        if not (
            isinstance(md5, str)
            and len(md5) == 32
            and all(c in "0123456789abcdefABCDEF" for c in md5)
        ):
            raise DataSourceError(f"md5={md5!r} must be 32 hexadecimal digits")
        if not isinstance(size, int) or size <= 0:
            raise DataSourceError(f"size={size!r} must be a positive number of bytes")
        self._archive_arg = archive_path
        self._archive_path = _absolute(archive_path) if archive_path else None
        self._download_dir = _absolute(download_dir)
        self._url = url
        self._md5 = md5.lower()
        self._size = size
        self._cache_dir = _absolute(cache_dir) if cache_dir else None

    def _describe(self) -> dict[str, Any]:
        return {
            "archive_path": self._archive_arg,
            "download_dir": str(self._download_dir),
            "url": self._url,
            "md5": self._md5,
            "size": self._size,
            "cache_dir": str(self._cache_dir) if self._cache_dir else None,
        }

    @property
    def archive(self) -> Path:
        """The archive this dataset reads (which may not exist yet)."""
        return self._archive_path or self._download_dir / ARCHIVE_NAME

    def train_images(self) -> int | None:
        """50,000 for the official archive; None for another (e.g. a test's) archive."""
        return CIFAR10_TRAIN_IMAGES if self._md5 == CIFAR10_MD5 else None

    def class_count(self) -> int | None:
        """10 for the official archive; None for another (e.g. a test's) archive."""
        return 10 if self._md5 == CIFAR10_MD5 else None

    def _exists(self) -> bool:
        """Whether the archive is on disk (a missing default archive is downloaded on load)."""
        return self.archive.is_file()

    def save(self, data: ImageSplits) -> None:
        raise ReadOnlyDatasetError(
            f"{type(self).__name__} is read-only: it loads CIFAR-10 from {self.archive} and "
            "cannot save"
        )

    def _advice(self) -> str:
        if self._archive_path is not None:
            return (
                f"check the file given as data.path='{self._archive_arg}': it must be the "
                f"official CIFAR-10 binary archive {ARCHIVE_NAME} from {self._url} "
                "(or pass the md5 and size of your copy)"
            )
        return (
            "it is probably a partial or damaged download: delete it and rerun to download "
            "it again"
        )

    def _ensure_archive(self) -> tuple[Path, str | None]:
        """The archive's path, downloading it if needed; and its MD5 if already verified."""
        if self._archive_path is not None:
            if not self._archive_path.is_file():
                problem = "is not a file" if self._archive_path.exists() else "does not exist"
                raise SourceNotFoundError(
                    f"data.path='{self._archive_arg}' {problem} (resolved to "
                    f"{self._archive_path}); expected the CIFAR-10 binary archive "
                    f"{ARCHIVE_NAME}. Fix data.path, or set it to null to download the "
                    f"archive into {self._download_dir}"
                )
            return self._archive_path, None
        target = self._download_dir / ARCHIVE_NAME
        if target.is_file():
            return target, None
        download(self._url, target, size=self._size, md5=self._md5)
        return target, self._md5

    def _verify(self, archive: Path) -> str:
        actual_size = archive.stat().st_size
        if actual_size != self._size:
            raise ChecksumError(
                f"CIFAR-10 archive '{archive}' has {actual_size:,} bytes, expected "
                f"{self._size:,}; {self._advice()}"
            )
        actual_md5 = file_md5(archive)
        if actual_md5 != self._md5:
            raise ChecksumError(
                f"CIFAR-10 archive '{archive}' has MD5 {actual_md5}, expected {self._md5}; "
                f"{self._advice()}"
            )
        return actual_md5

    def load(self) -> ImageSplits:
        started = time.perf_counter()
        archive, verified_md5 = self._ensure_archive()
        md5 = verified_md5 or self._verify(archive)
        stat = archive.stat()
        description = f"cifar10 binary archive {archive} md5={md5}"
        key = f"cifar10_binary md5={md5} size={stat.st_size} mtime_ns={stat.st_mtime_ns}"
        cache_file = None
        if self._cache_dir is not None:
            cache_file = _cache.cache_path(self._cache_dir, "cifar10_binary", str(archive), key)
            cached = _cache.load_splits(cache_file, key, description)
            if cached is not None:
                logger.info("Loaded CIFAR-10 from the cache %s", cache_file)
                return cached

        wanted = set(REQUIRED_MEMBERS)
        found: dict[str, bytes] = {}
        for entry in iter_archive(
            archive, self.ARCHIVE_LIMITS, wanted.__contains__, label="CIFAR-10 archive"
        ):
            if entry.data is not None:
                if entry.name in found:
                    raise CorruptArchiveError(
                        f"CIFAR-10 archive '{archive}' holds member {entry.name} twice; "
                        "expected it once"
                    )
                found[entry.name] = entry.data
        missing = [name for name in REQUIRED_MEMBERS if name not in found]
        if missing:
            raise CorruptArchiveError(
                f"CIFAR-10 archive '{archive}' lacks the member(s) {missing}; expected "
                f"{', '.join(REQUIRED_MEMBERS)} (the official binary layout); {self._advice()}"
            )
        class_names = parse_class_names(found[META_MEMBER], archive)
        train = parse_records(
            [(name, found[name]) for name in TRAIN_MEMBERS], len(class_names), archive
        )
        test = parse_records([(TEST_MEMBER, found[TEST_MEMBER])], len(class_names), archive)
        splits = ImageSplits(
            train=train, test=test, class_names=class_names, description=description
        )
        logger.info(
            "Loaded CIFAR-10 (%d train / %d test images) from %s in %.1f s",
            len(train),
            len(test),
            archive,
            time.perf_counter() - started,
        )
        if cache_file is not None:
            _cache.save_splits(cache_file, key, splits)
        return splits


def _absolute(path: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path)))
