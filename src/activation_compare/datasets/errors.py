"""Errors raised by the image source datasets.

Every class derives from :class:`kedro.io.DatasetError`, so Kedro passes the
message through unchanged, and from :class:`activation_compare.errors.UserError`,
so ``kedro run`` prints it without a traceback. Each message names the offending file or parameter,
the value found and what was expected (and, where it helps, what to do).
"""

from __future__ import annotations

from kedro.io import DatasetError

from activation_compare.errors import UserError


class DataSourceError(DatasetError, UserError):
    """Base class: an image source cannot be loaded as configured."""


class UnknownSourceError(DataSourceError):
    """``data.source`` names no known image source."""


class SourceNotFoundError(DataSourceError):
    """``data.path`` (or a required file) does not exist."""


class ChecksumError(DataSourceError):
    """A file's size or MD5 differs from the expected one."""


class DownloadError(DataSourceError):
    """A download failed or was interrupted; nothing was kept under the final name."""


class CorruptArchiveError(DataSourceError):
    """An archive is truncated, not a gzip/tar file, or its contents are malformed."""


class UnsafeArchiveError(DataSourceError):
    """An archive member is refused: absolute path, ``..``, link, device or FIFO."""


class ArchiveTooLargeError(UnsafeArchiveError):
    """An archive exceeds the member-count or uncompressed-size caps (decompression bomb)."""


class UnsafeLinkError(DataSourceError):
    """A symbolic link in an image folder points outside the folder (``data.path``)."""


class ImageLayoutError(DataSourceError):
    """An image folder or archive does not hold ``train/<class>/*`` and ``test/<class>/*``."""


class TooManyImagesError(ImageLayoutError):
    """An image folder or archive holds more images than ``data.max_images``."""


class InvalidImageError(DataSourceError):
    """An image file cannot be decoded, or is not a 32×32 RGB image."""


class ReadOnlyDatasetError(DataSourceError):
    """``save`` was called on a read-only image source."""
