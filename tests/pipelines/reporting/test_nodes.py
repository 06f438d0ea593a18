import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from activation_compare.params import CompareParams, DataParams, TrainingParams
from activation_compare.pipelines.reporting.nodes import (
    TABLE_COLUMNS,
    compare_activations,
    paired_difference,
    verdict,
)
from activation_compare.pipelines.reporting.figures import plot_model_figures
from activation_compare.pipelines.reporting.provenance import SYNTHETIC_WARNING
from report_factory import make_report

COMMIT = "0123456789abcdef0123456789abcdef01234567"
RUN = {"environment": "smoke", "outputs": "data/smoke", "git_commit": COMMIT,
       "git_local_changes": False, "date": "2026-12-01 15:41 UTC"}
SYNTHETIC = DataParams(source="synthetic")
REAL = DataParams(source="image_folder", path="../shared/data/cifar10-jpeg.tar.gz", limit_train=10000)
TRAINING = TrainingParams(epochs=3, seeds=[0, 1])
# The provenance inputs of every figure and of the comparison, in the pipelines' order.
PROVENANCE = (RUN, SYNTHETIC, TRAINING)


def _texts(figure):
    """Every piece of text drawn on a figure (titles, labels, footers, watermarks)."""
    figure.canvas.draw()
    return " ".join(t.get_text() for t in figure.findobj(lambda artist: hasattr(artist, "get_text")))


def _report(activation, seed, test_accuracy, epochs=3, data=None):
    return make_report(activation, seed, test_accuracy, epochs=epochs, data=data)


# The data of REAL, as its reports record it.
REAL_DATA = {"source": "image_folder", "path": "../shared/data/cifar10-jpeg.tar.gz", "limit_train": 10000}


def test_paired_difference_matches_a_hand_computed_t_interval():
    diff = paired_difference([0.70, 0.72, 0.71], [0.69, 0.70, 0.70], 0.95)
    d = np.array([0.01, 0.02, 0.01])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert diff["n"] == 3
    assert diff["mean"] == pytest.approx(d.mean())
    assert diff["ci_low"] == pytest.approx(d.mean() - half)
    assert diff["ci_high"] == pytest.approx(d.mean() + half)
    assert 0 < diff["p_value"] < 0.1


# Pinned statistics. The expected values come from the Student t distribution's
# closed forms, not from SciPy: with 2 degrees of freedom
#   CDF(t) = 1/2 + t / (2 sqrt(t^2 + 2)),   so   two-sided p = 1 - |t| / sqrt(t^2 + 2)
#   and the quantile of u = 2 CDF - 1 is  t = u sqrt(2 / (1 - u^2));
# with 1 degree of freedom (the Cauchy distribution)
#   CDF(t) = 1/2 + atan(t) / pi,  two-sided p = 1 - 2 atan(|t|) / pi,  quantile tan(pi u / 2).
# A one-sided p, n instead of n - 1 degrees of freedom or a one-sided quantile
# moves every value below by far more than the tolerance.


def _two_sided_p_df2(t):
    return 1 - abs(t) / math.sqrt(t * t + 2)


def _t_quantile_df2(confidence_level):
    return confidence_level * math.sqrt(2 / (1 - confidence_level**2))


# Differences (0.05, 0.05, 0.02): mean 0.04, sample sd sqrt(0.0006 / 2) = 0.01 * sqrt(3),
# standard error 0.01, t = 4 with 2 degrees of freedom.
BETTER = [0.75, 0.76, 0.74]
BASE = [0.70, 0.71, 0.72]


@pytest.mark.parametrize(
    ("confidence_level", "t_quantile"),
    [(0.95, 4.302652729749464), (0.90, 2.919985580353726), (0.99, 9.924843200918286)],
)
def test_paired_difference_is_pinned_for_t_4_with_2_degrees_of_freedom(confidence_level, t_quantile):
    diff = paired_difference(BETTER, BASE, confidence_level)
    # The closed form agrees with the tabled quantiles (a check on the formula itself).
    assert _t_quantile_df2(confidence_level) == pytest.approx(t_quantile, rel=1e-12)
    assert diff["n"] == 3
    assert diff["mean"] == pytest.approx(0.04, rel=1e-9)
    # p = 1 - 4 / sqrt(18) = 1 - 2 sqrt(2) / 3 = 0.0571909584...
    assert _two_sided_p_df2(4.0) == pytest.approx(1 - 2 * math.sqrt(2) / 3, rel=1e-12)
    assert diff["p_value"] == pytest.approx(0.05719095841793653, rel=1e-9)
    half_width = t_quantile * 0.01
    assert diff["ci_low"] == pytest.approx(0.04 - half_width, rel=1e-9)
    assert diff["ci_high"] == pytest.approx(0.04 + half_width, rel=1e-9)


def test_paired_difference_p_is_two_sided_whichever_way_the_difference_goes():
    worse = paired_difference(BASE, BETTER, 0.95)  # t = -4
    assert worse["mean"] == pytest.approx(-0.04, rel=1e-9)
    assert worse["p_value"] == pytest.approx(0.05719095841793653, rel=1e-9)
    assert worse["ci_low"] == pytest.approx(-0.04 - 0.04302652729749464, rel=1e-9)
    assert worse["ci_high"] == pytest.approx(-0.04 + 0.04302652729749464, rel=1e-9)


def test_paired_difference_is_pinned_for_two_seeds_one_degree_of_freedom():
    # Differences (0.03, 0.01): mean 0.02, sd 0.01 * sqrt(2), standard error 0.01, t = 2.
    diff = paired_difference([0.73, 0.71], [0.70, 0.70], 0.95)
    assert diff["n"] == 2
    assert diff["p_value"] == pytest.approx(1 - 2 * math.atan(2) / math.pi, rel=1e-9)  # 0.29517
    t_quantile = math.tan(math.pi * 0.95 / 2)  # 12.706204736174698
    assert t_quantile == pytest.approx(12.706204736174698, rel=1e-12)
    assert diff["ci_low"] == pytest.approx(0.02 - 0.01 * t_quantile, rel=1e-9)
    assert diff["ci_high"] == pytest.approx(0.02 + 0.01 * t_quantile, rel=1e-9)


def test_single_seed_has_no_interval_and_says_so():
    diff = paired_difference([0.688], [0.6913], 0.95)
    assert diff["ci_low"] is None
    text = verdict("rrelu", "relu", diff, 0.95)
    assert text.startswith("rrelu − relu = -0.3 pts")
    assert "single seed" in text


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [(-0.003, 0.011, "no significant difference at 5 seeds"),
     (0.001, 0.011, "significantly better"),
     (-0.02, -0.001, "significantly worse")],
)
def test_verdict_reads_the_interval(low, high, expected):
    diff = {"n": 5, "mean": (low + high) / 2, "ci_low": low, "ci_high": high}
    assert expected in verdict("rrelu", "relu", diff, 0.95)


def test_compare_builds_table_summary_markdown_and_figure():
    reports = [
        _report("relu", 0, 0.69), _report("relu", 1, 0.70),
        _report("rrelu", 0, 0.70), _report("rrelu", 1, 0.705),
    ]
    table, markdown, figure, summary = compare_activations(
        CompareParams(activations=["relu", "rrelu"]), *PROVENANCE, *reports
    )
    assert list(table.columns) == TABLE_COLUMNS
    assert len(table) == 4
    assert summary["per_activation"]["relu"]["test_accuracy_mean"] == pytest.approx(0.695)
    rrelu = summary["comparisons"]["rrelu"]
    assert rrelu["n"] == 2 and rrelu["mean"] == pytest.approx(0.0075)
    assert "relu" not in summary["comparisons"]
    assert "rrelu − relu = +0.8 pts" in markdown
    assert isinstance(figure, Figure)
    # one mean line per activation and curve kind, plus a spread band each
    assert len(figure.axes[0].lines) == 4
    assert len(figure.axes[0].collections) == 4


def test_model_figures_are_figures():
    curves, confusion = plot_model_figures(_report("rrelu", 0, 0.6), *PROVENANCE)
    assert isinstance(curves, Figure) and isinstance(confusion, Figure)
    assert len(curves.axes[0].lines) == 2


def test_the_rigorous_report_says_the_chosen_rate_and_why():
    from activation_compare.pipelines.reporting.nodes import compare_rigorous

    selections = [
        {"activation": a, "learning_rate": rate, "reason": f"{a} because", "rule": "the rule",
         "trials": [{"learning_rate": rate, "best_val_accuracy": 0.6, "best_epoch": 2, "epochs": 3,
                     "diverged": False}]}
        for a, rate in (("relu", 0.001), ("rrelu", 0.003))
    ]
    rates = {"relu": 0.001, "rrelu": 0.003}
    reports = [make_report(a, s, 0.6 + s / 100, learning_rate=rates[a], protocol="rigorous")
               for a in ("relu", "rrelu") for s in (0, 1)]
    params = CompareParams(protocol="rigorous")
    table, markdown, figure, summary = compare_rigorous(params, *PROVENANCE, *selections, *reports, selections=2)
    assert table["learning_rate"].tolist() == [0.001, 0.001, 0.003, 0.003]
    assert summary["protocol"] == "rigorous"
    assert summary["tuning"]["rrelu"]["learning_rate"] == 0.003
    assert summary["tuning"]["relu"]["reason"] == "relu because"
    assert summary["comparisons"]["rrelu"]["n"] == 2  # the paired comparison, as before
    assert "| rrelu | 0.003 | rrelu because |" in markdown and "learning rate" in markdown
    assert summary["provenance"]["learning_rate"] == {"relu": 0.001, "rrelu": 0.003}
    assert isinstance(figure, Figure)


def test_model_figures_have_whole_epoch_ticks_numbered_from_one():
    from activation_compare.pipelines.reporting.figures import plot_model_figures

    curves, _ = plot_model_figures(make_report(epochs=2), *PROVENANCE)
    curves.canvas.draw()
    ticks = [t for t in curves.axes[0].get_xticks() if 1 <= t <= 2]
    assert ticks == [1.0, 2.0]


def test_synthetic_data_are_said_plainly_on_figures_and_in_the_comparison():
    reports = [_report(a, s, 0.6) for a in ("relu", "rrelu") for s in (0, 1)]
    _, markdown, figure, summary = compare_activations(CompareParams(), *PROVENANCE, *reports)
    assert SYNTHETIC_WARNING == "SYNTHETIC DATA — not CIFAR-10"
    assert SYNTHETIC_WARNING in markdown.split("## Per model")[0]
    assert SYNTHETIC_WARNING in _texts(figure)
    for model_figure in plot_model_figures(reports[0], *PROVENANCE):
        assert SYNTHETIC_WARNING in _texts(model_figure)
    assert summary["provenance"]["synthetic"] is True


def test_provenance_names_data_environment_epochs_seeds_date_and_commit():
    reports = [_report(a, 0, 0.6, data=REAL_DATA) for a in ("relu", "rrelu")]
    run = {**RUN, "cpu": {"model": "Intel(R) Xeon(R) Platinum 8481C", "avx512_bf16": True, "amx_bf16": True,
                          "bfloat16": True}, "load_average": [2.5, 2.25, 2.0]}
    _, markdown, figure, summary = compare_activations(CompareParams(), run, REAL, TRAINING, *reports)
    assert summary["provenance"] == {
        "data_source": "image_folder", "data_path": "../shared/data/cifar10-jpeg.tar.gz",
        "data_name": "cifar10-jpeg.tar.gz",
        "synthetic": False, "limit_train": 10000, "limit_test": None,
        "environment": "smoke", "outputs": "data/smoke", "epochs": 3, "seeds": [0, 1],
        "date": "2026-12-01 15:41 UTC", "git_commit": COMMIT, "git_local_changes": False,
        "cpu": run["cpu"], "batch_size": 100, "learning_rate": 0.001, "optimizer": "adam",
        "protocol": "original", "precision": "float32", "dtype_policy": "float32",
        "architecture": "seed_cnn", "parameter_count": 42442,
        # Two models of 3 epochs of 1.0, 1.5 and 2.0 s.
        "training_time_s": 9.0, "load_average": [2.5, 2.25, 2.0],
    }
    assert "- training time: 0.1 min, all models; load average 2.50 / 2.25 / 2.00 (1/5/15 min)" in markdown
    assert "- precision: float32 requested, dtype policy float32" in markdown
    assert "- CPU: Intel(R) Xeon(R) Platinum 8481C, native bfloat16 (AVX512_BF16/AMX)" in markdown
    assert "SYNTHETIC" not in markdown and "SYNTHETIC" not in _texts(figure)
    for text in (markdown, _texts(figure), _texts(plot_model_figures(reports[0], RUN, REAL, TRAINING)[1])):
        for fact in ("image_folder (../shared/data/cifar10-jpeg.tar.gz)", "at most 10000 train images",
                     "smoke", "2026-12-01 15:41 UTC", COMMIT[:10]):
            assert fact in text
    assert "- epochs: 3; seeds: 0, 1" in markdown
    assert "3 epochs · run's seeds 0,1" in _texts(figure)


def test_a_commit_with_local_changes_says_so():
    run = {**RUN, "git_local_changes": True}
    _, markdown, _, _ = compare_activations(CompareParams(), run, REAL, TRAINING, _report("relu", 0, 0.6, data=REAL_DATA))
    assert f"git commit: {COMMIT[:10]} + local changes" in markdown
