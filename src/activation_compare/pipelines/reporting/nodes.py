"""Reporting: per-model figures and the side-by-side comparison of activations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from activation_compare.params import CompareParams

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


def plot_model_figures(report: dict[str, Any]) -> tuple[Figure, Figure]:
    """Draw one model's accuracy curves and its test-set confusion matrix.

    Figures are built without pyplot so nothing accumulates in global state
    across many models.
    """
    title = f"{report['activation']} (seed {report['seed']})"
    curves = Figure(figsize=(6, 4), layout="constrained")
    ax = curves.add_subplot()
    epochs = np.arange(1, len(report["curves"]["accuracy"]) + 1)
    ax.plot(epochs, report["curves"]["accuracy"], label="train", linestyle="--")
    ax.plot(epochs, report["curves"]["val_accuracy"], label="validation")
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"Accuracy: {title}")
    ax.grid(alpha=0.3)
    ax.legend()

    matrix = np.asarray(report["confusion_matrix"])
    names = report["class_names"]
    confusion = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = confusion.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    confusion.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix: {title}, test accuracy {report['test_accuracy']:.4f}",
    )
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    return curves, confusion


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


def _overlay_figure(reports: Sequence[dict[str, Any]], activations: list[str]) -> Figure:
    figure = Figure(figsize=(8, 5), layout="constrained")
    ax = figure.add_subplot()
    colours = {name: f"C{i}" for i, name in enumerate(activations)}
    for name in activations:
        runs = [r for r in reports if r["activation"] == name]
        for key, style, label in (("accuracy", "--", "train"), ("val_accuracy", "-", "validation")):
            curves = np.array([r["curves"][key] for r in runs], dtype=float)
            epochs = np.arange(1, curves.shape[1] + 1)
            mean = curves.mean(axis=0)
            seeds = f", mean of {len(runs)} seeds" if len(runs) > 1 else ""
            ax.plot(epochs, mean, style, color=colours[name], label=f"{name} {label}{seeds}")
            if len(runs) > 1:
                spread = curves.std(axis=0, ddof=1)
                ax.fill_between(epochs, mean - spread, mean + spread, color=colours[name], alpha=0.15)
    ax.set(
        xlabel="epoch",
        ylabel="accuracy",
        title="Train (dashed) and validation (solid) accuracy per activation"
        + (" (bands: ±1 s.d. over seeds)" if len(reports) > len(activations) else ""),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return figure


def compare_activations(
    params: CompareParams, *reports: dict[str, Any]
) -> tuple[pd.DataFrame, str, Figure, dict[str, Any]]:
    """Put every trained model side by side and say how sure the verdict is.

    Args:
        params: The ``compare`` parameters (activations, baseline, confidence level).
        *reports: One evaluation report per trained model (activation × seed).

    Returns:
        The per-model table, the same table and the summary as Markdown, the
        overlay figure of accuracy curves, and a JSON-serialisable summary with
        per-activation means and standard deviations and, per activation, the
        paired difference to the baseline with its confidence interval.
    """
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
        "baseline": baseline,
        "confidence_level": params.confidence_level,
        "per_activation": per_activation,
        "comparisons": comparisons,
    }
    return table, _markdown(table, summary), _overlay_figure(reports, activations), summary


def _fmt(mean: float, std: float | None, scale: float = 100.0) -> str:
    return f"{scale * mean:.2f}" + (f" ± {scale * std:.2f}" if std is not None else "")


def _markdown(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    lines = ["# Activation comparison", "", "## Per model", "", table.to_markdown(index=False, floatfmt=".4f"), ""]
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
