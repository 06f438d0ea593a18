"""How steady the machine is: the same small loop on every core at once, its pace every half second.

    python -m benchmarks.host_probe --seconds 60 [--json OUT]

One process per CPU, pinned to it, multiplies a 256×256 float32 matrix by
itself on one thread (NumPy; 256 KB, so it stays in the core's cache and
reads no memory) as often as it can, and counts the products it finishes in
each half-second window, with the window's CPU seconds. The work per product
never changes, so on a dedicated machine every window's pace is the same
within a few percent. On a shared virtual machine it is not: a core whose
hyperthread sibling another tenant is using, or whose clock the host lowers,
finishes fewer products in the same CPU seconds (the process never leaves the
core: CPU seconds = wall seconds, and the kernel counts no steal).

Why it matters: TensorFlow splits each op of a training step over the cores
in equal shares and waits for the last, so a step goes at the pace of the
slower core, and an epoch can be no steadier than the machine. The report
gives, per core and for the slower core of each window, the slowest window's
time for a fixed amount of work over the median window's, at half a second
and at 3 s (about one 10,000-image epoch), the figure the benchmark's
"slowest epoch over median" is held against.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.project_copy import PROJECT_ROOT

WINDOW_S = 0.5
EPOCH_WINDOWS = 6  # 3 s: about one epoch of 10,000 images here
_SIZE = 256


@dataclass(frozen=True)
class Window:
    """One half-second window of one core: products finished, wall and CPU seconds."""

    products: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.products / self.wall_s


@dataclass(frozen=True)
class Pace:
    """Rates over windows: min, median, max (products per s) and the slowest over the median."""

    min: float
    median: float
    max: float
    slowest_over_median: float  # time of the slowest window / the median window's, same work

    @classmethod
    def of(cls, rates: list[float]) -> Pace:
        median = statistics.median(rates)
        return cls(
            min=round(min(rates), 1),
            median=round(median, 1),
            max=round(max(rates), 1),
            slowest_over_median=round(median / min(rates), 3),
        )


def _epochs(rates: list[float]) -> dict | None:
    """The pace over 3-s groups of windows (a partial last group is dropped); None under 3 s."""
    size = EPOCH_WINDOWS
    groups = [statistics.fmean(rates[i : i + size]) for i in range(0, len(rates) - size + 1, size)]
    return asdict(Pace.of(groups)) if groups else None


def summarize(windows: dict[int, list[Window]]) -> dict:
    """Per core and for the slower core of each window: the pace at 0.5 s and at 3 s.

    Args:
        windows: Each CPU's windows, in order; all CPUs ran over the same seconds.
    """
    count = min(len(w) for w in windows.values())
    rates = {cpu: [w.rate for w in found[:count]] for cpu, found in windows.items()}
    slower = [min(rates[cpu][i] for cpu in rates) for i in range(count)]
    report: dict = {
        "windows": count,
        "window_s": WINDOW_S,
        "cpu_over_wall_min": round(min(w.cpu_s / w.wall_s for found in windows.values() for w in found), 3),
        "cores": {},
    }
    for cpu, series in sorted(rates.items()):
        report["cores"][str(cpu)] = {
            "half_second": asdict(Pace.of(series)),
            "three_seconds": _epochs(series),
        }
    report["slower_core"] = {
        "half_second": asdict(Pace.of(slower)),
        "three_seconds": _epochs(slower),
    }
    return report


def _worker(cpu: int, seconds: float) -> None:
    """Run the loop pinned to ``cpu`` and print one JSON list of windows."""
    import numpy as np

    os.sched_setaffinity(0, {cpu})
    matrix = np.random.default_rng(cpu).random((_SIZE, _SIZE), dtype=np.float32)
    windows = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started, cpu_started, products = time.monotonic(), time.thread_time(), 0
        while time.monotonic() - started < WINDOW_S:
            matrix @ matrix
            products += 1
        windows.append([products, time.monotonic() - started, time.thread_time() - cpu_started])
    print(json.dumps(windows))


def measure(seconds: float) -> dict:
    """Run one pinned worker per CPU of this process for ``seconds``, all at once, and summarize."""
    cpus = sorted(os.sched_getaffinity(0))
    # One BLAS thread per worker: the loop measures the core it is pinned to.
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    workers = {
        cpu: subprocess.Popen(
            [sys.executable, "-m", "benchmarks.host_probe", "--worker", str(cpu), "--seconds", str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,  # makes `benchmarks` importable
        )
        for cpu in cpus
    }
    windows = {}
    for cpu, process in workers.items():
        out, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"the worker on CPU {cpu} failed (exit {process.returncode})")
        windows[cpu] = [Window(*row) for row in json.loads(out)]
    report = summarize(windows)
    report["seconds"] = seconds
    report["cpus"] = len(cpus)
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return report


def render(report: dict) -> str:
    """A table: each core and the slower core, pace at 0.5 s and 3 s."""
    lines = [
        f"{report['windows']} windows of {report['window_s']} s; CPU/wall at least {report['cpu_over_wall_min']}",
        "| core | products/s min · median · max (0.5 s) | slowest/median 0.5 s | 3 s |",
        "|---|---|---|---|",
    ]
    rows = [(f"CPU {cpu}", pace) for cpu, pace in report["cores"].items()]
    rows.append(("slower of the two, each window", report["slower_core"]))
    for name, pace in rows:
        half, three = pace["half_second"], pace["three_seconds"]
        epoch = f"{three['slowest_over_median']:.2f}" if three else "under 3 s"
        lines.append(
            f"| {name} | {half['min']:.0f} · {half['median']:.0f} · {half['max']:.0f} "
            f"| {half['slowest_over_median']:.2f} | {epoch} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.seconds < WINDOW_S:
        parser.error(f"--seconds {options.seconds} is shorter than one window; give at least {WINDOW_S}")
    if options.worker is not None:
        _worker(options.worker, options.seconds)
        return
    report = measure(options.seconds)
    if options.json:
        options.json.write_text(json.dumps(report, indent=1) + "\n")
    print(render(report))


if __name__ == "__main__":
    main()
