"""The project hook's checks before a run: outputs that a run would fail to save are refused first."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, Version
from kedro.pipeline import Node, Pipeline

from activation_compare.datasets.atomic import AtomicJSONDataset
from activation_compare.hooks import UnversionedOutputError, check_no_unversioned_leftovers


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
