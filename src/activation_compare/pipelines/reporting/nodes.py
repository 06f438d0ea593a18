"""Reporting: the side-by-side comparison of activations (figures: figures.py; summary: summary.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from activation_compare.lazy_types import DataFrame, Figure
from activation_compare.params import CompareParams, DataParams, Protocol, TrainingParams
from activation_compare.reports import Report, ReportMismatchError, mismatches

from .figures import curves_figure
from .provenance import describe_run, provenance_markdown
from .statistics import paired_difference
from .summary import (
    PER_MODEL_COLUMNS,
    build_summary,
    comparisons_table,
    per_activation_table,
    per_seed_table,
    verdict,
)

# pandas and SciPy load when the comparison runs, not when the pipeline is built (lazy_types.py).

# The columns of comparison.csv (the rigorous protocol adds learning_rate after seed).
TABLE_COLUMNS = PER_MODEL_COLUMNS

__all__ = ["TABLE_COLUMNS", "compare_activations", "compare_rigorous", "paired_difference", "verdict"]


def expected_settings(data: DataParams, training: TrainingParams, protocol: Protocol) -> dict[str, Any]:
    """The settings the comparison prints, by report field: every report must have them."""
    expected: dict[str, Any] = {
        "settings.epochs": training.epochs,
        "settings.batch_size": training.batch_size,
        "settings.optimizer": training.optimizer.name,
        "settings.protocol": protocol.value,
        "data.source": data.source,
        "data.path": data.path,
        "data.limit_train": data.limit_train,
        "data.limit_test": data.limit_test,
        "data.validation_split": data.validation_split,
        "data.split_seed": data.split_seed,
        "data.max_images": data.max_images,
    }
    if protocol is not Protocol.RIGOROUS:
        expected["settings.learning_rate"] = training.optimizer.learning_rate
    return expected


def check_reports(
    reports: Sequence[Report],
    params: CompareParams,
    run: Mapping[str, Any],
    data: DataParams,
    training: TrainingParams,
    learning_rates: Mapping[str, float] | None = None,
) -> None:
    """Refuse reports that do not belong together or disagree with the parameters the comparison prints.

    Raises:
        ReportMismatchError: Naming each report that differs, what differs, and
            the command that makes matching reports.
    """
    rigorous = params.protocol is Protocol.RIGOROUS
    problems = mismatches(
        reports, expected_settings(data, training, params.protocol), rigorous=rigorous, learning_rates=learning_rates
    )
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise ReportMismatchError(
            "The comparison's reports were not all made with its settings (a partial rerun with other "
            f"--params?):\n{listed}\nMake matching reports by running the whole comparison with one set of "
            f"parameters: kedro run --env {run.get('environment', '<env>')} --pipeline=compare [--params ...] "
            "(finished models are reused, the others trained)."
        )


def run_settings(reports: Sequence[Report], rigorous: bool) -> dict[str, Any]:
    """The training settings every report shares (after :func:`check_reports`), for the provenance."""
    first = reports[0].settings
    rates: Any = first.learning_rate
    if rigorous:
        rates = {r.activation: r.settings.learning_rate for r in reports}
    return {
        "batch_size": first.batch_size,
        "learning_rate": rates,
        "optimizer": first.optimizer,
        "protocol": first.protocol,
        "precision": first.precision,
        "dtype_policy": first.dtype_policy,
        "architecture": first.architecture,
        "parameter_count": reports[0].parameter_count,
        # What the verdict cost: every model's training time, summed (the run's wall time is longer).
        "training_time_s": sum(r.training_time_s for r in reports),
    }


def _compare(
    params: CompareParams,
    run: dict[str, Any],
    data: DataParams,
    training: TrainingParams,
    reports: Sequence[Report],
    learning_rates: Mapping[str, float] | None = None,
    tuning: Mapping[str, Any] | None = None,
) -> tuple[DataFrame, str, Figure, dict[str, Any]]:
    import pandas as pd

    check_reports(reports, params, run, data, training, learning_rates)
    rigorous = params.protocol is Protocol.RIGOROUS
    provenance = {**describe_run(run, data, training), **(run_settings(reports, rigorous) if reports else {})}
    summary = build_summary(
        reports, params.activations, params.baseline, params.confidence_level, provenance, rigorous=rigorous
    )
    if tuning is not None:
        summary["tuning"] = dict(tuning)
    columns = list(summary["per_model"][0]) if summary["per_model"] else TABLE_COLUMNS
    table = pd.DataFrame(summary["per_model"], columns=columns)
    figure = curves_figure(summary["curves"], provenance)
    return table, comparison_markdown(summary), figure, summary


def compare_activations(
    params: CompareParams,
    run: dict[str, Any],
    data: DataParams,
    training: TrainingParams,
    *reports: Report,
) -> tuple[DataFrame, str, Figure, dict[str, Any]]:
    """Put every trained model side by side and say how sure the verdict is.

    Args:
        params: The ``compare`` parameters (activations, baseline, confidence level).
        run: The ``run_provenance`` dataset (environment, outputs, git commit, date, CPU).
        data: The ``data`` parameters (with ``run`` and ``training``, the
            provenance of the comparison).
        training: The ``training`` parameters.
        *reports: One evaluation report per trained model (activation × seed).

    Returns:
        The per-model table, the comparison as Markdown, the overlay figure of
        accuracy curves, and the summary (:mod:`.summary`: provenance, per-model
        rows, per-activation means and standard deviations, mean curves, and
        each activation against the baseline, adjusted for the number of
        comparisons). Synthetic data are said so in the Markdown and the figure.

    Raises:
        ReportMismatchError: If the reports were made with other settings or
            data than each other's or the parameters'.
    """
    return _compare(params, run, data, training, reports)


def comparison_markdown(summary: Mapping[str, Any]) -> str:
    """``comparison.md``, from the summary alone."""
    lines = ["# Activation comparison", "", *provenance_markdown(summary["provenance"])]
    lines += ["## Per model", "", *per_seed_table(summary), ""]
    lines += ["## Per activation (accuracies in %, mean ± s.d. over seeds)", "", *per_activation_table(summary)]
    if summary["comparisons"]:
        section = summary["multiple_comparisons"]
        lines += ["", f"## Against the baseline ({summary['baseline']})", ""]
        lines += [f"- {c['verdict']}" for c in summary["comparisons"].values()]
        lines += ["", *comparisons_table(summary), "", section["sentence"]]
    tuning = summary.get("tuning")
    if tuning:
        rules = sorted({t["rule"] for t in tuning.values()})
        lines += [
            "",
            "## Protocol: rigorous",
            "",
            "Learning rate and epoch chosen on a validation split held out of the training set; "
            "each final model keeps the weights of its best validation epoch (`best_epoch`) and "
            "is evaluated on the test set once.",
            "",
            "| activation | chosen learning rate | why |",
            "|---|---|---|",
            *(f"| {name} | {t['learning_rate']:g} | {t['reason']} |" for name, t in tuning.items()),
            "",
            f"Rule: {'; '.join(rules)}.",
        ]
    return "\n".join(lines) + "\n"


def compare_rigorous(
    params: CompareParams,
    run: dict[str, Any],
    data: DataParams,
    training: TrainingParams,
    *inputs: Any,
    selections: int,
) -> tuple[DataFrame, str, Figure, dict[str, Any]]:
    """The comparison of the rigorous protocol: as :func:`compare_activations`, plus how it chose.

    Args:
        params: The ``compare`` parameters.
        run: The ``run_provenance`` dataset, as for :func:`compare_activations`.
        data: The ``data`` parameters, as for :func:`compare_activations`.
        training: The ``training`` parameters, as for :func:`compare_activations`.
        *inputs: The learning-rate selection of every activation (the first
            ``selections``), then one evaluation report per final model.
        selections: How many of ``inputs`` are selections.

    Returns:
        As :func:`compare_activations`; the table gains each model's learning
        rate, the summary a ``tuning`` section (per activation: the chosen rate,
        why, every trial's score), the Markdown a section saying the same.
        Each report's learning rate must be the one its activation's tuning chose.
    """
    chosen, reports = inputs[:selections], inputs[selections:]
    tuning = {
        s["activation"]: {
            "learning_rate": s["learning_rate"],
            "reason": s["reason"],
            "rule": s["rule"],
            "trials": [
                {k: t[k] for k in ("learning_rate", "best_val_accuracy", "best_epoch", "epochs", "diverged")}
                for t in s["trials"]
            ],
        }
        for s in chosen
    }
    rates = {name: t["learning_rate"] for name, t in tuning.items()}
    return _compare(params, run, data, training, reports, learning_rates=rates, tuning=tuning)
