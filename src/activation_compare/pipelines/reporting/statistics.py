"""The comparison's statistics: paired differences over seeds, and their adjustment for k comparisons.

Each activation is compared with the baseline by the paired Student-t over
seeds (:func:`paired_difference`). With ``m`` comparisons against one baseline,
the chance that at least one looks significant by luck grows with ``m``: the
p-values are Holm-adjusted (:func:`holm`) and the intervals Bonferroni-adjusted
(level ``1 − α/m``, :func:`adjusted_level`). A difference *holds* when its
adjusted p-value is below α and its adjusted interval excludes 0
(:func:`holds`). With one comparison the adjusted values are the raw ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def paired_difference(
    values: Sequence[float], baseline: Sequence[float], confidence_level: float
) -> dict[str, float | int | None]:
    """Mean paired difference (same seeds) with a Student-t confidence interval and two-sided p.

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


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of ``m`` p-values (in their order; None stays None).

    Sorted ascending, the i-th smallest (from 0) becomes ``(m − i)·p``, made
    non-decreasing and at most 1. A missing p-value (one seed) still counts in
    ``m``, as the largest: the others are never adjusted less than they should be.
    """
    m = len(p_values)
    filled = [1.0 if p is None else float(p) for p in p_values]
    order = sorted(range(m), key=lambda i: filled[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * filled[index]))
        adjusted[index] = running
    return [None if p is None else adjusted[i] for i, p in enumerate(p_values)]


def adjusted_level(confidence_level: float, comparisons: int) -> float:
    """Bonferroni: the confidence level ``1 − α/m`` of each of ``m`` intervals (α = 1 − level)."""
    return 1.0 - (1.0 - confidence_level) / max(comparisons, 1)


def holds(p_adjusted: float | None, low: float | None, high: float | None, alpha: float) -> bool:
    """Whether a difference survives the adjustment: adjusted p < α and the adjusted interval excludes 0."""
    if p_adjusted is None or low is None or high is None:
        return False
    return p_adjusted < alpha and (low > 0 or high < 0)
