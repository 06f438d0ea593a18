"""Data handed from one node to the next in memory, as the same object, in any runner.

Kedro's ``MemoryDataset(copy_mode="assign")`` hands the object over without a
copy (the float32 training set alone is 600 MB), but only within one process:
under ``ParallelRunner`` every worker process has its own copy of the catalog,
so what one node saves there another never sees. Kedro solves that for the
datasets it creates itself (``SharedMemoryDataset``, through a
multiprocessing manager) but not for declared ones. This dataset is both: in
one process a plain hand-over; when ``ParallelRunner`` gives it a manager
(``SharedMemoryDataCatalog.set_manager_datasets``), Kedro's shared dataset,
holding the data as pickled bytes.
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

from kedro.io import DatasetError
from kedro.io.shared_memory_dataset import SharedMemoryDataset


class HandOverDataset(SharedMemoryDataset):
    """An in-memory dataset that hands over the object itself, or shares it across processes.

    Args:
        metadata: Kedro's free-form metadata, unused.
    """

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(manager=None)
        # A flag, not a sentinel object: the catalog is pickled to worker
        # processes, and an unpickled sentinel is no longer the sentinel.
        self._has_data = False
        self._data: Any = None
        self.metadata = metadata

    def _shared(self) -> bool:
        return self.shared_memory_dataset is not None

    def load(self) -> Any:
        if self._shared():
            return unpickle(super().load())
        if not self._has_data:
            raise DatasetError("Nothing was saved to this in-memory dataset yet.")
        return self._data

    def save(self, data: Any) -> None:
        if self._shared():
            # As bytes: the manager's process unpickles what it stores, and it has
            # not imported what the data needs (Keras models with RReLU layers).
            super().save(to_bytes(data))
        else:
            self._data, self._has_data = data, True

    def _exists(self) -> bool:
        return super()._exists() if self._shared() else self._has_data

    def _release(self) -> None:
        if not self._shared():
            self._data, self._has_data = None, False

    def _describe(self) -> dict[str, Any]:
        return {"shared": self._shared()}


def to_bytes(data: Any) -> bytes:
    """``data`` pickled, with the modules of a Keras model's own layers (RReLU, a user's) named first.

    Keras finds such a layer by the name its module registers when imported; a
    worker process that has not imported it (a ParallelRunner worker that built
    no model) could not unpickle the model.
    """
    layers = getattr(data, "layers", None)
    modules = sorted({
        type(layer).__module__ for layer in (layers if isinstance(layers, list) else [])
        if not type(layer).__module__.startswith("keras")
    })
    payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    return pickle.dumps((modules, payload), protocol=pickle.HIGHEST_PROTOCOL)


def unpickle(blob: bytes) -> Any:
    """What :func:`to_bytes` pickled, its layers' modules imported first."""
    modules, payload = pickle.loads(blob)
    for module in modules:
        importlib.import_module(module)
    return pickle.loads(payload)
