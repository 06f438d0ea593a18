"""The lines a compare run ends with (hooks/summary.py)."""

from __future__ import annotations

from pathlib import Path

from activation_compare.hooks.summary import summary_lines


def _comparison(verdict: str) -> dict[str, str]:
    return {"verdict": verdict}


def test_one_comparison_ends_with_its_verdict_only(tmp_path: Path):
    summary = {
        "comparisons": {"rrelu": _comparison("rrelu − relu = +0.1 pts, 95% CI [−0.4, +0.6]: no significant difference")},
        "multiple_comparisons": {"sentence": "Against relu, no difference holds."},
    }
    assert summary_lines(summary, {}, tmp_path) == [
        "Result: rrelu − relu = +0.1 pts, 95% CI [−0.4, +0.6]: no significant difference"
    ]


def test_several_comparisons_end_with_what_holds_after_the_adjustment(tmp_path: Path):
    sentence = "Against relu, prelu (better, +1.0 pts) holds, adjusted for 2 comparisons; the others do not."
    summary = {
        "comparisons": {"prelu": _comparison("prelu − relu = +1.0 pts"), "rrelu": _comparison("rrelu − relu = +0.1 pts")},
        "multiple_comparisons": {"sentence": sentence},
    }
    lines = summary_lines(summary, {}, tmp_path)
    assert lines == ["Result: prelu − relu = +1.0 pts", "Result: rrelu − relu = +0.1 pts", f"Result: {sentence}"]


def test_a_single_activation_says_there_is_nothing_to_compare(tmp_path: Path):
    assert summary_lines({"comparisons": {}}, {}, tmp_path) == ["Result: one activation, nothing to compare it with."]
