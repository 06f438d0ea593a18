"""Models per hour on 1 and on N Dask workers: ``python -m benchmarks.dask_scaling``.

    uv run python -m benchmarks.dask_scaling --workers 1,2 --rounds 2 --out benchmarks/results/dask-scaling.json

A real ``kedro run --pipeline=compare --runner=activation_compare.runner.DaskRunner``
in a throw-away project copy (own MLflow store, image cache filled before the
first timed run), against an external ``dask scheduler`` with ``dask worker
--nthreads 1 --nworkers N`` on this machine, as README "Scale out" starts
them. Each timed run retrains every model (``training.retrain=true``); the
worker counts alternate within a round (1, 2, 1, 2, ...), so a burst of other
work hits both alike. The figure is the whole run's wall time, start-up and
the shared steps included, and the speed-up of N workers over one in the same
round; efficiency is speed-up / N.
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


def measure(data: Path | None, train_size: int, test_size: int, epochs: int, seeds: str,
            worker_counts: list[int], rounds: int, argv: list[str]) -> dict:
    """Alternating timed runs per worker count; the speed-ups of each round against one worker."""
    with tempfile.TemporaryDirectory(prefix="dask-scaling-") as tmp:
        root = Path(tmp)
        project = copy_project(root / "project")
        params = run_parameters(data, train_size, test_size, epochs, seeds)
        # Fills the image cache (decoding the JPEG copy), outside the timed runs.
        kedro_run(project, run_parameters(data, train_size, test_size, 1, "0"))
        times: dict[int, list[float]] = {n: [] for n in worker_counts}
        for round_ in range(rounds):
            for workers in worker_counts:
                cluster = Cluster(root, workers)
                try:
                    times[workers].append(kedro_run(project, params, f"--runner={RUNNER}",
                                                    env={"DASK_SCHEDULER_ADDRESS": cluster.address}))
                finally:
                    cluster.stop()
                print(f"round {round_ + 1}: {workers} worker(s) {times[workers][-1]:.1f} s", flush=True)
    one = times[worker_counts[0]]
    speedups = {n: [round(a / b, 3) for a, b in zip(one, times[n])] for n in worker_counts[1:]}
    return {
        "command": "python -m benchmarks.dask_scaling " + " ".join(argv),
        "data": str(data) if data else "synthetic",
        "train_size": train_size, "test_size": test_size, "epochs": epochs, "seeds": seeds,
        "cores": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "wall_s": {str(n): [round(t, 1) for t in ts] for n, ts in times.items()},
        "speedup_vs_first": {str(n): s for n, s in speedups.items()},
        "efficiency_median": {str(n): round(statistics.median(s) * worker_counts[0] / n, 3)
                              for n, s in speedups.items()},
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
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = measure(Path(args.data).resolve() if args.data else None, args.train_size, args.test_size,
                     args.epochs, args.seeds, [int(n) for n in args.workers.split(",")], args.rounds,
                     sys.argv[1:] if argv is None else argv)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
