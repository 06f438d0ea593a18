"""The one Report type: its JSON format, old files refused, and reports that do not belong together."""

from __future__ import annotations

import json

import pytest

from activation_compare.datasets.report import ReportDataset
from activation_compare.errors import UserError
from activation_compare.params import CompareParams, DataParams, TrainingParams
from activation_compare.pipelines.reporting.nodes import compare_activations, compare_rigorous
from activation_compare.reports import REPORT_FORMAT, OldReportError, Report, ReportMismatchError
from report_factory import make_report

RUN = {"environment": "smoke", "outputs": "data/smoke", "git_commit": None, "git_local_changes": None,
       "date": "2026-12-01 15:41 UTC"}
DATA = DataParams(source="synthetic")
TRAINING = TrainingParams(epochs=3, seeds=[0, 1])


def test_a_report_round_trips_through_its_json_file(tmp_path):
    report = make_report("rrelu", 1, 0.61)
    dataset = ReportDataset(filepath=str(tmp_path / "report.json"))
    dataset.save(report)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["format"] == REPORT_FORMAT
    assert saved["settings"]["learning_rate"] == 0.001 and saved["data"]["source"] == "synthetic"
    assert saved["train_test_gap"] == pytest.approx(report.train_test_gap)
    assert dataset.load() == report
    assert Report.from_json(saved).settings_id() == report.settings_id()


def test_a_report_of_the_previous_format_is_refused_naming_the_file_and_how_to_regenerate_it(tmp_path):
    path = tmp_path / "relu_seed0_report.json"
    # What the project wrote before reports carried their settings.
    path.write_text(json.dumps({"model": "relu_seed0", "activation": "relu", "seed": 0, "test_accuracy": 0.6}))
    with pytest.raises(Exception) as raised:
        ReportDataset(filepath=str(path)).load()
    error = raised.value if isinstance(raised.value, OldReportError) else raised.value.__cause__
    assert isinstance(error, OldReportError) and isinstance(error, UserError)
    message = str(error)
    assert str(path) in message and "\n" not in message
    assert "rerun the `kedro run` command that made it" in message and "finished training is reused" in message


def test_the_settings_id_ignores_the_seed_and_the_activation_spec_but_not_the_settings():
    relu, rrelu = make_report("relu", 0), make_report("rrelu", 1)
    assert relu.settings_id() == rrelu.settings_id()
    assert make_report("relu", 0, learning_rate=0.01).settings_id() != relu.settings_id()
    assert make_report("relu", 0, data={"test_digest": "other"}).settings_id() != relu.settings_id()


def test_the_comparison_refuses_a_report_made_with_other_parameters():
    """Issue 22 item 2: a 3-epoch lr-0.01 relu beside a 2-epoch rrelu, under parameters saying 2 epochs."""
    reports = [make_report("relu", 0, 0.6, epochs=3, learning_rate=0.01), make_report("rrelu", 0, 0.6, epochs=2)]
    with pytest.raises(ReportMismatchError) as raised:
        compare_activations(CompareParams(), RUN, DATA, TrainingParams(epochs=2, seeds=[0]), *reports)
    message = str(raised.value)
    assert "relu_seed0" in message and "rrelu_seed0" not in message
    assert "settings.epochs is 3, the comparison's is 2" in message
    assert "settings.learning_rate is 0.01, the comparison's is 0.001" in message
    assert "kedro run --env smoke --pipeline=compare" in message


def test_the_comparison_refuses_reports_of_other_data_or_precision_than_each_others():
    other_data = make_report("rrelu", 0, 0.6, data={"test_digest": "ffff"})
    with pytest.raises(ReportMismatchError, match=r"relu_seed0 and rrelu_seed0 differ: data.test_digest"):
        compare_activations(CompareParams(), RUN, DATA, TRAINING, make_report("relu", 0), other_data)
    bf16 = make_report("rrelu", 0, 0.6, precision="auto", dtype_policy="mixed_bfloat16")
    with pytest.raises(ReportMismatchError, match=r"settings.dtype_policy 'float32' vs 'mixed_bfloat16'"):
        compare_activations(CompareParams(), RUN, DATA, TRAINING, make_report("relu", 0), bf16)


def test_the_rigorous_comparison_takes_each_activations_chosen_rate_and_refuses_another():
    selections = [
        {"activation": a, "learning_rate": rate, "reason": "best", "rule": "the rule", "trials": []}
        for a, rate in (("relu", 0.001), ("rrelu", 0.003))
    ]
    params = CompareParams(protocol="rigorous")
    good = [make_report("relu", 0, learning_rate=0.001, protocol="rigorous"),
            make_report("rrelu", 0, learning_rate=0.003, protocol="rigorous")]
    table, _, _, _ = compare_rigorous(params, RUN, DATA, TRAINING, *selections, *good, selections=2)
    assert table["learning_rate"].tolist() == [0.001, 0.003]
    stale = [good[0], make_report("rrelu", 0, learning_rate=0.001, protocol="rigorous")]
    with pytest.raises(ReportMismatchError, match=r"rrelu_seed0 .*settings.learning_rate is 0.001, its tuning chose 0.003"):
        compare_rigorous(params, RUN, DATA, TRAINING, *selections, *stale, selections=2)
    # A report of the original protocol is not one of the rigorous comparison's.
    with pytest.raises(ReportMismatchError, match=r"settings.protocol is 'original', the comparison's is 'rigorous'"):
        compare_rigorous(params, RUN, DATA, TRAINING, *selections, make_report("relu", 0), good[1], selections=2)
