"""A figure saved as an image file, with matplotlib imported only when a figure is saved.

kedro-datasets' ``MatplotlibDataset`` imports ``matplotlib.pyplot`` with its
module, and Kedro's runner builds every dataset of a pipeline before the
first node runs, so a run would import pyplot (about 0.2 s) on its way to the
first training step, long before any figure exists. This dataset takes the
same catalog arguments for a single figure (``filepath``, ``save_args``,
``fs_args``, ``credentials``, ``versioned``, ``metadata``) and needs no
matplotlib import at all: it calls the figure's own ``savefig``. The project's
figures are built without pyplot (``pipelines/reporting/figures.py``), so
there is no pyplot state to close either.
"""

from __future__ import annotations

import base64
import io
import os
from copy import deepcopy
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

from activation_compare.lazy_types import Figure
from activation_compare.private_apis import kedro_viz_image_preview

if TYPE_CHECKING:
    # kedro-viz shows a preview as an image by its return annotation's name.
    from kedro_datasets._typing import ImagePreview


class FigureDataset(AbstractVersionedDataset[Figure, NoReturn]):
    """One matplotlib figure written as an image: PNG, unless ``save_args`` names another ``format``.

    Args:
        filepath: Where the image goes: a local path, or a URL of any fsspec protocol.
        save_args: Keyword arguments of ``Figure.savefig`` (``dpi``, ``format``, …). The
            figure is drawn into memory first, so the file's suffix does not choose
            the format (as with kedro-datasets' ``MatplotlibDataset``).
        fs_args: Arguments of the fsspec filesystem, and under ``open_args_save``
            of its ``open`` (``mode`` is ``wb``).
        credentials: Credentials of the filesystem.
        version: Kedro's version (``versioned: true`` in the catalog).
        metadata: Free-form; read by plugins such as kedro-viz.
    """

    def __init__(  # noqa: PLR0913 - the catalog's arguments
        self,
        *,
        filepath: str | os.PathLike,
        save_args: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        fs_args = deepcopy(fs_args) or {}
        self._fs_open_args_save = {**fs_args.pop("open_args_save", {}), "mode": "wb"}
        protocol, path = get_protocol_and_path(str(filepath), version)
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(deepcopy(credentials) or {}), **fs_args)
        self._save_args = dict(save_args or {})
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "save_args": self._save_args,
            "version": self._version,
        }

    def load(self) -> NoReturn:
        raise DatasetError(f"{type(self).__name__} saves figures; it cannot load them")

    def save(self, data: Figure) -> None:
        buffer = io.BytesIO()
        data.savefig(buffer, **self._save_args)
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with self._fs.open(save_path, **self._fs_open_args_save) as file:
            file.write(buffer.getvalue())
        self._invalidate_cache()

    def _exists(self) -> bool:
        return bool(self._fs.exists(get_filepath_str(self._get_load_path(), self._protocol)))

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))

    def preview(self) -> ImagePreview:
        """The saved image, base64-encoded (kedro-viz shows it)."""
        with self._fs.open(get_filepath_str(self._get_load_path(), self._protocol), mode="rb") as file:
            return kedro_viz_image_preview(base64.b64encode(file.read()).decode("utf-8"))
