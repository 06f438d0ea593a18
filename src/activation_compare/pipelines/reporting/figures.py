"""Figures: one model's curves and confusion matrix, and every activation's curves overlaid.

Its own module so that the modelling pipeline (per-model figures) and the
reporting pipeline (the overlay) share it without importing each other.
Figures are built without pyplot, so nothing accumulates in global state
across many models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from activation_compare.lazy_types import Figure
from activation_compare.params import DataParams, TrainingParams
from activation_compare.reports import Report

from .provenance import describe_run, stamp_figure
from .summary import epoch_curves


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    # Epochs are whole numbers: no 1.5 ticks on short runs.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_model_figures(
    report: Report, run: dict[str, Any], data: DataParams, training: TrainingParams
) -> tuple[Figure, Figure]:
    """Draw one model's accuracy curves and its test-set confusion matrix.

    Args:
        report: The model's evaluation report.
        run: The ``run_provenance`` dataset (environment, commit, date).
        data: The ``data`` parameters; training: the ``training`` parameters
            (both for the provenance under each figure).

    Figures are built without pyplot so nothing accumulates in global state
    across many models.
    """
    return model_figures(report, describe_run(run, data, training))


def model_figures(report: Report, provenance: dict[str, Any] | None) -> tuple[Figure, Figure]:
    """One model's accuracy curves and confusion matrix, ``provenance`` (:func:`~.provenance.describe_run`) under each.

    The notebook calls it with the provenance a comparison recorded
    (``comparison_summary.json``), so its figures are the pipeline's.
    """
    # matplotlib loads when a figure is drawn, not when the pipeline is built (lazy_types.py).
    from matplotlib.figure import Figure

    title = f"{report.activation} (seed {report.seed})"
    curves = Figure(figsize=(6, 4.4), layout="constrained")
    ax = curves.add_subplot()
    epochs = np.asarray(report.curves.epoch)
    ax.plot(epochs, report.curves.accuracy, label="train", linestyle="--")
    ax.plot(epochs, report.curves.val_accuracy, label="validation")
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"Accuracy: {title}")
    _integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend()
    stamp_figure(curves, provenance)

    matrix = np.asarray(report.confusion_matrix)
    names = list(report.class_names)
    confusion = Figure(figsize=(6.5, 5.9), layout="constrained")
    ax = confusion.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    confusion.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix: {title}, test accuracy {report.test_accuracy:.4f}",
    )
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        ax.text(col, row, str(count), ha="center", va="center", fontsize=7, color=colour)
    stamp_figure(confusion, provenance)
    return curves, confusion


def overlay_figure(reports: Sequence[Report], activations: list[str], provenance: dict[str, Any] | None) -> Figure:
    """Train and validation accuracy of every activation overlaid (mean ± s.d. over seeds).

    ``provenance`` (:func:`~.provenance.describe_run`) is written under the plot.
    """
    return curves_figure(epoch_curves(reports, activations), provenance)


def curves_figure(curves: Mapping[str, Mapping[str, Any]], provenance: dict[str, Any] | None) -> Figure:
    """Mean train and validation accuracy per activation over epochs, bands ±1 s.d. over seeds.

    ``curves``: per activation, as :func:`~.summary.epoch_curves` makes them (the
    ``curves`` section of ``comparison_summary.json``), so the figure of a
    comparison and the figure drawn from its summary later are the same.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5.4), layout="constrained")
    ax = figure.add_subplot()
    several = False
    for index, (name, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        seeds = int(curve["seeds"])
        epochs = np.asarray(curve["epoch"])
        for key, style, label in (("train_accuracy", "--", "train"), ("val_accuracy", "-", "validation")):
            mean = np.asarray(curve[f"{key}_mean"], dtype=float)
            suffix = f", mean of {seeds} seeds" if seeds > 1 else ""
            ax.plot(epochs, mean, style, color=colour, label=f"{name} {label}{suffix}")
            if seeds > 1:
                several = True
                spread = np.asarray(curve[f"{key}_std"], dtype=float)
                ax.fill_between(epochs, mean - spread, mean + spread, color=colour, alpha=0.15)
    ax.set(
        xlabel="epoch",
        ylabel="accuracy",
        title="Train (dashed) and validation (solid) accuracy per activation"
        + (" (bands: ±1 s.d. over seeds)" if several else ""),
    )
    _integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    stamp_figure(figure, provenance)
    return figure
