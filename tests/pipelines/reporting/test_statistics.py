"""k activations against one baseline: Holm-adjusted p-values, Bonferroni intervals, and what holds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from activation_compare.params import CompareParams, DataParams, TrainingParams
from activation_compare.pipelines.reporting.nodes import compare_activations
from activation_compare.pipelines.reporting.statistics import adjusted_level, holds, holm, paired_difference
from report_factory import make_report

RUN = {"environment": "smoke", "outputs": "data/smoke", "git_commit": None, "git_local_changes": None,
       "date": "2026-12-01 15:41 UTC"}


def test_holm_matches_a_hand_computed_step_down():
    # Sorted 0.01, 0.02, 0.03, 0.04 with m = 4: 0.04, 0.06, 0.06 (monotone: max(0.06, 0.06)), 0.06.
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # Capped at 1, and kept non-decreasing in the sorted order.
    assert holm([0.5, 0.001, 0.4]) == pytest.approx([0.8, 0.003, 0.8])
    # One comparison: unchanged. A missing p stays missing but still counts in m.
    assert holm([0.0123]) == [0.0123]
    assert holm([None, 0.01]) == [None, pytest.approx(0.02)]


def test_holm_on_the_textbook_example():
    # p = 0.01, 0.04, 0.03, 0.005 (m = 4), sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1:
    # 0.02, 0.03, 0.06, 0.04 -> non-decreasing 0.02, 0.03, 0.06, 0.06; at 0.05 only two are rejected.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_bonferroni_interval_is_the_t_interval_at_level_one_minus_alpha_over_m():
    assert adjusted_level(0.95, 1) == pytest.approx(0.95)
    assert adjusted_level(0.95, 4) == pytest.approx(0.9875)
    values, base = [0.75, 0.76, 0.74, 0.75], [0.70, 0.71, 0.72, 0.71]
    diff = paired_difference(values, base, adjusted_level(0.95, 4))
    d = np.subtract(values, base)
    half = stats.t.ppf(1 - 0.05 / 8, df=3) * d.std(ddof=1) / np.sqrt(4)
    assert diff["ci_low"] == pytest.approx(d.mean() - half) and diff["ci_high"] == pytest.approx(d.mean() + half)
    assert diff["p_value"] == pytest.approx(stats.ttest_rel(values, base).pvalue)


def test_a_difference_holds_only_with_adjusted_p_below_alpha_and_an_interval_excluding_zero():
    assert holds(0.01, 0.001, 0.02, 0.05)
    assert not holds(0.06, 0.001, 0.02, 0.05)
    assert not holds(0.01, -0.001, 0.02, 0.05)
    assert not holds(None, None, None, 0.05)


SEEDS = [0, 1, 2, 3, 4]
BASE = [0.700, 0.705, 0.698, 0.702, 0.701]
NOISE = {
    "leaky_a": [0.001, -0.002, 0.003, -0.001, 0.000],
    "leaky_b": [-0.003, 0.002, 0.001, 0.000, -0.002],
    "prelu": [0.002, 0.001, -0.003, 0.002, -0.001],
}
BETTER = [0.031, 0.029, 0.033, 0.030, 0.032]  # rrelu: +3 points, every seed


def _reports():
    reports = [make_report("relu", s, a) for s, a in zip(SEEDS, BASE, strict=True)]
    for name, noise in NOISE.items():
        reports += [make_report(name, s, a + n) for s, a, n in zip(SEEDS, BASE, noise, strict=True)]
    reports += [make_report("rrelu", s, a + b) for s, a, b in zip(SEEDS, BASE, BETTER, strict=True)]
    return reports


def test_with_four_activations_against_relu_only_the_one_made_to_differ_holds():
    activations = ["relu", *NOISE, "rrelu"]
    _, markdown, _, summary = compare_activations(
        CompareParams(activations=activations), RUN, DataParams(source="synthetic"),
        TrainingParams(epochs=3, seeds=SEEDS), *_reports(),
    )
    comparisons = summary["comparisons"]
    assert list(comparisons) == ["leaky_a", "leaky_b", "prelu", "rrelu"]
    section = summary["multiple_comparisons"]
    assert section["count"] == 4 and section["adjusted_level"] == pytest.approx(0.9875)
    assert section["holding"] == ["rrelu"]
    assert [c["holds"] for c in comparisons.values()] == [False, False, False, True]
    raw = [c["p_value"] for c in comparisons.values()]
    assert [c["p_value_adjusted"] for c in comparisons.values()] == pytest.approx(holm(raw))
    rrelu = comparisons["rrelu"]
    assert rrelu["p_value"] == pytest.approx(stats.ttest_rel(np.add(BASE, BETTER), BASE).pvalue)
    # The adjusted interval is wider than the raw one and still excludes 0.
    assert rrelu["ci_low_adjusted"] < rrelu["ci_low"] and rrelu["ci_low_adjusted"] > 0
    assert section["sentence"] == (
        "Against relu, rrelu (better, +3.1 pts) holds, adjusted for 4 comparisons (Holm p < 0.05 and a "
        "Bonferroni 98.8% interval excluding 0); the others do not."
    )
    assert section["sentence"] in markdown and "| rrelu | +3.10 | 5 |" in markdown


def test_with_one_comparison_the_adjusted_values_are_the_raw_ones():
    reports = [make_report("relu", s, a) for s, a in zip(SEEDS, BASE, strict=True)]
    reports += [make_report("rrelu", s, a + b) for s, a, b in zip(SEEDS, BASE, BETTER, strict=True)]
    _, _, _, summary = compare_activations(
        CompareParams(), RUN, DataParams(source="synthetic"), TrainingParams(epochs=3, seeds=SEEDS), *reports
    )
    rrelu = summary["comparisons"]["rrelu"]
    assert rrelu["p_value_adjusted"] == rrelu["p_value"]
    assert (rrelu["ci_low_adjusted"], rrelu["ci_high_adjusted"]) == pytest.approx((rrelu["ci_low"], rrelu["ci_high"]))
    assert summary["multiple_comparisons"]["sentence"].startswith("Against relu, rrelu (better, +3.1 pts) holds, p < 0.05")
