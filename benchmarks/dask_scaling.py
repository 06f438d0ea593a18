"""Whole comparisons on 1 and on N Dask workers: ``python -m benchmarks.dask_scaling``.

    uv run python -m benchmarks.dask_scaling --train-size 10000 --test-size 2000 --epochs 5 \
        --workers 1,2 --rounds 3 --sequential --out benchmarks/results/dask-scaling-10k-5epochs.json

A real ``kedro run --pipeline=compare --runner=activation_compare.runner.DaskRunner``
in a throw-away project copy (own MLflow store, image cache filled before the
first timed run), against an external ``dask scheduler`` with ``dask worker
--nthreads 1 --nworkers N`` on this machine, as README "Scale out" starts
them. Each timed run retrains every model (``training.retrain=true``); the
rows take turns within a round (1, 2, 1, 2, ...), so a burst of other work
hits all alike. With ``--sequential`` a plain ``kedro run`` (one process,
TensorFlow's threads on every core) takes its turn too: what one machine
gives without Dask.

Two figures per run: the whole run's wall time, start-up and the shared
steps included, and the models' span (the first model's start to the last
model's end, from the run's MLflow child runs), the part that spreads over
workers. For each, the speed-up of every row over the first worker count in
the same round, and the efficiency (speed-up x first count / N).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.project_copy import PROJECT_ROOT, copy_project

SHARED_IMAGES = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
RUNNER = "activation_compare.runner.DaskRunner"
BIN = Path(sys.executable).parent
# The row of a plain `kedro run` (SequentialRunner, TensorFlow's threads on every core).
SEQUENTIAL = "sequential"


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DASK_", "KEDRO_ENV"))}
    env.update(DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="1", MLFLOW_DISABLE_TELEMETRY="true", **extra)
    return env


def run_parameters(data: Path | None, train_size: int, test_size: int, epochs: int, seeds: str) -> str:
    """``--params`` of every run: the data, its subsample, the models and a fresh training."""
    source = f"data.source=image_folder,data.path={data}" if data else "data.source=synthetic"
    return (f"{source},data.limit_train={train_size},data.limit_test={test_size},"
            f"training.epochs={epochs},training.seeds={seeds},training.retrain=true")


class Cluster:
    """``dask scheduler`` and ``dask worker --nthreads 1 --nworkers N`` on 127.0.0.1."""

    def __init__(self, root: Path, workers: int) -> None:
        self._log = open(root / f"cluster-{workers}.log", "w")  # noqa: SIM115 - closed in stop()
        scheduler_file = root / f"scheduler-{workers}.json"
        scheduler_file.unlink(missing_ok=True)
        self._processes = [self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                       "--scheduler-file", str(scheduler_file))]
        deadline = time.monotonic() + 120
        while not scheduler_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start; see {self._log.name}")
            time.sleep(0.2)
        self.address = json.loads(scheduler_file.read_text())["address"]
        self._processes.append(self._start("worker", self.address, "--nthreads", "1", "--nworkers",
                                           str(workers), "--host", "127.0.0.1", "--no-dashboard"))
        self._wait_for(workers)

    def _start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=self._log, stderr=subprocess.STDOUT,
                                env=_environment(), start_new_session=True)

    def _wait_for(self, workers: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for process in reversed(self._processes):
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._log.close()


def kedro_run(project: Path, params: str, *runner: str, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one ``kedro run --pipeline=compare`` in ``project``; fails loudly."""
    start = time.perf_counter()
    done = subprocess.run([str(BIN / "kedro"), "run", "--pipeline=compare", "--params", params, *runner],
                          cwd=project, env=_environment(**(env or {})), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"kedro run failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def models_span(project: Path) -> float:
    """Seconds from the first model's start to the last model's end in the newest run (its MLflow child runs).

    The whole run's wall time also holds what does not spread over workers
    (start-up, reading the data, the comparison); this is the part that does.
    """
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("activation-compare")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=500)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    return (max(r.info.end_time for r in children) - min(r.info.start_time for r in children)) / 1000


def measure(data: Path | None, train_size: int, test_size: int, epochs: int, seeds: str,
            worker_counts: list[int], rounds: int, sequential: bool, argv: list[str]) -> dict:
    """Alternating timed runs per worker count; the speed-ups of each round against one worker."""
    with tempfile.TemporaryDirectory(prefix="dask-scaling-") as tmp:
        root = Path(tmp)
        project = copy_project(root / "project")
        params = run_parameters(data, train_size, test_size, epochs, seeds)
        # Fills the image cache (decoding the JPEG copy), outside the timed runs.
        kedro_run(project, run_parameters(data, train_size, test_size, 1, "0"))
        rows = [str(n) for n in worker_counts] + ([SEQUENTIAL] if sequential else [])
        times: dict[str, list[float]] = {row: [] for row in rows}
        spans: dict[str, list[float]] = {row: [] for row in rows}
        for round_ in range(rounds):
            for row in rows:
                if row == SEQUENTIAL:
                    times[row].append(kedro_run(project, params))
                else:
                    cluster = Cluster(root, int(row))
                    try:
                        times[row].append(kedro_run(project, params, f"--runner={RUNNER}",
                                                    env={"DASK_SCHEDULER_ADDRESS": cluster.address}))
                    finally:
                        cluster.stop()
                spans[row].append(models_span(project))
                print(f"round {round_ + 1}: {row if row == SEQUENTIAL else row + ' worker(s)'} "
                      f"{times[row][-1]:.1f} s (models {spans[row][-1]:.1f} s)", flush=True)

    def speedups(seconds: dict[str, list[float]]) -> dict[str, list[float]]:
        first = seconds[rows[0]]
        return {row: [round(a / b, 3) for a, b in zip(first, seconds[row])] for row in rows[1:]}

    def efficiency(ratios: dict[str, list[float]]) -> dict[str, float]:
        return {row: round(statistics.median(r) * worker_counts[0] / int(row), 3)
                for row, r in ratios.items() if row != SEQUENTIAL}

    run_speedups, model_speedups = speedups(times), speedups(spans)
    return {
        "command": "python -m benchmarks.dask_scaling " + " ".join(argv),
        "data": str(data) if data else "synthetic",
        "train_size": train_size, "test_size": test_size, "epochs": epochs, "seeds": seeds,
        "cores": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "wall_s": {row: [round(t, 1) for t in ts] for row, ts in times.items()},
        "speedup_vs_first": run_speedups,
        "efficiency_median": efficiency(run_speedups),
        "models_span_s": {row: [round(t, 1) for t in ts] for row, ts in spans.items()},
        "models_speedup_vs_first": model_speedups,
        "models_efficiency_median": efficiency(model_speedups),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED_IMAGES) if SHARED_IMAGES.exists() else "",
                        help="image folder or .tar.gz ('' for synthetic images)")
    parser.add_argument("--train-size", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="0 1", help="space-separated: 2 activations x seeds models")
    parser.add_argument("--workers", default="1,2", help="worker counts, the first the reference")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sequential", action="store_true",
                        help="also time the plain `kedro run` (SequentialRunner, TensorFlow on every core)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = measure(Path(args.data).resolve() if args.data else None, args.train_size, args.test_size,
                     args.epochs, args.seeds, [int(n) for n in args.workers.split(",")], args.rounds,
                     args.sequential, sys.argv[1:] if argv is None else argv)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
