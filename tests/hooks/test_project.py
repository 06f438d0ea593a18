"""The project hook's checks before a run: outputs that a run would fail to save are refused first."""

from __future__ import annotations

import pytest
from kedro.io import AbstractDataset, DataCatalog, Version
from kedro.pipeline import Node, Pipeline

from activation_compare.datasets.atomic import AtomicJSONDataset
from activation_compare.hooks import UnversionedOutputError, check_no_unversioned_leftovers, output_folders


def _report(data: dict) -> dict:
    return data


def _pipeline_and_catalog(tmp_path):
    report = tmp_path / "07_model_output" / "relu_seed0_report.json"
    catalog = DataCatalog(
        {"report": AtomicJSONDataset(filepath=str(report), version=Version(None, "2026-12-01T17.00.00.000Z"))}
    )
    return Pipeline([Node(_report, "data", "report")]), catalog, report


def test_a_file_left_by_an_unversioned_run_is_refused_before_the_run(tmp_path):
    pipeline, catalog, report = _pipeline_and_catalog(tmp_path)
    report.parent.mkdir(parents=True)
    report.write_text("{}")  # what earlier versions of the project wrote
    with pytest.raises(UnversionedOutputError, match=r"relu_seed0_report\.json[\s\S]*Move them out"):
        check_no_unversioned_leftovers(pipeline, catalog)


def test_versioned_outputs_and_a_fresh_folder_pass(tmp_path):
    pipeline, catalog, report = _pipeline_and_catalog(tmp_path)
    check_no_unversioned_leftovers(pipeline, catalog)  # nothing there yet
    catalog.save("report", {"test_accuracy": 0.7})
    assert report.is_dir()
    check_no_unversioned_leftovers(pipeline, catalog)  # a folder of versions


class NeverBuilt(AbstractDataset):
    """A file dataset that fails if built: the checks must read its catalog entry instead."""

    def __init__(self, filepath: str, versioned: bool = False) -> None:
        raise AssertionError(f"built {filepath}: a run's checks built a file dataset before its first node")

    def load(self) -> None: ...  # pragma: no cover

    def save(self, data) -> None: ...  # pragma: no cover

    def _describe(self) -> dict:  # pragma: no cover
        return {}


def test_the_checks_read_file_and_checkpoint_entries_without_building_their_datasets(tmp_path):
    """Building every file dataset would import pandas and matplotlib before the first training step."""
    never_built = f"{__name__}.NeverBuilt"
    report, figure = tmp_path / "out" / "report.json", tmp_path / "figures" / "curves.png"
    catalog = DataCatalog.from_config({
        "report": {"type": never_built, "filepath": str(report), "versioned": True},
        "curves": {"type": never_built, "filepath": f"file://{figure}"},
        "state": {"type": "activation_compare.training_state.CheckpointsDataset", "path": str(tmp_path / "ckpt")},
    })
    pipeline = Pipeline([Node(_report, "data", ["report", "curves"]), Node(_report, "state", "other")])
    assert sorted(output_folders(pipeline, catalog)) == sorted([report.parent, figure.parent, tmp_path / "ckpt"])
    check_no_unversioned_leftovers(pipeline, catalog)
    report.parent.mkdir()
    report.write_text("{}")
    with pytest.raises(UnversionedOutputError, match=r"report\.json"):
        check_no_unversioned_leftovers(pipeline, catalog)
