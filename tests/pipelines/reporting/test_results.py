"""The docs' results tables generated from a committed summary (``python -m activation_compare.results``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from activation_compare.results import ResultsError, main, regenerate
from conftest import test_env

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[3]
SUMMARY = "tests/pipelines/reporting/fixtures/comparison_summary.json"


def _blocks(*tables: str) -> str:
    return "# Results\n\n" + "\n".join(
        f"<!-- results: table={t} source={SUMMARY} -->\nstale\n<!-- /results -->\n" for t in tables
    )


def test_the_committed_fixture_is_up_to_date_with_its_summary():
    assert main(["--check", str(FIXTURES / "results.md")]) == 0


def test_blocks_are_generated_from_the_summary_with_their_source_and_command():
    text = regenerate(_blocks("per_seed", "per_activation", "comparisons"), "docs/x.md", ROOT)
    summary = json.loads((ROOT / SUMMARY).read_text())
    assert "stale" not in text
    # Per seed: every model, its test accuracy in %.
    for row in summary["per_model"]:
        assert f"| {row['activation']} | {row['seed']} | {100 * row['test_accuracy']:.2f} |" in text
    # Per activation: mean ± s.d. over seeds.
    relu = summary["per_activation"]["relu"]
    assert f"| relu | 3 | {100 * relu['test_accuracy_mean']:.2f} ± {100 * relu['test_accuracy_std']:.2f} |" in text
    # The comparisons, adjusted, and the sentence on what holds.
    assert "| rrelu | +0.99 | 3 |" in text and text.count("| yes |") == 1
    assert summary["multiple_comparisons"]["sentence"] in text
    assert text.count(f"Generated from `{SUMMARY}`") == 3
    assert text.count("by `python -m activation_compare.results docs/x.md`") == 3
    # Idempotent: regenerating a generated text changes nothing.
    assert regenerate(text, "docs/x.md", ROOT) == text


def test_the_test_error_table_and_the_provenance_list_come_from_the_summary():
    text = regenerate(_blocks("test_error", "provenance"), "docs/x.md", ROOT)
    summary = json.loads((ROOT / SUMMARY).read_text())
    relu, rrelu = summary["per_activation"]["relu"], summary["per_activation"]["rrelu"]
    # Test error = 100 − accuracy, as the RReLU paper's table; the difference to the baseline in error points.
    assert f"| relu | 3 | {100 - 100 * relu['test_accuracy_mean']:.2f} ± {100 * relu['test_accuracy_std']:.2f} | baseline |" in text
    assert f"| rrelu | 3 | {100 - 100 * rrelu['test_accuracy_mean']:.2f} ±" in text
    assert f"| {-100 * summary['comparisons']['rrelu']['mean']:+.2f} |" in text
    # The provenance: CPU, precision and commit as recorded.
    provenance = summary["provenance"]
    assert provenance["cpu"]["model"] in text and provenance["dtype_policy"] in text
    assert provenance["git_commit"] in text and "stale" not in text


def test_check_exits_1_with_a_diff_when_a_block_differs(tmp_path, capsys):
    # A copy of the repository's fixture folder, at the same path from its root.
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / Path(SUMMARY).parent).mkdir(parents=True)
    shutil.copy(ROOT / SUMMARY, tmp_path / SUMMARY)
    page = tmp_path / Path(SUMMARY).parent / "results.md"
    shutil.copy(FIXTURES / "results.md", page)
    page.write_text(page.read_text().replace("| 68.06 |", "| 68.10 |"))
    before = page.read_text()
    assert main(["--check", str(page)]) == 1
    out = capsys.readouterr().out
    assert "-| relu | 0 | 68.10 |" in out and "+| relu | 0 | 68.06 |" in out
    assert page.read_text() == before  # --check changes nothing
    assert main([str(page)]) == 0 and main(["--check", str(page)]) == 0
    assert page.read_text() == (FIXTURES / "results.md").read_text()


def test_an_unknown_table_or_an_old_summary_is_one_message(tmp_path):
    with pytest.raises(ResultsError, match=r"docs/x.md:3: a results block needs table=<per_seed\|per_activation\|comparisons\|test_error\|provenance>"):
        regenerate(_blocks("nonsense"), "docs/x.md", ROOT)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"baseline": "relu", "per_activation": {}, "comparisons": {}}))
    (tmp_path / "pyproject.toml").write_text("")
    text = "<!-- results: table=per_seed source=old.json -->\n<!-- /results -->\n"
    with pytest.raises(ResultsError, match=r"old.json is a comparison summary of format None, not 2: regenerate it"):
        regenerate(text, "x.md", tmp_path)


def test_the_figure_command_draws_the_mean_curves(tmp_path):
    out = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "activation_compare.results", "figure", str(ROOT / SUMMARY), str(out)],
        capture_output=True, text=True, env=test_env(), timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_the_curves_in_the_summary_are_mean_and_sd_over_seeds():
    summary = json.loads((ROOT / SUMMARY).read_text())
    relu = summary["curves"]["relu"]
    assert relu["seeds"] == 3 and relu["epoch"] == [1, 2, 3]
    # Seeds s = 0, 1, 2 have validation curves 0.40 + 0.1 e + 0.01 s: mean + 0.01, s.d. 0.01.
    assert relu["val_accuracy_mean"] == pytest.approx([0.41, 0.51, 0.61])
    assert relu["val_accuracy_std"] == pytest.approx([0.01, 0.01, 0.01])
