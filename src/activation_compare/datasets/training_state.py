"""The catalog's handle on one model's training-state folder (checkpoints, resume, reuse).

``load()`` returns a :class:`~activation_compare.pipelines.modelling.checkpoints.TrainingState`
for the folder, as ``PartitionedDataset`` hands out loaders: the training node
gets the folder without knowing any path, and writes through the handle.
Loading checks that the folder can be written, so an unwritable ``data/``
fails here with the folder's name rather than deep inside a save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from activation_compare.storage import check_writable


class TrainingStateDataset(AbstractDataset[None, Any]):
    """One model's training-state folder (see ``conf/base/catalog.yml``).

    Args:
        path: The folder, e.g. ``data/06_models/checkpoints/relu_seed0``
            (relative paths are resolved against the project root by Kedro).
        metadata: Kedro's free-form metadata, unused.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._directory = Path(path)
        self.metadata = metadata

    @property
    def directory(self) -> Path:
        return self._directory

    def load(self) -> Any:
        from activation_compare.pipelines.modelling.checkpoints import TrainingState

        check_writable([self._directory])
        return TrainingState(self._directory)

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"The training state {self._directory} is written by the training node through "
            "the handle load() returns; it cannot be saved as a dataset."
        )

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._directory)}
