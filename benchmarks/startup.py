"""Where a smoke ``kedro run`` spends its start, beside ``python -c "import tensorflow"``, one run.

    uv run python -m benchmarks.startup [--rounds N] [--against REV] [--out FILE]

In a throw-away project copy (its own MLflow store), each round times
``python -c "import tensorflow"`` and then ``kedro run --env smoke`` with a
new seed (so every round trains: finished models would be reused), in fresh
processes, one after the other. The run goes through
:mod:`benchmarks.startup_worker`, Kedro's own CLI plus marks at each phase.
Round 0 creates the store (a user's first run); the table gives the median
of the later rounds, whose store exists. Last, one more run under
``python -X importtime`` attributes the import time to the big packages.

``--against REV`` times a second copy with the project's code and
configuration as they were at git revision ``REV`` (``src/`` and ``conf/``),
in the same rounds: each round runs both, taking turns at going first, so a
change's gain is read side by side under the same machine state.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks.cli_times import quiet_environment
from benchmarks.project_copy import PROJECT_ROOT, copy_project

# (label, from event, to event): the phases of a run's start, in order.
PHASES = (
    ("interpreter, Kedro CLI, project settings and hooks", "spawn", "context_created"),
    ("configuration and catalog", "context_created", "catalog_created"),
    ("parameters validated, session, run hooks", "catalog_created", "pipeline_start"),
    ("pipeline start hooks (MLflow store and parent run)", "pipeline_start", "first_node"),
    ("first model built (TensorFlow and Keras imported)", "first_node", "first_build_end"),
    ("other nodes before the first training", "first_build_end", "first_train_node"),
    ("training node to fit (checkpoint folder, compile)", "first_train_node", "first_step_start"),
    ("first train-step call (trace, compile, 10 steps)", "first_step_start", "first_step_end"),
)
# Packages whose first import -X importtime attributes (cumulative, as first imported).
PACKAGES = ("kedro", "activation_compare", "mlflow", "tensorflow", "keras", "pandas", "matplotlib",
            "sklearn", "dask", "sqlalchemy", "alembic", "numpy", "scipy")


def environment(events: Path | None = None) -> dict[str, str]:
    """Telemetry off, the benchmarks importable, and where the worker writes its marks."""
    env = quiet_environment(PROJECT_ROOT)
    if events is not None:
        env["STARTUP_EVENTS"] = str(events)
    return env


def time_import_tensorflow() -> float:
    """Wall seconds of ``python -c "import tensorflow"`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], env=environment(),
                   capture_output=True, check=True)
    return time.perf_counter() - start


def smoke_run(project: Path, seed: int, extra: list[str] | None = None) -> tuple[dict[str, float], str]:
    """One ``kedro run --env smoke`` with ``training.seeds=[seed]``: its phase marks (s from spawn) and stderr."""
    with tempfile.TemporaryDirectory() as scratch:
        events = Path(scratch) / "events.jsonl"
        spawned = time.time()
        done = subprocess.run(
            [sys.executable, *(extra or []), "-m", "benchmarks.startup_worker", "run", "--env", "smoke",
             "--params", f"training.seeds={seed}"],
            cwd=project, env=environment(events), capture_output=True, text=True, check=False,
        )
        ended = time.time()
        if done.returncode != 0:
            raise RuntimeError(f"kedro run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        marks: dict[str, float] = {"spawn": 0.0}
        for line in events.read_text().splitlines():
            event = json.loads(line)
            name, at = event["event"], event["t"] - spawned
            node = event.get("node", "")
            if name == "node_start":
                marks.setdefault("first_node", at)
                if "train_model" in node:
                    marks.setdefault("first_train_node", at)
            elif name == "node_end" and "build_model" in node:
                marks.setdefault("first_build_end", at)
            else:
                marks.setdefault(name, at)
        marks["process_end"] = ended - spawned
    return marks, done.stderr


def import_times(stderr: str) -> dict[str, float]:
    """Seconds of each package's first import (cumulative, with what it pulled in first) from -X importtime."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        name = name.strip()
        if name in PACKAGES and name not in found and cumulative.strip().isdigit():
            found[name] = int(cumulative) / 1e6
    return found


def project_at(revision: str, destination: Path) -> Path:
    """A project copy whose ``src/`` and ``conf/`` are the repository's at git ``revision``."""
    project = copy_project(destination)
    shutil.rmtree(project / "conf")
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "src", "conf"], cwd=PROJECT_ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(project, filter="data")
    (project / "conf" / "local").mkdir(exist_ok=True)
    return project


def _revision(revision: str) -> str | None:
    """The short commit id of a git revision of this repository; None outside a git checkout or for no commit."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "--verify", "--quiet", f"{revision}^{{commit}}"],
                              cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    except OSError:  # no git
        return None
    return done.stdout.strip() or None


def measure(rounds: int, against: str | None = None) -> dict[str, object]:
    """``rounds`` rounds of import tensorflow + smoke run (and the run at ``against``), then one -X importtime run."""
    with tempfile.TemporaryDirectory() as scratch:
        project = copy_project(Path(scratch) / "project")
        other = project_at(against, Path(scratch) / "against") if against else None
        rows = []
        for index in range(rounds):
            tensorflow = time_import_tensorflow()
            row: dict[str, object] = {"round": index, "import_tensorflow_s": tensorflow}
            turns = [("marks_s", project), ("against_marks_s", other)] if other else [("marks_s", project)]
            for key, copy in turns if index % 2 == 0 else turns[::-1]:
                row[key], _ = smoke_run(copy, seed=100 + index)
            rows.append(row)
            marks = row["marks_s"]
            print(f"round {index}: import tensorflow {tensorflow:.2f} s, first step "
                  f"{marks.get('first_step_start', float('nan')):.2f}–{marks.get('first_step_end', float('nan')):.2f} s, "
                  f"run {marks['process_end']:.2f} s"
                  + (f"; at {against}: first step {row['against_marks_s']['first_step_start']:.2f} s" if other else ""),
                  flush=True)
        _, stderr = smoke_run(project, seed=100 + rounds, extra=["-X", "importtime"])
    result: dict[str, object] = {"rounds": rows, "imports_s": import_times(stderr),
                                 "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 "loadavg": os.getloadavg(), "python": sys.version.split()[0],
                                 "revision": _revision("HEAD")}
    if against:
        result["against"] = {"revision": against, "commit": _revision(against)}
    return result


def render(result: dict[str, object]) -> str:
    """Markdown: the phases (median of the rounds after the first), the ratios to TensorFlow's import.

    With a second revision timed in the same rounds (``--against``), two more
    columns: its medians, and this run's minus its.
    """
    rows = result["rounds"]  # type: ignore[index]
    later = rows[1:] or rows  # type: ignore[index]
    against = result.get("against")

    def median(key_from: str, key_to: str, which=later, marks: str = "marks_s") -> float:
        return statistics.median(r[marks][key_to] - r[marks][key_from] for r in which)

    def cells(start: str, end: str) -> str:
        here = f"| {median(start, end):.2f} | {median(start, end, rows[:1]):.2f} |"
        if not against:
            return here
        there = median(start, end, marks="against_marks_s")
        return f"{here} {there:.2f} | {median(start, end) - there:+.2f} |"

    tensorflow = statistics.median(r["import_tensorflow_s"] for r in later)
    header = f"| phase of `kedro run --env smoke` | s (median of {len(later)}) | first run, new store |"
    rule = "|---|---|---|"
    if against:
        header += f" at {against['revision']} ({against['commit']}), same rounds | difference |"  # type: ignore[index]
        rule += "---|---|"
    lines = [header, rule]
    for label, start, end in PHASES:
        lines.append(f"| {label} {cells(start, end)}")
    for label, key in (("**first train step starts**", "first_step_start"),
                       ("**first train-step call ends**", "first_step_end"),
                       ("whole run, process exit", "process_end")):
        lines.append(f"| {label} {cells('spawn', key)}")
    blank = " | |" if against else ""
    lines.append(f"| `python -c \"import tensorflow\"` | {tensorflow:.2f} | {rows[0]['import_tensorflow_s']:.2f} |{blank}")
    start, end = median("spawn", "first_step_start"), median("spawn", "first_step_end")
    lines.append("")
    lines.append(f"Time to the first training step / `import tensorflow`: {start / tensorflow:.2f} (step starts), "
                 f"{end / tensorflow:.2f} (first call ends); target ≤ 1.3.")
    if against:
        there = median("spawn", "first_step_start", marks="against_marks_s")
        lines.append(f"At {against['revision']} in the same rounds: {there / tensorflow:.2f} (step starts).")  # type: ignore[index]
    imports = result.get("imports_s") or {}
    if imports:
        lines.append("")
        lines.append("First imports (-X importtime, cumulative, one run): " + ", ".join(
            f"{name} {seconds:.2f} s" for name, seconds in sorted(imports.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds (default 4; round 0 creates the store)")
    parser.add_argument("--against", metavar="REV",
                        help="also time the project's src/ and conf/ at this git revision, in the same rounds")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--render", type=Path, help="only print the table of an earlier --out JSON")
    options = parser.parse_args(argv)
    if options.against and not options.render and _revision(options.against) is None:
        parser.error(f"--against {options.against}: not a commit of a git checkout at {PROJECT_ROOT} "
                     "(a revision such as HEAD~1, a branch or a commit id)")
    result = json.loads(options.render.read_text()) if options.render else measure(options.rounds, options.against)
    print(render(result))
    if options.out and not options.render:
        options.out.parent.mkdir(parents=True, exist_ok=True)
        options.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
