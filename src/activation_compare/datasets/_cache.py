"""An on-disk cache of decoded image splits: one uncompressed ``.npz`` per source.

* No pickle anywhere: arrays are written with :func:`numpy.savez` (class names as
  a unicode array) and read with ``allow_pickle=False``.
* Writes are atomic: the file is written under a temporary name in the cache
  folder and moved into place with :func:`os.replace`, so a reader never sees a
  half-written cache, and an interrupted write leaves no stray file.
* Each file stores the key it was made for. A file whose key, arrays or shapes
  do not match is ignored (and rebuilt), never trusted.
* A cache problem never fails a load: it is logged and the source is decoded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from ._files import create_temporary
from .types import IMAGE_SHAPE, ImageSplits, LabelledImages

logger = logging.getLogger(__name__)

# Bump when what is cached (or how it is derived from a source) changes.
CACHE_FORMAT = 1
_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels", "class_names", "key")


def cache_path(cache_dir: Path, stem: str, source_id: str, key: str) -> Path:
    """``<cache_dir>/<stem>-<hash of source_id>-<hash of key>.npz``.

    Files of one source share the prefix, so a stale one can be found and removed.
    """
    source_hash = hashlib.sha256(source_id.encode()).hexdigest()[:10]
    key_hash = hashlib.sha256(f"v{CACHE_FORMAT} {key}".encode()).hexdigest()[:20]
    return cache_dir / f"{stem}-{source_hash}-{key_hash}.npz"


def load_splits(path: Path, key: str, description: str) -> ImageSplits | None:
    """The cached splits at ``path`` if it exists and was made for ``key``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) != set(_ARRAYS) or str(npz["key"]) != f"v{CACHE_FORMAT} {key}":
                logger.warning("Ignoring image cache %s: it was made for another source", path)
                return None
            arrays = {name: npz[name] for name in _ARRAYS}
        splits = ImageSplits(
            train=_labelled(arrays["train_images"], arrays["train_labels"]),
            test=_labelled(arrays["test_images"], arrays["test_labels"]),
            class_names=tuple(str(name) for name in arrays["class_names"]),
            description=description,
        )
        n_classes = len(splits.class_names)
        for split in (splits.train, splits.test):
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= n_classes):
                raise ValueError("labels out of range")
        return splits
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        logger.warning("Ignoring unreadable image cache %s (%s); decoding the source", path, exc)
        return None


def cached_train_count(path: Path, key: str) -> int | None:
    """How many training images the cache at ``path`` holds (None: no usable cache).

    Reads only the key and the training labels, not the images.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "key" not in npz.files or str(npz["key"]) != f"v{CACHE_FORMAT} {key}":
                return None
            return int(npz["train_labels"].shape[0])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def _labelled(images: np.ndarray, labels: np.ndarray) -> LabelledImages:
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE or labels.dtype != np.int64:
        raise ValueError(f"unexpected arrays {images.dtype}{images.shape} / {labels.dtype}")
    return LabelledImages(images=np.ascontiguousarray(images), labels=labels)


def save_splits(path: Path, key: str, splits: ImageSplits) -> None:
    """Write ``splits`` to ``path`` atomically; remove older caches of the same source."""
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_path = create_temporary(path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp_name = str(tmp_path)
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                train_images=splits.train.images,
                train_labels=splits.train.labels,
                test_images=splits.test.images,
                test_labels=splits.test.labels,
                class_names=np.array(splits.class_names, dtype=str),
                key=np.array(f"v{CACHE_FORMAT} {key}"),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
        logger.info("Cached the decoded images in %s", path)
    except OSError as exc:
        logger.warning("Could not write the image cache %s (%s); continuing without it", path, exc)
        return
    finally:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
    # Older caches of this source (same stem and source hash, another key) are stale.
    prefix = path.name.rsplit("-", 1)[0] + "-"
    for stale in path.parent.glob(f"{prefix}*.npz"):
        if stale != path:
            try:
                stale.unlink()
                logger.info("Removed the stale image cache %s", stale)
            except OSError:
                pass
