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
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it exited: receive() says why
        return self.receive()

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
                )
        for name in names:
            done = workers[name].receive()
            results[name]["runs"].append(done["rows"])
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
