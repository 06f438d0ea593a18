"""Kedro-datasets' file datasets, made to replace their file atomically on save.

kedro-datasets writes straight into the final path, so a crash or a second
`kedro run` writing the same file at the same moment can leave a half-written
model or report that a later run would trust. These subclasses let the parent
write to a unique temporary name in the same folder and then ``os.replace`` it
into place, which is atomic on a local filesystem: a reader sees the old file
or the new one, never a mixture. Other protocols (s3, gcs, …) are written as
the parent class writes them.

Versioned (``versioned: true``, as every file output in ``conf/base/catalog.yml``),
they load *this run's* version when it exists: Kedro gives every dataset of a
run the same save version, the session id (``KedroSession.run`` passes
``save_version=session_id`` to the catalog, ``kedro/framework/session/session.py``;
the catalog passes it to every dataset it creates, factories included,
``kedro/io/core.py`` ``parse_dataset_definition``), and it is an attribute of
the dataset, so it travels with the pickled catalog to ``ParallelRunner``'s
worker processes. Kedro alone would load the *latest* version, which a
concurrent run may have written a moment later.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path, PurePosixPath
from typing import Any

from kedro_datasets.json import JSONDataset
from kedro_datasets.pandas import CSVDataset
from kedro_datasets.text import TextDataset

from activation_compare.private_apis import (
    kedro_dataset_protocol,
    kedro_dataset_version,
    kedro_version_exists,
    kedro_versioned_path,
)
from activation_compare.storage import temporary_sibling, translated_storage_errors

from .figure import FigureDataset
from .keras_model import KerasModelDataset


class _AtomicSave:
    """Mixin: route the parent's ``save`` to a temporary path, then rename it into place;
    load this run's own version when there is one."""

    _atomic_temporary: PurePosixPath | None = None

    def resolve_load_version(self) -> str | None:
        version = kedro_dataset_version(self)
        if version is not None and version.load is None and version.save is not None:
            # While saving (Kedro's save wrapper asks before the rename) or after.
            if self._atomic_temporary is not None or kedro_version_exists(self, version.save):
                return version.save  # type: ignore[no-any-return]
        return super().resolve_load_version()  # type: ignore[misc]

    def _get_save_path(self) -> PurePosixPath:
        return self._atomic_temporary or super()._get_save_path()  # type: ignore[misc]

    def run_path(self) -> Path | None:
        """The file this run saved (``<filepath>/<run id>/<name>``); None if it saved none."""
        version = kedro_dataset_version(self)
        if version is None or version.save is None or kedro_dataset_protocol(self) != "file":
            return None
        own = Path(str(kedro_versioned_path(self, version.save)))
        return own if own.exists() else None

    def save(self, data: Any) -> None:
        if kedro_dataset_protocol(self) != "file":
            return super().save(data)  # type: ignore[misc]
        final = super()._get_save_path()  # type: ignore[misc]
        # Same folder, so the rename never crosses filesystems; a leading dot
        # keeps the temporary file out of globs of the real outputs.
        temporary = PurePosixPath(temporary_sibling(Path(final)))
        folder = Path(final).parent  # a versioned output's: <filepath>/<run id>/
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        self._atomic_temporary = temporary
        saved = False
        try:
            # A full, read-only or forbidden disk: one StorageError naming the file.
            with translated_storage_errors(Path(final), "output"):
                super().save(data)  # type: ignore[misc]
                os.replace(temporary, final)
            saved = True
        finally:
            self._atomic_temporary = None
            Path(temporary).unlink(missing_ok=True)
            if created and not saved:
                # No empty version folder left behind for a version that was never saved.
                with contextlib.suppress(OSError):
                    folder.rmdir()
        self._invalidate_cache()  # type: ignore[attr-defined]
        return None


class AtomicTensorFlowModelDataset(_AtomicSave, KerasModelDataset):
    """A Keras model file (:class:`~.keras_model.KerasModelDataset`) with an atomic save."""


class AtomicJSONDataset(_AtomicSave, JSONDataset):
    """``json.JSONDataset`` with an atomic save."""


class AtomicCSVDataset(_AtomicSave, CSVDataset):
    """``pandas.CSVDataset`` with an atomic save."""


class AtomicTextDataset(_AtomicSave, TextDataset):
    """``text.TextDataset`` with an atomic save."""


class AtomicMatplotlibDataset(_AtomicSave, FigureDataset):
    """A figure file (:class:`~.figure.FigureDataset`, single figures, matplotlib imported
    only to save one) with an atomic save."""
