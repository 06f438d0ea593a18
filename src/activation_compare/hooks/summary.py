"""The run's last lines: what the comparison found and where this run's report is.

A ``compare`` run ends with the verdict of every activation against the
baseline (the same sentences as ``comparison.md``) and the exact paths of the
files this run wrote, each a version named by the run, so a user never has to
find the run id to open them. The tracking hook adds the MLflow link after it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from activation_compare.identity import ComparisonOutput

logger = logging.getLogger("activation_compare.summary")


def _path_of(catalog: Any, name: str) -> Path | None:
    """The file this run saved for a catalog entry, if it is a run-versioned file."""
    try:
        dataset = catalog.get(name)
    except Exception:  # noqa: BLE001 - not in this catalog: nothing to point at
        return None
    run_path = getattr(dataset, "run_path", None)
    return run_path() if callable(run_path) else None


def _shown(path: Path, root: Path) -> str:
    """A path relative to the project folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def summary_lines(summary: dict[str, Any], paths: dict[str, Path], root: Path) -> list[str]:
    """The lines the run ends with, from the comparison's summary and this run's files."""
    comparisons = summary.get("comparisons") or {}
    if comparisons:
        lines = [f"Result: {comparison['verdict']}" for comparison in comparisons.values()]
        adjusted = summary.get("multiple_comparisons") or {}
        if len(comparisons) > 1 and adjusted.get("sentence"):
            lines.append(f"Result: {adjusted['sentence']}")
    else:
        lines = ["Result: one activation, nothing to compare it with."]
    labels = {
        ComparisonOutput.MARKDOWN: "report",
        ComparisonOutput.CURVES: "curves",
        ComparisonOutput.SUMMARY: "summary",
        ComparisonOutput.TABLE: "table",
    }
    for output, label in labels.items():
        if output in paths:
            lines.append(f"  {label + ':':8} {_shown(paths[output], root)}")
    return lines


class RunSummaryHook:
    """Logs the verdict and this run's report paths once a ``compare`` pipeline has finished."""

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        if ComparisonOutput.SUMMARY not in pipeline.all_outputs():
            return
        paths = {
            output: path
            for output in ComparisonOutput
            if (path := _path_of(catalog, output)) is not None
        }
        try:
            summary = catalog.load(ComparisonOutput.SUMMARY)
        except Exception as exc:  # noqa: BLE001 - the run succeeded; say what is missing and go on
            logger.warning("The comparison's summary could not be read back: %s", exc)
            return
        root = Path(run_params.get("project_path") or ".")
        for line in summary_lines(summary, paths, root):
            logger.info("%s", line)
