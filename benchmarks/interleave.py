"""Workers that take turns epoch by epoch, so machine load hits every variant alike."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from benchmarks.protocol import PREFIX
from benchmarks.project_copy import PROJECT_ROOT


@dataclass
class Variant:
    """One row of the table: which worker module, with which Python, spec and environment."""

    module: str  # benchmarks.seed_worker, benchmarks.project_worker or benchmarks.kedro_worker
    spec: dict[str, Any]
    python: str
    env: dict[str, str] = field(default_factory=dict)  # on top of os.environ


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def host_steal_s() -> float:
    """Seconds of CPU time the hypervisor took from this machine's vCPUs so far (/proc/stat, all CPUs)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
        return int(fields[8]) / _CLOCK_TICKS  # cpu user nice system idle iowait irq softirq steal
    except (OSError, IndexError, ValueError):
        return float("nan")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads), NaN where unreadable."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime
    except (OSError, IndexError, ValueError):
        return float("nan")


class Worker:
    """A worker process speaking :mod:`benchmarks.protocol`."""

    def __init__(self, name: str, variant: Variant) -> None:
        self.name = name
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1", **variant.env}
        env = {k: v for k, v in env.items() if v is not None}
        self.proc = subprocess.Popen(
            [variant.python, "-m", variant.module, json.dumps(variant.spec)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=env, cwd=PROJECT_ROOT,  # the cwd makes `benchmarks` importable
        )
        self.stderr: list[str] = []
        # Per epoch: the worker's CPU seconds and the host's steal while it trained (a stall or a busy neighbour).
        self.epoch_extras: list[dict[str, float]] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:  # the last lines, for the error message
            self.stderr = (self.stderr + [line])[-40:]

    def receive(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(PREFIX):
                return json.loads(line[len(PREFIX) :])
        self.proc.wait()
        raise RuntimeError(
            f"benchmark worker {self.name} exited ({self.proc.returncode}):\n" + "".join(self.stderr[-25:])
        )

    def go(self) -> dict[str, Any]:
        cpu, steal = process_cpu_s(self.proc.pid), host_steal_s()
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: receive() says why
        message = self.receive()
        extras = {"cpu_s": process_cpu_s(self.proc.pid) - cpu, "steal_s": host_steal_s() - steal}
        self.epoch_extras.append(extras)
        return {**message, **extras}

    def finish(self) -> None:
        """Let a worker that waits after its last epoch (a whole ``kedro run``) finish its run."""
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except OSError:  # a broken pipe: it finished without waiting
            pass

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the worker exits at its next wait
            except OSError:
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_interleaved(variants: dict[str, Variant], epochs: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Start one worker per variant, then let them train one epoch each in turn (order rotating)."""
    workers: dict[str, Worker] = {}
    results: dict[str, Any] = {}
    try:
        for name, variant in variants.items():
            worker = Worker(name, variant)  # one at a time: concurrent loading slows all
            workers[name] = worker
            ready = worker.receive()
            results[name] = {"tf": ready["tf"], "runs": []}
            log(f"  worker {name} ready: TF {ready['tf']['tensorflow']}, oneDNN {ready['tf']['onednn_enabled']}")
        names = list(workers)
        for epoch in range(epochs):
            shift = epoch % len(names)
            for name in names[shift:] + names[:shift]:
                message = workers[name].go()
                log(
                    f"  epoch {epoch} {name:28s} {message['epoch_time_s']:7.2f} s"
                    + (f" (wall {message['wall_s']:6.2f} s)" if "wall_s" in message else "")
                    + f"  val_accuracy {message.get('val_accuracy', float('nan')):.4f}"
                    + f"  cpu {message['cpu_s']:6.2f} s  steal {message['steal_s']:5.2f} s"
                )
        # One at a time, as the epochs were: a run's remaining work after its last
        # epoch must not slow another row's epoch.
        for name in names:
            workers[name].finish()
            done = workers[name].receive()
            rows = [{**row, **extras} for row, extras in zip(done["rows"], workers[name].epoch_extras)]
            results[name]["runs"].append(rows)
            if "run_wall_s" in done:
                results[name]["run_wall_s"] = done["run_wall_s"]
            results[name]["max_rss_mb"] = workers[name].receive().get("max_rss_mb")
    finally:
        for worker in workers.values():
            worker.close()
    for result in results.values():
        result.update(summary(result["runs"]))
    return results


def summary(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Median, min and max epoch seconds without each run's first epoch (tracing), and accuracy."""
    out: dict[str, Any] = {}
    for key, prefix in (("epoch_time_s", "epoch_s"), ("wall_s", "wall_s")):
        first = [run[0][key] for run in runs if run and key in run[0]]
        if not first:
            continue
        steady = [row[key] for run in runs for row in run[1:]] or first
        out.update({
            f"first_{prefix}": statistics.median(first),
            f"{prefix}_median": statistics.median(steady),
            f"{prefix}_min": min(steady),
            f"{prefix}_max": max(steady),
        })
    finals = [run[-1] for run in runs if run]
    out["val_accuracy_per_epoch"] = [[row.get("val_accuracy") for row in run] for run in runs]
    out["final_val_accuracy"] = statistics.mean(r.get("val_accuracy", float("nan")) for r in finals) if finals else None
    return out
