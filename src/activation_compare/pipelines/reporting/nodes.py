"""Reporting: the side-by-side comparison of activations (figures: figures.py)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from activation_compare.lazy_types import DataFrame, Figure
from activation_compare.params import CompareParams, DataParams, TrainingParams

from .figures import overlay_figure
from .provenance import describe_run, provenance_markdown

# pandas and SciPy load when the comparison runs, not when the pipeline is built (lazy_types.py).

TABLE_COLUMNS = [
    "activation",
    "seed",
    "final_train_accuracy",
    "final_val_accuracy",
    "test_accuracy",
    "best_val_accuracy",
    "best_epoch",
    "train_test_gap",
    "mean_epoch_time_s",
    "parameter_count",
]


def paired_difference(
    values: Sequence[float], baseline: Sequence[float], confidence_level: float
) -> dict[str, float | int | None]:
    """Mean paired difference (same seeds) with a Student-t confidence interval.

    Pairing by seed removes what both activations share (the seed's weight
    initialisation and batch order), so the interval is tighter than comparing
    two independent means. With one seed there is no interval.
    """
    differences = np.asarray(values, dtype=float) - np.asarray(baseline, dtype=float)
    n = len(differences)
    mean = float(differences.mean())
    from scipy import stats

    if n < 2:
        return {"n": n, "mean": mean, "ci_low": None, "ci_high": None, "p_value": None}
    sem = float(differences.std(ddof=1) / math.sqrt(n))
    if sem == 0.0:
        return {"n": n, "mean": mean, "ci_low": mean, "ci_high": mean, "p_value": None}
    half_width = float(stats.t.ppf(0.5 + confidence_level / 2, df=n - 1)) * sem
    p_value = float(2 * stats.t.sf(abs(mean / sem), df=n - 1))
    return {
        "n": n,
        "mean": mean,
        "ci_low": mean - half_width,
        "ci_high": mean + half_width,
        "p_value": p_value,
    }


def verdict(activation: str, baseline: str, diff: dict[str, Any], confidence_level: float) -> str:
    """One plain sentence on the paired difference in test accuracy, in points."""
    level = f"{confidence_level:.0%}"
    head = f"{activation} − {baseline} = {100 * diff['mean']:+.1f} pts"
    n = diff["n"]
    if diff["ci_low"] is None:
        return f"{head} from a single seed: no confidence interval; run several seeds to tell."
    low, high = 100 * diff["ci_low"], 100 * diff["ci_high"]
    interval = f"{level} CI [{low:+.1f}, {high:+.1f}]"
    if low > 0:
        outcome = f"{activation} is significantly better at {n} seeds"
    elif high < 0:
        outcome = f"{activation} is significantly worse at {n} seeds"
    else:
        outcome = f"no significant difference at {n} seeds"
    return f"{head}, {interval}: {outcome}"


def compare_activations(
    params: CompareParams,
    run: dict[str, Any],
    data: DataParams,
    training: TrainingParams,
    *reports: dict[str, Any],
) -> tuple[DataFrame, str, Figure, dict[str, Any]]:
    """Put every trained model side by side and say how sure the verdict is.

    Args:
        params: The ``compare`` parameters (activations, baseline, confidence level).
        run: The ``run_provenance`` dataset (environment, outputs, git commit, date).
        data: The ``data`` parameters (with ``run`` and ``training``, the
            provenance of the comparison).
        training: The ``training`` parameters.
        *reports: One evaluation report per trained model (activation × seed).

    Returns:
        The per-model table, the same table and the summary as Markdown, the
        overlay figure of accuracy curves, and a JSON-serialisable summary with
        its provenance, per-activation means and standard deviations and, per
        activation, the paired difference to the baseline with its confidence
        interval. Synthetic data are said so in the Markdown and the figure.
    """
    import pandas as pd

    provenance = describe_run(run, data, training)
    table = pd.DataFrame([{c: r[c] for c in TABLE_COLUMNS} for r in reports], columns=TABLE_COLUMNS)
    activations = [a for a in params.activations if a in set(table["activation"])]
    grouped = table.groupby("activation", sort=False)
    per_activation = {
        name: {
            "seeds": int(len(group)),
            "test_accuracy_mean": float(group["test_accuracy"].mean()),
            "test_accuracy_std": float(group["test_accuracy"].std(ddof=1)) if len(group) > 1 else None,
            "train_test_gap_mean": float(group["train_test_gap"].mean()),
            "train_test_gap_std": float(group["train_test_gap"].std(ddof=1)) if len(group) > 1 else None,
            "mean_epoch_time_s": float(group["mean_epoch_time_s"].mean()),
        }
        for name, group in grouped
    }
    comparisons: dict[str, Any] = {}
    baseline = params.baseline
    if baseline in per_activation:
        base = table[table["activation"] == baseline].set_index("seed")["test_accuracy"]
        for name in activations:
            if name == baseline:
                continue
            other = table[table["activation"] == name].set_index("seed")["test_accuracy"]
            common = sorted(set(base.index) & set(other.index))
            diff = paired_difference(other[common], base[common], params.confidence_level)
            comparisons[name] = {
                **diff,
                "baseline": baseline,
                "method": "paired Student-t over seeds",
                "verdict": verdict(name, baseline, diff, params.confidence_level),
            }
    summary = {
        "provenance": provenance,
        "baseline": baseline,
        "confidence_level": params.confidence_level,
        "per_activation": per_activation,
        "comparisons": comparisons,
    }
    figure = overlay_figure(reports, activations, provenance)
    return table, _markdown(table, summary), figure, summary


def _fmt(mean: float, std: float | None, scale: float = 100.0) -> str:
    return f"{scale * mean:.2f}" + (f" ± {scale * std:.2f}" if std is not None else "")


def _markdown(table: DataFrame, summary: dict[str, Any]) -> str:
    lines = ["# Activation comparison", "", *provenance_markdown(summary["provenance"])]
    lines += ["## Per model", "", table.to_markdown(index=False, floatfmt=".4f"), ""]
    lines += [
        "## Per activation (test accuracy and train−test gap in %, mean ± s.d. over seeds)",
        "",
        "| activation | seeds | test accuracy | train−test gap | mean epoch time (s) |",
        "|---|---|---|---|---|",
    ]
    for name, row in summary["per_activation"].items():
        lines.append(
            f"| {name} | {row['seeds']} | {_fmt(row['test_accuracy_mean'], row['test_accuracy_std'])} "
            f"| {_fmt(row['train_test_gap_mean'], row['train_test_gap_std'])} "
            f"| {row['mean_epoch_time_s']:.2f} |"
        )
    if summary["comparisons"]:
        lines += ["", f"## Against the baseline ({summary['baseline']})", ""]
        lines += [f"- {c['verdict']}" for c in summary["comparisons"].values()]
    return "\n".join(lines) + "\n"


def compare_rigorous(
    params: CompareParams,
    run: dict[str, Any],
    data: DataParams,
    training: TrainingParams,
    *inputs: dict[str, Any],
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
    """
    chosen, reports = inputs[:selections], inputs[selections:]
    table, markdown, figure, summary = compare_activations(params, run, data, training, *reports)
    rates = {s["activation"]: s["learning_rate"] for s in chosen}
    table.insert(2, "learning_rate", table["activation"].map(rates))
    summary["protocol"] = "rigorous"
    summary["tuning"] = {
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
    lines = [
        "",
        "## Protocol: rigorous",
        "",
        "Learning rate and epoch chosen on a validation split held out of the training set; "
        "each final model keeps the weights of its best validation epoch (`best_epoch`) and "
        "is evaluated on the test set once.",
        "",
        "| activation | chosen learning rate | why |",
        "|---|---|---|",
        *(f"| {s['activation']} | {s['learning_rate']:g} | {s['reason']} |" for s in chosen),
        "",
        f"Rule: {chosen[0]['rule'] if chosen else ''}.",
    ]
    markdown = markdown.replace(
        table.drop(columns="learning_rate").to_markdown(index=False, floatfmt=".4f"),
        table.to_markdown(index=False, floatfmt=".4f"),
    )
    return table, markdown + "\n".join(lines) + "\n", figure, summary
