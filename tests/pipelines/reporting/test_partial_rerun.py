"""Reports through the real ``kedro`` CLI: old reports re-reported without retraining, partial reruns never mixed.

Issue 22 item 2: ``--to-nodes relu.evaluate_model_relu_seed0_node`` with other
``--params``, then ``--from-nodes compare_activations_node``, used to write a
comparison of a 3-epoch lr-0.01 relu beside an older 2-epoch rrelu under the
heading "epochs: 2". Issue 23: one Report type whose files carry their settings;
a report file of the previous format is refused with one line, and rerunning the
comparison re-evaluates the finished models (reused, not retrained).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import kedro_cli, run_output

pytestmark = pytest.mark.slow

REPORTS = Path("data/smoke/07_model_output")


def _report(project: Path, model: str) -> dict:
    return json.loads(run_output(project / REPORTS / f"{model}_report.json").read_text())


def _short_refusal(result, *fragments: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    for fragment in fragments:
        assert fragment in output, output[-3000:]


def test_old_reports_are_refused_then_re_reported_and_a_partial_rerun_is_never_mixed(project_copy: Path):
    first = kedro_cli(project_copy, "run", "--env", "smoke", "--pipeline=compare", timeout=600)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    trained = {m: _report(project_copy, m) for m in ("relu_seed0", "rrelu_seed0")}
    assert trained["relu_seed0"]["settings"]["epochs"] == 2

    # Reports as the previous code wrote them (no format, settings or data), as the latest versions.
    for model, report in trained.items():
        old = {k: report[k] for k in ("model", "activation", "seed", "test_accuracy", "best_val_accuracy")}
        folder = project_copy / REPORTS / f"{model}_report.json" / "2099-01-01T00.00.00.000Z"
        folder.mkdir(parents=True)
        (folder / f"{model}_report.json").write_text(json.dumps(old))
    refused = kedro_cli(project_copy, "run", "--env", "smoke", "--from-nodes", "compare_activations_node", timeout=300)
    _short_refusal(refused, "2099-01-01T00.00.00.000Z", "written by an older activation-compare",
                   "rerun the `kedro run` command that made it")
    for model in trained:
        # (Versions sort by name: the fake one would stay the latest.)
        old = project_copy / REPORTS / f"{model}_report.json" / "2099-01-01T00.00.00.000Z"
        for file in old.iterdir():
            file.unlink()
        old.rmdir()

    # The same command again: the finished models are reused and re-evaluated, the reports are new ones.
    again = kedro_cli(project_copy, "run", "--env", "smoke", "--pipeline=compare", timeout=600)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    for model, report in trained.items():
        rerun = _report(project_copy, model)
        assert rerun["format"] == report["format"]
        # Reused, not retrained: the same history (epoch times included) and the same test accuracy.
        assert rerun["curves"] == report["curves"] and rerun["test_accuracy"] == report["test_accuracy"]

    # Issue 22 item 2: one model retrained with other settings, then the comparison alone.
    partial = kedro_cli(
        project_copy, "run", "--env", "smoke", "--to-nodes", "relu.evaluate_model_relu_seed0_node",
        "--params", "training.optimizer.learning_rate=0.01,training.epochs=3", timeout=600,
    )
    assert partial.returncode == 0, (partial.stdout + partial.stderr)[-3000:]
    assert _report(project_copy, "relu_seed0")["settings"]["epochs"] == 3
    mixed = kedro_cli(project_copy, "run", "--env", "smoke", "--from-nodes", "compare_activations_node", timeout=300)
    _short_refusal(mixed, "relu_seed0", "settings.epochs is 3, the comparison's is 2",
                   "settings.learning_rate is 0.01, the comparison's is 0.001",
                   "kedro run --env smoke --pipeline=compare")
    # The message the run ends with: the refusal, the report that differs, the command; no traceback.
    assert len(mixed.stderr.strip().splitlines()) <= 5, mixed.stderr[-3000:]
