"""Ratios, targets and the printed table of a benchmark report."""

from __future__ import annotations

import copy
import json
import statistics
from typing import Any

from benchmarks.limits import epoch_flops

# (numerator, denominator, target): the project's epoch as a user gets it against the original.
TARGETS = (
    ("kedro_relu", "original_relu", 0.8),
    ("kedro_rrelu", "original_rrelu", 0.8),
    ("kedro_rrelu", "kedro_relu", 1.3),
)
RATIOS = (
    # Rows that name their precision (``kedro_relu_float32``): the targets' ratios per precision.
    ("kedro_relu_float32", "original_relu"),
    ("kedro_rrelu_float32", "original_rrelu"),
    ("kedro_rrelu_float32", "kedro_relu_float32"),
    ("kedro_relu_bfloat16", "original_relu"),
    ("kedro_rrelu_bfloat16", "original_rrelu"),
    ("kedro_rrelu_bfloat16", "kedro_relu_bfloat16"),
    ("project_relu", "original_relu"),
    ("project_rrelu", "original_rrelu"),
    ("project_rrelu", "project_relu"),
    ("original_rrelu", "original_relu"),
    ("port_relu", "original_relu"),
    ("port_rrelu", "original_rrelu"),
    ("port_rrelu", "port_relu"),
)


def _ratio(rows: dict[str, Any], a: str, b: str, key: str) -> float | None:
    x, y = rows.get(a, {}).get(key), rows.get(b, {}).get(key)
    return x / y if x and y else None


def _paired(rows: dict[str, Any], a: str, b: str, key_a: str = "epoch_time_s") -> float | None:
    """Median over rounds of a's epoch over b's epoch in the same round (first epochs left out).

    The two epochs of a round ran one after the other, so a burst of other work
    on the machine rarely hits one without the other, as it can the medians.
    """
    runs_a, runs_b = rows.get(a, {}).get("runs", []), rows.get(b, {}).get("runs", [])
    key_b = key_a if b.startswith("kedro") else "epoch_time_s"
    pairs = [
        ra[key_a] / rb[key_b]
        for run_a, run_b in zip(runs_a, runs_b)
        for ra, rb in zip(run_a[1:], run_b[1:])
        if ra.get(key_a) and rb.get(key_b)
    ]
    return statistics.median(pairs) if pairs else None


def ratios(rows: dict[str, Any], levers: dict[str, Any]) -> dict[str, Any]:
    """Every ratio of medians, of fastest epochs and paired by round; kedro rows also by wall time."""
    out: dict[str, Any] = {}
    pairs = [(a, b) for a, b, _ in TARGETS] + list(RATIOS)
    for a, b in pairs:
        entry = {"medians": _ratio(rows, a, b, "epoch_s_median"), "fastest": _ratio(rows, a, b, "epoch_s_min"),
                 "paired": _paired(rows, a, b)}
        if a.startswith("kedro"):
            entry["wall_paired"] = _paired(rows, a, b, "wall_s")
        if a.startswith("kedro"):  # the epoch with checkpointing and tracking around it
            wall_a = {**rows.get(a, {}), "epoch_s_median": rows.get(a, {}).get("wall_s_median"),
                      "epoch_s_min": rows.get(a, {}).get("wall_s_min")}
            wall_b = rows.get(b, {})
            if b.startswith("kedro"):
                wall_b = {"epoch_s_median": wall_b.get("wall_s_median"), "epoch_s_min": wall_b.get("wall_s_min")}
            both = {"a": wall_a, "b": wall_b}
            entry["wall_medians"] = _ratio(both, "a", "b", "epoch_s_median")
            entry["wall_fastest"] = _ratio(both, "a", "b", "epoch_s_min")
        if entry["medians"] is not None:
            out[f"{a} / {b}"] = entry
    for name in levers:
        base = lever_base(name)
        if base is None:
            continue
        entry = {"medians": _ratio(levers, name, base, "epoch_s_median"),
                 "fastest": _ratio(levers, name, base, "epoch_s_min"), "paired": _paired(levers, name, base)}
        if entry["medians"] is not None:
            out[f"{name} / {base}"] = entry
    return out


def lever_base(name: str) -> str | None:
    """The row a lever is measured against: ``lever_bf16_<act>`` for bfloat16 levers, else the float32 base."""
    activation = "rrelu" if "rrelu" in name else "relu"
    if name.startswith("lever_base"):
        return None
    if name.startswith("lever_bf16_") and name != f"lever_bf16_{activation}":
        return f"lever_bf16_{activation}"
    return f"lever_base_{activation}"


def targets(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its figures (logged epoch and wall epoch, medians and fastest) and met or not."""
    out = []
    for a, b, limit in TARGETS:
        r = ratios({k: rows[k] for k in (a, b) if k in rows}, {}).get(f"{a} / {b}")
        if r is None:
            continue
        figures = [v for k, v in r.items() if v]
        out.append({"ratio": f"{a} / {b}", "target": limit, **r, "met": all(v <= limit for v in figures)})
    return out


def overheads(rows: dict[str, Any]) -> dict[str, Any]:
    """Per kedro row: median seconds per epoch of checkpointing and tracking (wall minus logged epoch)."""
    out = {}
    for name, row in rows.items():
        gaps = [r["wall_s"] - r["epoch_time_s"] for run in row.get("runs", []) for r in run[1:] if "wall_s" in r]
        if gaps:
            out[name] = {"median_s": statistics.median(gaps), "min_s": min(gaps), "max_s": max(gaps)}
    return out


STEADY_LIMIT = 1.25  # issue 25: within one run, the slowest epoch after the first at most 1.25x the median


def steadiness(rows: dict[str, Any]) -> dict[str, Any]:
    """Per row: the worst run's slowest epoch after the first over that run's median, logged and wall."""
    out: dict[str, Any] = {}
    for name, row in rows.items():
        entry: dict[str, Any] = {}
        for key in ("epoch_time_s", "wall_s"):
            spreads = []
            for run in row.get("runs", []):
                steady = [r[key] for r in run[1:] if key in r]
                if steady:
                    spreads.append(max(steady) / statistics.median(steady))
            if spreads:
                entry[key] = max(spreads)
        if entry:
            entry["met"] = all(v <= STEADY_LIMIT for v in entry.values())
            epochs = [r for run in row.get("runs", []) for r in run[1:]]
            # Epochs in which the hypervisor took more than 5 % of an epoch from the machine's vCPUs.
            entry["stolen_epochs"] = sum(1 for r in epochs if r.get("steal_s", 0) > 0.05 * r["epoch_time_s"])
            cpu = [r["cpu_s"] / r["epoch_time_s"] for r in epochs if r.get("cpu_s") and r.get("epoch_time_s")]
            if cpu:  # CPU seconds per wall second: 2 = both cores busy all the epoch
                entry["cpu_per_wall"] = [min(cpu), statistics.median(cpu), max(cpu)]
            out[name] = entry
    return out


def throughput(rows: dict[str, Any], limits: dict[str, Any], sizes: dict[str, int]) -> dict[str, Any]:
    """Achieved GFLOP/s of each row's fastest epoch, and its fraction of the attainable."""
    flops = epoch_flops(sizes["train"], sizes["test"])
    out = {}
    for name, row in rows.items():
        if not row.get("epoch_s_min"):
            continue
        achieved = flops / row["epoch_s_min"] / 1e9
        low_precision = row.get("precision") == "bfloat16" or "bf16" in name  # older results: by name
        peak = limits.get("matmul_bfloat16_gflops") if low_precision else limits.get("matmul_float32_gflops")
        out[name] = {
            "gflops": achieved,
            "of_matmul_peak": achieved / peak if peak else None,
            "of_conv2_float32": achieved / limits["conv2_float32_gflops"] if limits.get("conv2_float32_gflops") else None,
            "peak": "matmul_bfloat16" if low_precision else "matmul_float32",
        }
    return out


def print_table(report: dict[str, Any]) -> None:
    rows = {**report.get("training", {}), **report.get("levers", {})}
    if rows:
        print("\nPer-epoch seconds (training + validation), epochs after the first; wall: with what runs between epochs")
        print(f"{'variant':30s} {'median':>7s} {'min':>7s} {'max':>7s} {'max/med':>7s} {'1st':>7s} {'wall med':>8s} "
              f"{'val_acc':>7s} {'GFLOP/s':>7s}  TF      precision")
        tp = report.get("throughput", {})
        steady = report.get("steadiness", {})
        for name, r in rows.items():
            wall = f"{r['wall_s_median']:8.2f}" if r.get("wall_s_median") else " " * 8
            spread = steady.get(name, {}).get("epoch_time_s", float("nan"))
            print(
                f"{name:30s} {r['epoch_s_median']:7.2f} {r['epoch_s_min']:7.2f} {r.get('epoch_s_max', float('nan')):7.2f} "
                f"{spread:7.2f} {r['first_epoch_s']:7.2f} "
                f"{wall} {r['final_val_accuracy']:7.4f} "
                f"{tp.get(name, {}).get('gflops', float('nan')):7.1f}  {r['tf']['tensorflow']:7s} {r.get('precision', '')}"
            )
        print("\nValidation accuracy per epoch")
        for name, r in rows.items():
            print(f"  {name:28s} " + " ".join(f"{v:.3f}" for v in r["val_accuracy_per_epoch"][0] if v is not None))
    if report.get("ratios"):
        columns = ("medians", "fastest", "paired", "wall_medians", "wall_fastest", "wall_paired")
        print(f"\n{'ratio':52s} " + " ".join(f"{c.replace('wall_', 'w.'):>8s}" for c in columns))
        for name, r in report["ratios"].items():
            cells = [r.get(k) for k in columns]
            print(f"  {name:50s} " + " ".join(f"{v:8.3f}" if v else f"{'':8s}" for v in cells))
    for t in report.get("targets", []):
        print(f"  target {t['ratio']} <= {t['target']}: {'met' if t['met'] else 'NOT met'}")
    if report.get("steadiness"):
        print(f"\nSteady epochs (worst run's slowest epoch after the first / its median, target <= {STEADY_LIMIT}):")
        for name, st in report["steadiness"].items():
            wall = f", wall {st['wall_s']:.2f}" if "wall_s" in st else ""
            cpu = st.get("cpu_per_wall")
            cores = f"; cores busy {cpu[0]:.2f}/{cpu[1]:.2f}/{cpu[2]:.2f} (min/median/max)" if cpu else ""
            print(f"  {name:28s} logged {st.get('epoch_time_s', float('nan')):.2f}{wall}: "
                  f"{'met' if st['met'] else 'NOT met'}; epochs with host steal: {st['stolen_epochs']}{cores}")
    for name, o in report.get("overheads", {}).items():
        print(f"  checkpointing + tracking per epoch in {name}: median {o['median_s']:.2f} s")
    if report.get("limits"):
        print("\nAttainable:", json.dumps({k: round(v, 1) for k, v in report["limits"].items() if isinstance(v, float)}))
        for name, t in report.get("throughput", {}).items():
            peak = t.get("peak", "matmul")
            print(f"  {name:28s} {t['gflops']:6.1f} GFLOP/s = {100 * (t['of_matmul_peak'] or 0):.1f}% of the {peak} peak")
    if "data" in report:
        print("\nData:", json.dumps(report["data"], indent=1, default=float))


def pool(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Results of the same command, run more than once, as one: each row's runs side by side.

    Rounds stay paired within their own run (``_paired`` pairs run with run),
    so the pooled paired ratio is the median over every round of every file.
    The attainable peaks differ from run to run, so the pooled result has none
    (no GFLOP/s column); each file's own table still gives its own.
    """
    from benchmarks.interleave import summary

    pooled = copy.deepcopy(results[0])
    pooled.pop("limits", None)
    pooled.pop("throughput", None)
    for section in ("training", "levers"):
        for name, row in pooled.get(section, {}).items():
            for other in results[1:]:
                row["runs"] = row["runs"] + other.get(section, {}).get(name, {}).get("runs", [])
            row.update(summary(row["runs"]))
    return pooled


def main(argv: list[str] | None = None) -> int:
    """Recompute the ratios of a results file and print its table: ``python -m benchmarks.report FILE [FILE ...]``.

    Several files (the same command run again) are pooled: every row's runs
    together, the ratios over all their rounds.
    """
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    files = parser.parse_args(argv).results
    result = pool([json.loads(path.read_text()) for path in files])
    if len(files) > 1:
        print(f"Pooled: {len(files)} files, every row's runs together ({', '.join(path.name for path in files)})")
    result["ratios"] = ratios(result.get("training", {}), result.get("levers", {}))
    result["targets"] = targets(result.get("training", {}))
    result["overheads"] = overheads(result.get("training", {}))
    result["steadiness"] = steadiness({**result.get("training", {}), **result.get("levers", {})})
    if result.get("limits") and result.get("sizes"):
        result["throughput"] = throughput(
            {**result.get("training", {}), **result.get("levers", {})}, result["limits"], result["sizes"]
        )
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
