"""Kedro datasets that load image sources as :class:`ImageSplits`.

* :class:`ImageSourceDataset` — the catalog entry; ``data.source`` picks one of:
* :class:`Cifar10BinaryDataset` — the official CIFAR-10 binary archive (downloaded
  and verified when missing);
* :class:`ImageFolderDataset` — ``train/<class>/*`` and ``test/<class>/*`` PNG/JPEG
  images in a folder or ``.tar.gz``, decoded in parallel and cached;
* :class:`SyntheticImageDataset` — deterministic CIFAR-shaped data for quick runs.

All are read-only, and every error derives from :class:`DataSourceError`, itself a
:class:`kedro.io.DatasetError`.
"""

from .cifar10_binary import CIFAR10_MD5, CIFAR10_SIZE, CIFAR10_URL, Cifar10BinaryDataset
from .errors import (
    ArchiveTooLargeError,
    ChecksumError,
    CorruptArchiveError,
    DataSourceError,
    DownloadError,
    ImageLayoutError,
    InvalidImageError,
    ReadOnlyDatasetError,
    SourceNotFoundError,
    TooManyImagesError,
    UnknownSourceError,
    UnsafeArchiveError,
)
from .image_folder import ImageFolderDataset
from .image_source import SOURCES, ImageSourceDataset
from .synthetic import SyntheticImageDataset
from .types import CIFAR10_CLASSES, IMAGE_SHAPE, ImageSplits, LabelledImages

__all__ = [
    "CIFAR10_CLASSES",
    "CIFAR10_MD5",
    "CIFAR10_SIZE",
    "CIFAR10_URL",
    "IMAGE_SHAPE",
    "SOURCES",
    "ArchiveTooLargeError",
    "ChecksumError",
    "Cifar10BinaryDataset",
    "CorruptArchiveError",
    "DataSourceError",
    "DownloadError",
    "ImageFolderDataset",
    "ImageLayoutError",
    "ImageSourceDataset",
    "ImageSplits",
    "InvalidImageError",
    "LabelledImages",
    "ReadOnlyDatasetError",
    "SourceNotFoundError",
    "SyntheticImageDataset",
    "TooManyImagesError",
    "UnknownSourceError",
    "UnsafeArchiveError",
]
