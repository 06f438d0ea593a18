"""The catalog's one image source: ``data.source`` picks the dataset that loads it."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset

from activation_compare.params import DATA_SOURCES, DEFAULT_MAX_IMAGES

from .cifar10_binary import CIFAR10_URL, Cifar10BinaryDataset
from .errors import (
    DataSourceError,
    ReadOnlyDatasetError,
    SourceNotFoundError,
    UnknownSourceError,
)
from .image_folder import ImageFolderDataset
from .synthetic import SyntheticImageDataset
from .types import ImageSplits

# Kept under this name for the package's public API; params owns the list.
SOURCES = DATA_SOURCES


class ImageSourceDataset(AbstractDataset[None, ImageSplits]):
    """Read-only: loads ``ImageSplits`` from the source that ``data.source`` names.

    * ``cifar10``: :class:`Cifar10BinaryDataset` with ``archive_path=path`` (None:
      use or download ``download_dir/cifar-10-binary.tar.gz`` from ``url``); the
      parsed arrays are cached in ``cache_dir`` too (keyed by the archive's MD5), as
      parsing the archive alone takes 2–4 s on a busy 2-core machine.
    * ``image_folder``: :class:`ImageFolderDataset` on ``path`` (required), caching
      decoded arrays in ``cache_dir``, refusing more than ``max_images`` images.
    * ``synthetic``: :class:`SyntheticImageDataset` with ``**synthetic``.

    The source is checked when the catalog is built, so a typo fails before any
    node runs. Relative paths are resolved against the current working directory
    (Kedro runs from the project root). Catalog entry::

        raw_images:
          type: activation_compare.datasets.ImageSourceDataset
          source: ${runtime_params:data.source, ${globals:data.source}}
          path: ${runtime_params:data.path, ${globals:data.path}}
          max_images: ${runtime_params:data.max_images, ${globals:data.max_images}}
    """

    def __init__(
        self,
        source: str,
        path: str | None = None,
        download_dir: str = "data/01_raw",
        cache_dir: str | None = "data/02_intermediate/image_cache",
        url: str = CIFAR10_URL,
        synthetic: dict[str, Any] | None = None,
        max_images: int = DEFAULT_MAX_IMAGES,
    ) -> None:
        if source not in SOURCES:
            raise UnknownSourceError(
                f"data.source={source!r} is not a known source; choose one of "
                f"{', '.join(SOURCES)}"
            )
        self._source = source
        self._path = path or None
        self._download_dir = download_dir
        self._cache_dir = cache_dir
        self._url = url
        self._synthetic = dict(synthetic or {})
        self._dataset: AbstractDataset[None, ImageSplits]
        if source == "cifar10":
            self._dataset = Cifar10BinaryDataset(
                archive_path=self._path, download_dir=download_dir, url=url, cache_dir=cache_dir
            )
        elif source == "image_folder":
            if self._path is None:
                raise SourceNotFoundError(
                    "data.source='image_folder' needs data.path (got data.path=None): a folder "
                    "or .tar.gz/.tgz archive holding train/<class>/* and test/<class>/* images"
                )
            self._dataset = ImageFolderDataset(
                path=self._path, cache_dir=cache_dir, max_images=max_images
            )
        else:
            try:
                self._dataset = SyntheticImageDataset(**self._synthetic)
            except TypeError as exc:
                raise DataSourceError(
                    f"synthetic={self._synthetic!r} has an unknown option ({exc}); expected "
                    "n_train, n_test and seed"
                ) from None

    @property
    def dataset(self) -> AbstractDataset[None, ImageSplits]:
        """The dataset the source delegates to."""
        return self._dataset

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, **self._dataset._describe()}

    def _exists(self) -> bool:
        return self._dataset.exists()

    def train_images(self) -> int | None:
        """How many training images the source holds, when that is known without loading it.

        The official CIFAR-10 archive has 50,000, a synthetic source its ``n_train``, an
        image folder the files of its train/ split; None when only a load can tell (an
        image archive, another binary archive).
        """
        return self._dataset.train_images()

    def class_count(self) -> int | None:
        """How many classes the source has, when that is known without loading it."""
        count = getattr(self._dataset, "class_count", None)
        return count() if callable(count) else None

    def save(self, data: ImageSplits) -> None:
        raise ReadOnlyDatasetError(
            f"{type(self).__name__} is read-only: it loads data.source={self._source!r} and "
            "cannot save"
        )

    def load(self) -> ImageSplits:
        return self._dataset.load()
