"""The comparison summary (``comparison_summary.json``) and the Markdown tables drawn from it.

One function builds the summary from the reports (:func:`build_summary`);
the comparison's Markdown (``comparison.md``) and the docs' results tables
(:mod:`activation_compare.results`) are both rendered from a summary by the
table functions here, so a table in the docs is exactly the run's.

Format (``format``: :data:`SUMMARY_FORMAT`):

- ``provenance``: data, environment, epochs, seeds, batch size, learning rate,
  optimizer, protocol, precision requested and dtype policy in effect, CPU
  (model name, native bfloat16), date, git commit and local changes;
- ``per_model``: one row per report (:data:`PER_MODEL_COLUMNS`);
- ``per_activation``: per activation, mean and s.d. over seeds of each metric;
- ``curves``: per activation, per epoch, mean and s.d. of train and validation accuracy;
- ``comparisons``: per activation against the baseline, the paired difference in
  test accuracy, raw and adjusted for the number of comparisons, and whether it holds;
- ``multiple_comparisons``: how they were adjusted, which hold, and a sentence saying so.
"""

from __future__ import annotations

from statistics import stdev
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from activation_compare.reports import Report

from .statistics import adjusted_level, holds, holm, paired_difference

SUMMARY_FORMAT = 2
# The per-model table (comparison.csv, the summary's per_model rows, the docs' per_seed table).
PER_MODEL_COLUMNS = [
    "activation",
    "seed",
    "final_train_accuracy",
    "final_val_accuracy",
    "test_accuracy",
    "best_val_accuracy",
    "best_epoch",
    "train_test_gap",
    "mean_epoch_time_s",
    "median_epoch_time_s",
    "training_time_s",
    "parameter_count",
]
# The metrics averaged over seeds per activation.
AVERAGED = (
    "test_accuracy",
    "best_val_accuracy",
    "best_epoch",
    "final_train_accuracy",
    "train_test_gap",
    "mean_epoch_time_s",
    "median_epoch_time_s",
    "training_time_s",
)
METHOD = "paired Student-t over seeds"
ADJUSTMENT = "Holm-adjusted p-values, Bonferroni-adjusted confidence intervals (level 1 − α/m)"


def per_model_row(report: Report, learning_rate: bool = False) -> dict[str, Any]:
    """A report's row of the per-model table (with its learning rate under the rigorous protocol)."""
    row: dict[str, Any] = {
        "activation": report.activation,
        "seed": report.seed,
        **({"learning_rate": report.settings.learning_rate} if learning_rate else {}),
        "final_train_accuracy": report.final_train_accuracy,
        "final_val_accuracy": report.final_val_accuracy,
        "test_accuracy": report.test_accuracy,
        "best_val_accuracy": report.best_val_accuracy,
        "best_epoch": report.best_epoch,
        "train_test_gap": report.train_test_gap,
        "mean_epoch_time_s": report.mean_epoch_time_s,
        "median_epoch_time_s": report.median_epoch_time_s,
        "training_time_s": report.training_time_s,
        "parameter_count": report.parameter_count,
    }
    return row


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    values = [float(v) for v in values]
    return float(np.mean(values)), (float(stdev(values)) if len(values) > 1 else None)


def per_activation(rows: Sequence[Mapping[str, Any]], activations: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per activation: the number of seeds and each metric's mean and s.d. over seeds."""
    result = {}
    for name in activations:
        mine = [r for r in rows if r["activation"] == name]
        if not mine:
            continue
        entry: dict[str, Any] = {"seeds": len(mine)}
        for metric in AVERAGED:
            entry[f"{metric}_mean"], entry[f"{metric}_std"] = _mean_std([r[metric] for r in mine])
        # The name earlier summaries used (MLflow's parent-run metric mean_epoch_time_s_<activation>).
        entry["mean_epoch_time_s"] = entry["mean_epoch_time_s_mean"]
        result[name] = entry
    return result


def epoch_curves(reports: Sequence[Report], activations: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per activation, per epoch: mean and s.d. over seeds of train and validation accuracy."""
    return mean_curves({
        name: [
            {"epoch": r.curves.epoch, "accuracy": r.curves.accuracy, "val_accuracy": r.curves.val_accuracy}
            for r in reports
            if r.activation == name
        ]
        for name in activations
    })


def mean_curves(runs: Mapping[str, Sequence[Mapping[str, Sequence[float]]]]) -> dict[str, dict[str, Any]]:
    """Per activation, the mean and s.d. over its runs of each epoch's train and validation accuracy.

    ``runs``: per activation, each run's ``epoch``, ``accuracy`` and
    ``val_accuracy`` lists (a report's curves, or MLflow's per-epoch metrics).
    Curves of unequal length (a model trained longer, an unfinished run) are
    cut to the shortest. Activations without runs are left out.
    """
    result = {}
    for name, mine in runs.items():
        if not mine:
            continue
        length = min(len(r["epoch"]) for r in mine)
        entry: dict[str, Any] = {"seeds": len(mine), "epoch": [int(e) for e in mine[0]["epoch"][:length]]}
        for key, column in (("train_accuracy", "accuracy"), ("val_accuracy", "val_accuracy")):
            values = np.array([list(r[column])[:length] for r in mine], dtype=float)
            entry[f"{key}_mean"] = [float(v) for v in values.mean(axis=0)]
            entry[f"{key}_std"] = [float(v) for v in values.std(axis=0, ddof=1)] if len(mine) > 1 else None
        result[name] = entry
    return result


def verdict(activation: str, baseline: str, diff: Mapping[str, Any], confidence_level: float) -> str:
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


def compare_to_baseline(
    rows: Sequence[Mapping[str, Any]], activations: Sequence[str], baseline: str, confidence_level: float
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Every activation against the baseline (paired over common seeds), raw and adjusted for m comparisons.

    Returns the comparisons by activation and the ``multiple_comparisons`` section.
    """
    alpha = 1.0 - confidence_level
    base = {r["seed"]: r["test_accuracy"] for r in rows if r["activation"] == baseline}
    others = [a for a in activations if a != baseline and any(r["activation"] == a for r in rows)]
    if not base:
        others = []
    m = len(others)
    level = adjusted_level(confidence_level, m)
    raw: dict[str, dict[str, Any]] = {}
    for name in others:
        mine = {r["seed"]: r["test_accuracy"] for r in rows if r["activation"] == name}
        common = sorted(set(base) & set(mine))
        diff = paired_difference([mine[s] for s in common], [base[s] for s in common], confidence_level)
        wide = paired_difference([mine[s] for s in common], [base[s] for s in common], level)
        raw[name] = {**diff, "seeds": common, "ci_low_adjusted": wide["ci_low"], "ci_high_adjusted": wide["ci_high"]}
    adjusted_p = holm([raw[name]["p_value"] for name in others])
    comparisons = {}
    for name, p in zip(others, adjusted_p, strict=True):
        diff = raw[name]
        comparisons[name] = {
            **diff,
            "p_value_adjusted": p,
            "adjusted_level": level,
            "holds": holds(p, diff["ci_low_adjusted"], diff["ci_high_adjusted"], alpha),
            "baseline": baseline,
            "method": METHOD,
            "verdict": verdict(name, baseline, diff, confidence_level),
        }
    holding = [name for name, c in comparisons.items() if c["holds"]]
    section = {
        "count": m,
        "alpha": alpha,
        "method": ADJUSTMENT,
        "adjusted_level": level,
        "holding": holding,
        "sentence": holding_sentence(comparisons, baseline, alpha, m),
    }
    return comparisons, section


def holding_sentence(comparisons: Mapping[str, Mapping[str, Any]], baseline: str, alpha: float, m: int) -> str:
    """Which differences hold after the adjustment, in one sentence."""
    if not comparisons:
        return f"No activation to compare with the baseline {baseline}."
    rule = (
        f"adjusted for {m} comparisons (Holm p < {alpha:g} and a Bonferroni {1 - alpha / m:.1%} interval excluding 0)"
        if m > 1
        else f"p < {alpha:g} and a {1 - alpha:.0%} interval excluding 0"
    )
    holding = [
        f"{name} ({'better' if c['mean'] > 0 else 'worse'}, {100 * c['mean']:+.1f} pts)"
        for name, c in comparisons.items()
        if c["holds"]
    ]
    if not holding:
        return f"No difference from {baseline} holds, {rule}."
    verb = "holds" if len(holding) == 1 else "hold"
    rest = "; the others do not" if len(holding) < len(comparisons) else ""
    return f"Against {baseline}, {_join(holding)} {verb}, {rule}{rest}."


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def build_summary(
    reports: Sequence[Report],
    activations: Sequence[str],
    baseline: str,
    confidence_level: float,
    provenance: Mapping[str, Any],
    *,
    rigorous: bool = False,
) -> dict[str, Any]:
    """The comparison summary of ``reports`` (format :data:`SUMMARY_FORMAT`), JSON-serialisable."""
    rows = [per_model_row(r, learning_rate=rigorous) for r in reports]
    present = [a for a in activations if any(r.activation == a for r in reports)]
    comparisons, section = compare_to_baseline(rows, present, baseline, confidence_level)
    return {
        "format": SUMMARY_FORMAT,
        "provenance": dict(provenance),
        "baseline": baseline,
        "confidence_level": confidence_level,
        "protocol": "rigorous" if rigorous else "original",
        "per_model": rows,
        "per_activation": per_activation(rows, present),
        "curves": epoch_curves(reports, present),
        "comparisons": comparisons,
        "multiple_comparisons": section,
    }


# --- Markdown tables, from a summary -------------------------------------------------


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def _pm(mean: float | None, std: float | None, scale: float = 100.0, digits: int = 2) -> str:
    if mean is None:
        return "–"
    return f"{scale * mean:.{digits}f}" + (f" ± {scale * std:.{digits}f}" if std is not None else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def per_seed_table(summary: Mapping[str, Any]) -> list[str]:
    """One row per model: test accuracy, best validation accuracy and epoch, final train accuracy, gap, epoch times."""
    rigorous = any("learning_rate" in row for row in summary["per_model"])
    header = ["activation", "seed", *(["learning rate"] if rigorous else []), "test acc. (%)",
              "best val. acc. (%)", "best epoch", "final train acc. (%)", "train−test gap (pts)",
              "epoch time mean / median (s)"]
    rows = [
        [
            str(r["activation"]),
            str(r["seed"]),
            *([f"{r['learning_rate']:g}"] if rigorous else []),
            _pct(r["test_accuracy"]),
            _pct(r["best_val_accuracy"]),
            str(r["best_epoch"]),
            _pct(r["final_train_accuracy"]),
            _pct(r["train_test_gap"]),
            f"{r['mean_epoch_time_s']:.2f} / {r['median_epoch_time_s']:.2f}",
        ]
        for r in summary["per_model"]
    ]
    return _table(header, rows)


def per_activation_table(summary: Mapping[str, Any]) -> list[str]:
    """Per activation, mean ± s.d. over seeds."""
    header = ["activation", "seeds", "test acc. (%)", "best val. acc. (%)", "best epoch",
              "final train acc. (%)", "train−test gap (pts)", "epoch time mean / median (s)"]
    rows = []
    for name, a in summary["per_activation"].items():
        rows.append([
            name,
            str(a["seeds"]),
            _pm(a["test_accuracy_mean"], a["test_accuracy_std"]),
            _pm(a["best_val_accuracy_mean"], a["best_val_accuracy_std"]),
            _pm(a["best_epoch_mean"], a["best_epoch_std"], scale=1.0, digits=1),
            _pm(a["final_train_accuracy_mean"], a["final_train_accuracy_std"]),
            _pm(a["train_test_gap_mean"], a["train_test_gap_std"]),
            f"{a['mean_epoch_time_s_mean']:.2f} / {a['median_epoch_time_s_mean']:.2f}",
        ])
    return _table(header, rows)


def _interval(low: float | None, high: float | None) -> str:
    return "–" if low is None or high is None else f"[{100 * low:+.2f}, {100 * high:+.2f}]"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def comparisons_table(summary: Mapping[str, Any]) -> list[str]:
    """Each activation against the baseline: difference, CI and p, raw and adjusted; whether it holds."""
    level = summary["confidence_level"]
    section = summary["multiple_comparisons"]
    header = [
        "activation", f"− {summary['baseline']} (pts)", "seeds", f"{level:.0%} CI", "p",
        f"adjusted {section['adjusted_level']:.1%} CI", "Holm p", "holds",
    ]
    rows = [
        [
            name,
            f"{100 * c['mean']:+.2f}",
            str(c["n"]),
            _interval(c["ci_low"], c["ci_high"]),
            _p(c["p_value"]),
            _interval(c["ci_low_adjusted"], c["ci_high_adjusted"]),
            _p(c["p_value_adjusted"]),
            "yes" if c["holds"] else "no",
        ]
        for name, c in summary["comparisons"].items()
    ]
    return _table(header, rows)


def test_error_table(summary: Mapping[str, Any]) -> list[str]:
    """Per activation, test error (100 − accuracy, in %) mean ± s.d. and its difference to the baseline.

    The shape of the RReLU paper's CIFAR-10 table (Xu et al. 2015, Table 3), which reports test error.
    """
    baseline = summary["baseline"]
    header = ["activation", "seeds", "test error (%)", f"− {baseline} (pts)"]
    rows = []
    for name, a in summary["per_activation"].items():
        error = 1.0 - a["test_accuracy_mean"]
        comparison = summary["comparisons"].get(name)
        rows.append([
            name,
            str(a["seeds"]),
            _pm(error, a["test_accuracy_std"]),
            "baseline" if name == baseline else ("–" if comparison is None else f"{-100 * comparison['mean']:+.2f}"),
        ])
    return _table(header, rows)


def provenance_list(summary: Mapping[str, Any]) -> list[str]:
    """The summary's provenance as a list: data, environment, epochs, seeds, settings, precision, CPU, date, commit."""
    from .provenance import provenance_markdown

    return [line for line in provenance_markdown(dict(summary["provenance"])) if line and not line.startswith("#")]


TABLES = {
    "per_seed": per_seed_table,
    "per_activation": per_activation_table,
    "comparisons": comparisons_table,
    "test_error": test_error_table,
    "provenance": provenance_list,
}
