"""Images in class folders (a folder or a ``.tar.gz``), decoded in parallel and cached."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from . import _cache, _decode
from ._archive import ArchiveLimits, iter_archive
from ._layout import (
    ARCHIVE_SUFFIXES,
    EXPECTED,
    SPLITS,
    Layout,
    find_layout,
    hidden,
    is_candidate,
)
from ._workers import Decoder
from .errors import (
    DataSourceError,
    ImageLayoutError,
    InvalidImageError,
    ReadOnlyDatasetError,
    SourceNotFoundError,
    TooManyImagesError,
    UnsafeLinkError,
)
from .types import ImageSplits, LabelledImages

logger = logging.getLogger(__name__)

# --- the dataset -----------------------------------------------------------


class ImageFolderDataset(AbstractDataset[None, ImageSplits]):
    """Read-only: class-folder images from a folder or a ``.tar.gz``/``.tgz`` archive.

    Layout (optionally under one top-level folder, as in ``cifar10-jpeg/…``)::

        train/<class>/<image>    test/<class>/<image>

    * Images must be PNG or JPEG files of exactly 32×32 pixels in mode ``RGB``.
      Other sizes and modes (grayscale, palette, RGBA, CMYK, 16-bit) are rejected with
      an error naming the file and how to convert it; nothing is resized or converted
      silently. A header declaring more than ``MAX_IMAGE_PIXELS`` pixels is refused
      before decoding (and worker processes set Pillow's ``Image.MAX_IMAGE_PIXELS``).
    * Class folders must be the same in ``train/`` and ``test/`` and none may be
      empty. Labels follow CIFAR-10's official order when the class names are
      exactly CIFAR-10's, else the sorted class names. Within a class, files are
      ordered by name. Hidden files (``.*``) and ``__MACOSX`` are ignored.
    * A folder's symbolic links must stay inside it: a link to a file or folder
      outside ``path`` is refused (an archive refuses every link). A file that is
      not an image is named by its format, never quoted (it may be anyone's file).
    * Archives are read member by member straight from the file (never extracted),
      refusing absolute paths, ``..``, links, devices and FIFOs. Before any image is
      decoded, a first pass over the archive's headers checks the member count
      (``max_images``, the ``data.max_images`` parameter, plus a few folders), the
      uncompressed sizes (``ARCHIVE_LIMITS``, at most ``IMAGE_BYTES_BUDGET`` per image
      on average) and every image's width and height from its PNG/JPEG header, holding
      one header in memory at a time; a folder's files are counted before decoding too.
    * Decoding runs in ``workers`` subprocesses (default: the usable CPU cores, at
      most 8; ``0`` or ``1`` decodes in this process), overlapping with reading the
      archive; below ``PARALLEL_MIN_IMAGES`` images it stays in this process. The
      workers are plain ``python -c`` subprocesses fed through pipes (see
      ``_workers``): no ``multiprocessing``, so the caller's ``__main__`` is never
      re-run, and nothing is pickled.
    * The arrays are cached in ``cache_dir`` (``None`` disables it) as an uncompressed
      ``.npz`` written atomically, keyed by a fingerprint of the source: for an archive
      its path, size, mtime and a hash of its first and last MiB; for a folder the
      relative path, size and mtime of every file. Changing the source invalidates it.

    Args:
        path: the folder or archive; relative paths are resolved against the
            current working directory.
        cache_dir: where the decoded arrays are cached, or None.
        workers: decoding processes (None: automatic).
        max_images: the most images the source may hold (CIFAR-10 has 60,000);
            more is refused before anything is decoded.
    """

    MAX_IMAGE_PIXELS = 4096 * 4096
    # A 32×32 RGB image is a few KiB; 1 MiB leaves room for any metadata.
    MAX_IMAGE_FILE_BYTES = 2**20
    # Absolute caps; the member count and total size are lowered further by max_images.
    ARCHIVE_LIMITS = ArchiveLimits(
        max_members=1_000_000, max_total_bytes=4 * 2**30, max_member_bytes=2**20
    )
    # Average uncompressed bytes allowed per image (PNG/JPEG 32×32 files are 1-4 KiB).
    IMAGE_BYTES_BUDGET = 16 * 2**10
    # Folders, hidden files and the like an archive may hold besides its images.
    NON_IMAGE_MEMBERS = 1000
    DEFAULT_MAX_IMAGES = 100_000
    # Below this many images the pool's start-up costs more than it saves.
    PARALLEL_MIN_IMAGES = 3000
    CHUNK_IMAGES = 1000

    def __init__(
        self,
        path: str,
        cache_dir: str | None = "data/02_intermediate/image_cache",
        workers: int | None = None,
        max_images: int = DEFAULT_MAX_IMAGES,
    ) -> None:
        if not path:
            raise SourceNotFoundError(
                f"data.path={path!r} is empty; expected a folder or a .tar.gz/.tgz archive "
                f"holding {EXPECTED}"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise DataSourceError(f"workers={workers!r} must be None or an integer >= 0")
        if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
            raise DataSourceError(
                f"data.max_images={max_images!r} must be a positive integer (the most images "
                "an image folder or archive may hold)"
            )
        self._max_images = max_images
        self._path_arg = str(path)
        self._path = Path(os.path.abspath(os.path.expanduser(path)))
        self._cache_dir = (
            Path(os.path.abspath(os.path.expanduser(cache_dir))) if cache_dir else None
        )
        self._workers = workers

    @property
    def _where(self) -> str:
        shown = f"data.path='{self._path_arg}'"
        if str(self._path) != self._path_arg:
            shown += f" ({self._path})"
        return shown

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._path_arg,
            "cache_dir": str(self._cache_dir) if self._cache_dir else None,
            "workers": self._workers,
            "max_images": self._max_images,
        }

    def _exists(self) -> bool:
        return self._path.exists()

    def save(self, data: ImageSplits) -> None:
        raise ReadOnlyDatasetError(
            f"{type(self).__name__} is read-only: it loads images from {self._where} and "
            "cannot save"
        )

    def train_images(self) -> int | None:
        """The images of the train/ split, when counting them is cheap, else None.

        A folder is listed; an archive is counted from its image cache, if a load
        made one. Otherwise counting an archive means reading all of it, which the
        load does anyway (its first pass), so it is not done twice.
        """
        if self._path.is_dir():
            files, dirs, _ = self._scan_folder(self._path)
            return len(find_layout(files, dirs, self._where).files["train"])
        if not self._path.is_file() or not self._path.name.lower().endswith(ARCHIVE_SUFFIXES):
            return None
        key, cache_file = self._cache_key("archive", _archive_fingerprint(self._path))
        return None if cache_file is None else _cache.cached_train_count(cache_file, key)

    def class_count(self) -> int | None:
        """The class folders of a folder (listed); None for an archive (only a load tells)."""
        if not self._path.is_dir():
            return None
        files, dirs, _ = self._scan_folder(self._path)
        return len(find_layout(files, dirs, self._where).class_names)

    def _cache_key(self, kind: str, fingerprint: str) -> tuple[str, Path | None]:
        """The cache key of the source as it is now, and its cache file (None: no cache)."""
        key = f"image_folder {kind} {self._path} {fingerprint}"
        if not self._cache_dir:
            return key, None
        name = f"image_folder-{self._path.name}"
        return key, _cache.cache_path(self._cache_dir, name, str(self._path), key)

    def _worker_count(self) -> int:
        if self._workers is not None:
            return self._workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return min(cores, 8)

    # -- load --

    def load(self) -> ImageSplits:
        started = time.perf_counter()
        path = self._path
        if not path.exists():
            raise SourceNotFoundError(
                f"{self._where} does not exist; expected a folder or a .tar.gz/.tgz archive "
                f"holding {EXPECTED}"
            )
        if path.is_dir():
            kind = "folder"
            files, dirs, fingerprint = self._scan_folder(path)
        elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
            kind = "archive"
            fingerprint = _archive_fingerprint(path)
        else:
            raise DataSourceError(
                f"{self._where} is a file but not a .tar.gz/.tgz archive; expected a folder or "
                f"a .tar.gz/.tgz archive holding {EXPECTED}"
            )
        key, cache_file = self._cache_key(kind, fingerprint)
        if cache_file is not None:
            cached = _cache.load_splits(cache_file, key, self._description(kind, None))
            if cached is not None:
                # The limit holds whether or not a cache exists (it was made under another one).
                self._check_count(len(cached.train) + len(cached.test))
                logger.info(
                    "Loaded %d + %d images of %s from the cache %s in %.1f s",
                    len(cached.train),
                    len(cached.test),
                    self._where,
                    cache_file,
                    time.perf_counter() - started,
                )
                return _with_description(cached, self._description(kind, cached))

        if kind == "folder":
            layout = find_layout(files, dirs, self._where)
            self._check_count(sum(len(layout.files[split]) for split in SPLITS))
        else:
            layout = self._survey_archive(path)
        with self._decoder() as decoder:
            if kind == "folder":
                index = {
                    name: decoder.add(str(path / name))
                    for split in SPLITS
                    for name, _ in layout.files[split]
                }
            else:
                index = self._read_archive(path, layout, decoder)
            images, problems = decoder.finish()
            used_workers = decoder.used_workers
        splits = self._assemble(layout, index, images, problems, kind)
        logger.info(
            "Decoded %d + %d images of %s in %.1f s (%s)",
            len(splits.train),
            len(splits.test),
            self._where,
            time.perf_counter() - started,
            f"{used_workers} worker processes" if used_workers else "in this process",
        )
        if cache_file is not None:
            _cache.save_splits(cache_file, key, splits)
        return splits

    def _decoder(self) -> Decoder:
        return Decoder(
            workers=self._worker_count(),
            chunk=self.CHUNK_IMAGES,
            parallel_min=self.PARALLEL_MIN_IMAGES,
            max_pixels=self.MAX_IMAGE_PIXELS,
            max_file_bytes=self.MAX_IMAGE_FILE_BYTES,
        )

    def _scan_folder(self, root: Path) -> tuple[list[str], list[str], str]:
        """Non-hidden files and folders, to the depth a layout can use, and a fingerprint."""
        files: list[str] = []
        dirs: list[str] = []
        digest = hashlib.sha256()
        # [top/]split/class/file is at most 4 deep; folders 4 deep are listed, not entered.
        pending: list[tuple[Path, str, int]] = [(root, "", 0)]
        real_root = os.path.realpath(root)
        while pending:
            folder, rel, depth = pending.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as exc:
                raise SourceNotFoundError(
                    f"{self._where}: the folder {folder} cannot be listed ({exc})"
                ) from None
            for entry in entries:
                name = f"{rel}{entry.name}"
                if hidden(entry.name):
                    continue
                try:
                    if entry.is_symlink():
                        self._check_link(entry.path, real_root)
                    if entry.is_dir():
                        dirs.append(name)
                        if depth < 3:
                            pending.append((Path(entry.path), f"{name}/", depth + 1))
                    elif entry.is_file():
                        stat = entry.stat()
                        files.append(name)
                        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                    else:
                        raise InvalidImageError(
                            f"{self._where}: {entry.path} is neither a regular file nor a folder "
                            "(a broken symbolic link, FIFO, socket or device) and cannot be read; "
                            "expected PNG or JPEG image files — remove or replace it"
                        )
                except OSError as exc:
                    raise InvalidImageError(
                        f"{self._where}: {entry.path} cannot be read ({exc})"
                    ) from None
        return files, dirs, f"files={len(files)} sha256={digest.hexdigest()}"

    def _check_link(self, link: str, real_root: str) -> None:
        """Refuse a symbolic link whose target is outside the folder (archives refuse all links)."""
        target = os.path.realpath(link)
        if os.path.commonpath([real_root, target]) != real_root:
            raise UnsafeLinkError(
                f"Refusing {self._where}: {link} is a symbolic link to {target}, outside the "
                f"folder {real_root}; expected the images themselves, or links to files inside "
                "the folder — copy the file into the folder or remove the link"
            )

    def _check_count(self, images: int) -> None:
        if images > self._max_images:
            raise TooManyImagesError(
                f"{self._where} holds {images:,} images, more than data.max_images="
                f"{self._max_images:,}; expected a CIFAR-like set (CIFAR-10 has 60,000). "
                "If the images are meant, raise it: --params data.max_images=<count>"
            )

    def _archive_limits(self) -> ArchiveLimits:
        caps = self.ARCHIVE_LIMITS
        return ArchiveLimits(
            max_members=min(caps.max_members, self._max_images + self.NON_IMAGE_MEMBERS),
            max_total_bytes=min(
                caps.max_total_bytes, self._max_images * self.IMAGE_BYTES_BUDGET
            ),
            max_member_bytes=min(caps.max_member_bytes, self.MAX_IMAGE_FILE_BYTES),
        )

    def _survey_archive(self, archive: Path) -> Layout:
        """The archive's layout from its headers, every image's size checked, nothing decoded.

        Streams the archive once, holding only member names and one image header at a
        time, so a decompression bomb is refused in seconds and bounded memory.
        """
        files: list[str] = []
        dirs: list[str] = []
        seen: set[str] = set()
        images = 0
        limits = self._archive_limits()

        def want(name: str) -> bool:
            return not hidden(name) and is_candidate(name)

        for entry in iter_archive(
            archive, limits, want, label="Image archive", head_bytes=_decode.HEADER_BYTES
        ):
            if hidden(entry.name):
                continue
            if entry.is_dir:
                dirs.append(entry.name)
                continue
            files.append(entry.name)
            if entry.data is None:
                continue
            if entry.name in seen:
                raise ImageLayoutError(
                    f"{self._where} holds {entry.name} twice; expected each image once"
                )
            seen.add(entry.name)
            images += 1
            self._check_count(images)
            self._check_header(entry.name, entry.data)
        return find_layout(files, dirs, self._where)

    def _check_header(self, name: str, head: bytes) -> None:
        """Refuse an image whose PNG/JPEG header is missing or not 32×32, before decoding."""
        declared = _decode.header_size(head)
        shown = f"Image {name} (in the archive) of {self._where}"
        if declared is None:
            raise InvalidImageError(
                f"{shown} has no readable PNG or JPEG header ({_decode.what_it_is(head)}); "
                "expected a 32×32 RGB PNG or JPEG file — replace or remove it"
            )
        kind, width, height = declared
        if (width, height) != (_decode.SIDE, _decode.SIDE):
            raise InvalidImageError(
                f"{shown} is a {width}×{height} {kind} ({width * height:,} pixels, read from "
                f"its header before decoding), expected 32×32 RGB; resize it to 32×32: "
                f"{_decode.CONVERT_HINT}"
            )

    def _read_archive(self, archive: Path, layout: Layout, decoder: Decoder) -> dict[str, int]:
        """Second pass, after the survey: hand the layout's images to the decoder."""
        wanted = {name for split in SPLITS for name, _ in layout.files[split]}
        index: dict[str, int] = {}
        for entry in iter_archive(
            archive, self._archive_limits(), wanted.__contains__, label="Image archive"
        ):
            if entry.data is not None:
                index[entry.name] = decoder.add(entry.data)
        missing = wanted.difference(index)
        if missing:  # the file changed between the two passes
            raise ImageLayoutError(
                f"{self._where} changed while it was read ({len(missing)} images went "
                f"missing, e.g. {sorted(missing)[0]}); run again once it is complete"
            )
        return index

    def _assemble(
        self,
        layout: Layout,
        index: dict[str, int],
        images: np.ndarray,
        problems: dict[int, str],
        kind: str,
    ) -> ImageSplits:
        parts = {}
        for split in SPLITS:
            positions = np.fromiter(
                (index[name] for name, _ in layout.files[split]), dtype=np.int64
            )
            for name, _ in layout.files[split] if problems else ():
                problem = problems.get(index[name])
                if problem is not None:
                    shown = (
                        str(self._path / name) if kind == "folder" else f"{name} (in the archive)"
                    )
                    raise InvalidImageError(f"Image {shown} of {self._where} {problem}")
            labels = np.fromiter((label for _, label in layout.files[split]), dtype=np.int64)
            parts[split] = LabelledImages(
                images=np.ascontiguousarray(images[positions]), labels=labels
            )
        splits = ImageSplits(
            train=parts["train"],
            test=parts["test"],
            class_names=layout.class_names,
            description="",
        )
        return _with_description(splits, self._description(kind, splits))

    def _description(self, kind: str, splits: ImageSplits | None) -> str:
        text = f"image {kind} {self._path}"
        if splits is not None:
            text += (
                f" ({len(splits.train)} train / {len(splits.test)} test images, "
                f"{len(splits.class_names)} classes)"
            )
        return text


def _with_description(splits: ImageSplits, description: str) -> ImageSplits:
    return ImageSplits(
        train=splits.train,
        test=splits.test,
        class_names=splits.class_names,
        description=description,
    )


def _archive_fingerprint(path: Path) -> str:
    """Size, mtime and a hash of the first and last MiB: cheap, and changes with the file."""
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(1 << 20))
        if stat.st_size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
        digest.update(handle.read(1 << 20))
    return f"size={stat.st_size} mtime_ns={stat.st_mtime_ns} head_tail_sha256={digest.hexdigest()}"
