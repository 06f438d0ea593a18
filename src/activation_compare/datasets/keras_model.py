"""A Keras model in one ``.keras`` file, on any fsspec filesystem; Keras imported only to load or save.

kedro-datasets' ``tensorflow.TensorFlowModelDataset`` does the same, but its
module imports TensorFlow, and Kedro creates every dataset of a pipeline in
the driver before a run starts. The driver of a ``ParallelRunner`` run would
then fork its worker processes from a process running TensorFlow's threads,
and such a fork can die in TensorFlow's locks (seen in this project's CI as
abseil's "Check w->waitp->cond == nullptr failed"); every other command that
builds the catalog would wait seconds for the import. This dataset writes
and reads the same files, and imports Keras (and with it TensorFlow) only in
``load`` and ``save``, which run where the nodes run.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)

_LOCAL_NAME = "model.keras"  # Keras 3 chooses the format by the file name


class KerasModelDataset(AbstractVersionedDataset[Any, Any]):
    """A compiled Keras model saved with ``model.save`` and loaded with ``keras.saving.load_model``.

    Args:
        filepath: The ``.keras`` file, optionally with a protocol (``s3://…``).
        load_args: Keyword arguments of ``keras.saving.load_model``
            (``safe_mode`` is True unless set here).
        save_args: Keyword arguments of ``model.save``.
        version: Kedro's dataset version.
        credentials: Passed to the fsspec filesystem.
        fs_args: Passed to the fsspec filesystem.
        metadata: Anything; Kedro does not read it.
    """

    def __init__(  # noqa: PLR0913 - kedro-datasets' signature, so catalog entries carry over
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        fs_args = copy.deepcopy(fs_args) or {}
        protocol, path = get_protocol_and_path(filepath, version)
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(copy.deepcopy(credentials) or {}), **fs_args)
        self.metadata = metadata
        self._load_args = {"safe_mode": True, **(load_args or {})}
        self._save_args = dict(save_args or {})
        super().__init__(
            filepath=PurePosixPath(path), version=version, exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> Any:
        import keras

        # Keras finds a custom layer (RReLU, a user's {type: custom}) by the name it was
        # registered under, which happens when its module is imported. A worker process
        # (ParallelRunner, Dask) or a notebook may load a model before anything imported it.
        from activation_compare.layers.custom import import_layer_modules

        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="activation_compare_model_") as folder:
            local = os.path.join(folder, _LOCAL_NAME)
            self._fs.get(load_path, local)
            import_layer_modules(local)
            return keras.saving.load_model(local, **self._load_args)

    def save(self, data: Any) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="activation_compare_model_") as folder:
            local = os.path.join(folder, _LOCAL_NAME)
            data.save(local, **self._save_args)
            self._fs.put(local, save_path)

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))
