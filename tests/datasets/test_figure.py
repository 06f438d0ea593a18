"""The figure dataset: a matplotlib figure saved as an image, versioned and atomically, previewable."""

from __future__ import annotations

import base64

import pytest
from kedro.io import DatasetError
from kedro.io.core import Version
from matplotlib.figure import Figure

from activation_compare.datasets.atomic import AtomicMatplotlibDataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _figure() -> Figure:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().plot([1, 2, 3])
    return figure


def test_a_figure_is_saved_as_an_image_with_its_save_args(tmp_path):
    target = tmp_path / "08_reporting" / "curves.png"
    AtomicMatplotlibDataset(filepath=str(target), save_args={"dpi": 50}).save(_figure())
    assert target.read_bytes().startswith(PNG_SIGNATURE)
    small = target.stat().st_size
    AtomicMatplotlibDataset(filepath=str(target), save_args={"dpi": 200}).save(_figure())
    assert target.stat().st_size > small  # dpi reached savefig
    assert [p.name for p in target.parent.iterdir()] == ["curves.png"]  # no temporary left


def test_a_versioned_figure_goes_into_its_runs_folder_and_previews_as_base64(tmp_path):
    target = tmp_path / "curves.png"
    dataset = AtomicMatplotlibDataset(filepath=str(target), version=Version(None, "2026-12-07T11.00.00.000Z"))
    dataset.save(_figure())
    saved = target / "2026-12-07T11.00.00.000Z" / "curves.png"
    assert saved.read_bytes().startswith(PNG_SIGNATURE)
    assert dataset.exists()
    assert dataset.run_path() == saved
    assert base64.b64decode(dataset.preview()) == saved.read_bytes()
    with pytest.raises(DatasetError, match="must not exist if versioning is enabled"):
        dataset.save(_figure())  # a run's version is written once


def test_a_figure_cannot_be_loaded(tmp_path):
    dataset = AtomicMatplotlibDataset(filepath=str(tmp_path / "curves.png"))
    dataset.save(_figure())
    with pytest.raises(DatasetError, match="cannot load"):
        dataset.load()
