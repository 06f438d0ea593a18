"""How long the everyday Kedro commands take to answer, beside ``python -c "import tensorflow"``.

    uv run python -m benchmarks.cli_times [--project DIR] [--repeats N] [--out FILE]

Each command runs as a user types it, in a fresh process from the project
root, ``--repeats`` times; the report gives the fastest and the median wall
time. None of them trains or needs TensorFlow, so on a project whose modules
import TensorFlow only where a node or hook needs it they answer in a
fraction of TensorFlow's own import time. ``--project`` times another
checkout (e.g. an older commit from ``git worktree add``) with this
environment's interpreter; its ``src/`` goes first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# label -> arguments after the interpreter. Kedro's CLI is run as ``python -m kedro``
# so that the interpreter (and with it the environment) is the one timing it.
COMMANDS: dict[str, list[str]] = {
    "python -c 'import tensorflow'": ["-c", "import tensorflow"],
    "kedro --help": ["-m", "kedro", "--help"],
    "kedro run --help": ["-m", "kedro", "run", "--help"],
    "kedro info": ["-m", "kedro", "info"],
    "kedro registry list": ["-m", "kedro", "registry", "list"],
    # A misspelt parameter: refused before any data is read.
    "kedro run --params trainig.epochs=3 (refused)": [
        "-m", "kedro", "run", "--env", "smoke", "--params", "trainig.epochs=3",
    ],
}


def quiet_environment(*first_on_path: Path) -> dict[str, str]:
    """The environment of every timed command: telemetry off, ``first_on_path`` first on PYTHONPATH."""
    env = dict(os.environ)
    env.update(DO_NOT_TRACK="1", KEDRO_DISABLE_TELEMETRY="1", MLFLOW_DISABLE_TELEMETRY="true")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, first_on_path), env.get("PYTHONPATH")]))
    return env


def time_command(args: list[str], project: Path, repeats: int) -> dict[str, object]:
    """Wall times of ``python <args>`` run ``repeats`` times in ``project``, and its exit status."""
    times: list[float] = []
    returncode = 0
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *args],
            cwd=project,
            env=quiet_environment(project / "src"),
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        returncode = done.returncode
    return {
        "min_s": round(min(times), 2),
        "median_s": round(statistics.median(times), 2),
        "times_s": [round(t, 2) for t in times],
        "returncode": returncode,
    }


def measure(project: Path, repeats: int) -> dict[str, dict[str, object]]:
    """Every command of :data:`COMMANDS`, timed in ``project``."""
    return {label: time_command(args, project, repeats) for label, args in COMMANDS.items()}


def render(results: dict[str, dict[str, object]]) -> str:
    """A markdown table: command, fastest and median seconds, and the ratio to TensorFlow's import."""
    tensorflow = float(results[next(iter(COMMANDS))]["min_s"])  # type: ignore[arg-type]
    lines = ["| command | fastest (s) | median (s) | / import tensorflow |", "|---|---|---|---|"]
    for label, row in results.items():
        ratio = float(row["min_s"]) / tensorflow if tensorflow else float("nan")  # type: ignore[arg-type]
        lines.append(f"| `{label}` | {row['min_s']} | {row['median_s']} | {ratio:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=PROJECT_ROOT, help="project root to time")
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (default 3)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    options = parser.parse_args(argv)
    results = measure(options.project.resolve(), options.repeats)
    print(render(results))
    if options.out:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
