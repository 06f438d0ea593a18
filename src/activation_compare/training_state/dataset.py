"""The catalog's handle on one model's checkpoints (resume, reuse).

``load()`` returns a :class:`~activation_compare.training_state.checkpoints.Checkpoints`
for the model's folder, as ``PartitionedDataset`` hands out loaders: the
training node gets its checkpoints without knowing any path, and writes
through the handle. Loading checks that the folder can be written, so an
unwritable ``data/`` fails here with the folder's name rather than deep inside
a save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from activation_compare.storage import check_writable


class CheckpointsDataset(AbstractDataset[None, Any]):
    """One model's checkpoint folders (see ``conf/base/catalog.yml``).

    Args:
        path: The model's folder, e.g. ``data/06_models/checkpoints/relu_seed0``
            (relative paths are resolved against the project root by Kedro);
            one sub-folder per training fingerprint.
        metadata: Kedro's free-form metadata, unused.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._directory = Path(path)
        self.metadata = metadata

    @property
    def directory(self) -> Path:
        return self._directory

    def load(self) -> Any:
        from .checkpoints import Checkpoints

        check_writable([self._directory])
        return Checkpoints(self._directory)

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"The checkpoints in {self._directory} are written by the training node through "
            "the handle load() returns; they cannot be saved as a dataset."
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._directory)}
