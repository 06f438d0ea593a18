"""CPU speed benchmark: the original code on its own stack against the project, side by side.

    uv run python -m benchmarks.cpu [--epochs N] [--data PATH] [--train-size N] [--test-size N]
                                    [--sections data,training,pipeline,levers] [--out FILE]

Rows (each a worker process; workers take turns epoch by epoch, the order
rotating, so machine load hits all alike):

* ``original_*``: the seed code as written on TF 2.15.1 + Keras 2 + TF Addons
  (``tfa.activations.rrelu``), in an environment built with uv on first use;
* ``port_*``: the same code ported to Keras 3 (the project's ``RReLU`` layer);
* ``project_*``: the project's training node alone;
* ``kedro_*`` (section ``pipeline``): ``kedro run --pipeline=compare`` for one
  activation, checkpointing and tracking included;
* ``lever_*`` (section ``levers``): the node with one setting changed.

All rows train on the same images (the pipeline's stratified subsample). The
report prints every ratio (of medians and of fastest epochs), the targets,
each row's validation accuracy per epoch, and the achieved GFLOP/s against
what this machine attains in the same TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import baseline_env, data, report
from benchmarks.interleave import Variant, run_interleaved, summary
from benchmarks.project_copy import PROJECT_ROOT, copy_project
from benchmarks.protocol import PREFIX

DEFAULT_IMAGE_FOLDER = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
TRAINING_VARIANTS = (
    "original_relu", "original_rrelu", "port_relu", "port_rrelu", "project_relu", "project_rrelu",
)
PIPELINE_VARIANTS = ("kedro_relu", "kedro_rrelu")
# A project or kedro row may name its model.precision: ``kedro_relu_float32``.
PRECISIONS = ("float32", "bfloat16", "float16", "auto")
# name -> (activation, knobs of benchmarks.project_worker); each changes one thing.
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "lever_base_relu": ("relu", {"precision": "float32"}),
    "lever_bf16_relu": ("relu", {"precision": "bfloat16"}),
    "lever_onednn_off": ("relu", {"precision": "float32", "onednn": "0"}),
    "lever_one_interop_thread": ("relu", {"precision": "float32", "interop_threads": 1}),
    "lever_one_step_per_execution": ("relu", {"precision": "float32", "steps_per_execution": 1}),
    "lever_keras_array_input": ("relu", {"precision": "float32", "keras_arrays": True}),
    "lever_validation_batch_1000": ("relu", {"precision": "float32", "validation_batch": 1000}),
    "lever_no_determinism": ("relu", {"precision": "float32", "deterministic": False}),
    "lever_base_rrelu": ("rrelu", {"precision": "float32"}),
    "lever_bf16_rrelu": ("rrelu", {"precision": "bfloat16"}),
    "lever_rrelu_float32_draw": ("rrelu", {"precision": "float32", "rrelu_draw": "float32"}),
    "lever_rrelu_unfused_where": ("rrelu", {"precision": "float32", "rrelu_apply": "where"}),
    "lever_rrelu_where_inference": ("rrelu", {"precision": "float32", "rrelu_inference": "where"}),
    # Not a lever (it is not RReLU): what the random slopes cost, as a floor.
    "lever_rrelu_no_draw": ("rrelu", {"precision": "float32", "rrelu_draw": "none"}),
    # Against lever_bf16_* (the default precision on a CPU with AMX), not the float32 base.
    "lever_bf16_relu_steps_50": ("relu", {"precision": "bfloat16", "steps_per_execution": 50}),
    "lever_bf16_rrelu_steps_50": ("rrelu", {"precision": "bfloat16", "steps_per_execution": 50}),
    "lever_bf16_relu_one_interop_thread": ("relu", {"precision": "bfloat16", "interop_threads": 1}),
    "lever_bf16_rrelu_one_interop_thread": ("rrelu", {"precision": "bfloat16", "interop_threads": 1}),
    # The node validates in batches of 500 (since 2026-12-07); these price the original's 100.
    "lever_bf16_relu_validation_batch_100": ("relu", {"precision": "bfloat16", "validation_batch": 100}),
    "lever_bf16_rrelu_validation_batch_100": ("rrelu", {"precision": "bfloat16", "validation_batch": 100}),
    "lever_bf16_rrelu_no_draw": ("rrelu", {"precision": "bfloat16", "rrelu_draw": "none"}),
}


def machine_description() -> dict[str, Any]:
    """CPU model and the flags that decide TensorFlow's kernels."""
    model, flags = "", set()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            model = value.strip()
        elif key.strip() == "flags":
            flags = set(value.split())
    return {
        "cpu_model": model,
        "usable_cpus": len(os.sched_getaffinity(0)),
        "cpu_flags": {f: f in flags for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")},
        "load_average_at_start": os.getloadavg(),
    }


def measure_limits(env: dict[str, str]) -> dict[str, Any]:
    """Attainable GFLOP/s, measured in a process of its own (the project's TensorFlow)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.limits"], cwd=PROJECT_ROOT, env={**os.environ, **env},
        capture_output=True, text=True, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith(PREFIX))
    message = json.loads(line[len(PREFIX):])
    message.pop("event")
    return message


def _kedro_project(tmp: Path, name: str, image_folder: Path | None, cache: Path, sizes: tuple[int, int]) -> Path:
    """A project copy whose image cache is already filled (hard links), as on a second run."""
    project = copy_project(tmp / name)
    if image_folder is not None:
        target = project / "data" / "02_intermediate" / "image_cache"
        target.parent.mkdir(parents=True, exist_ok=True)

        shutil.copytree(cache, target, copy_function=os.link, dirs_exist_ok=True)
    else:
        (project / "conf" / "local" / "catalog.yml").write_text(
            "raw_images:\n  type: activation_compare.datasets.ImageSourceDataset\n  source: synthetic\n"
            f"  synthetic:\n    n_train: {sizes[0]}\n    n_test: {sizes[1]}\n    seed: 0\n"
        )
    return project


def _row(name: str) -> tuple[str, str | None]:
    """A row's base variant and model.precision: ``kedro_relu_float32`` -> (``kedro_relu``, ``float32``)."""
    base, _, precision = name.rpartition("_")
    if precision in PRECISIONS and base.split("_")[0] in ("project", "kedro"):
        return base, precision
    return name, None


def _precision_of(name: str, precision: str | None = None) -> str:
    """What a row computes in on this machine: float32 for the original and the port,
    the project's ``model.precision`` (default ``auto``) resolved for the others."""
    variant, named = _row(name)
    if not variant.startswith(("project", "kedro")):
        return "float32"
    from activation_compare.models.precision import cpu_has_bfloat16
    from activation_compare.params import ModelParams

    chosen = precision or named or ModelParams().precision
    if chosen == "auto":  # the CPU's choice; these rows train on the CPU
        return "bfloat16" if cpu_has_bfloat16() else "float32"
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per variant (default 3)")
    parser.add_argument("--repeats", type=int, default=1, help="training runs per variant (default 1)")
    parser.add_argument(
        "--data", default=str(DEFAULT_IMAGE_FOLDER) if DEFAULT_IMAGE_FOLDER.exists() else None,
        help="image folder or .tar.gz; default ../shared/data/cifar10-jpeg.tar.gz if present; '' for synthetic",
    )
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--sections", default="training,pipeline",
                        help="comma-separated: data, training, pipeline, levers (default training,pipeline)")
    parser.add_argument("--levers", action="store_true", help="add the levers section")
    parser.add_argument("--variants", default=",".join(TRAINING_VARIANTS + PIPELINE_VARIANTS),
                        help="rows of the training and pipeline sections")
    parser.add_argument("--lever-epochs", type=int, default=None, help="epochs for the levers (default --epochs)")
    parser.add_argument("--lever-variants", default=",".join(LEVERS), help="rows of the levers section (default all)")
    parser.add_argument("--onednn", choices=("inherit", "on", "off"), default="inherit",
                        help="TF_ENABLE_ONEDNN_OPTS of the project's workers (the original's are TF's default)")
    parser.add_argument("--baseline-env", type=Path, default=baseline_env.DEFAULT_DIR,
                        help=f"where the TF 2.15 environment is built and reused (default {baseline_env.DEFAULT_DIR})")
    parser.add_argument("--out", default=None, help="JSON results (default benchmarks/results/<time>.json)")
    args = parser.parse_args(argv)
    known = set(TRAINING_VARIANTS + PIPELINE_VARIANTS)
    if unknown := [v for v in args.variants.split(",") if _row(v)[0] not in known]:
        parser.error(
            f"--variants {','.join(unknown)}: unknown; choose from {','.join(sorted(known))}, "
            f"project and kedro rows optionally with _<precision> ({', '.join(PRECISIONS)})"
        )
    if unknown := [v for v in args.lever_variants.split(",") if v not in LEVERS]:
        parser.error(f"--lever-variants {','.join(unknown)}: unknown; choose from {','.join(LEVERS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sections = set(args.sections.split(",")) | ({"levers"} if args.levers else set())
    image_folder = Path(args.data).resolve() if args.data else None
    sizes = (args.train_size, args.test_size)
    out = Path(args.out) if args.out else PROJECT_ROOT / "benchmarks" / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    onednn = {"inherit": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "on": "1", "off": "0"}[args.onednn]
    project_env = {"TF_ENABLE_ONEDNN_OPTS": onednn} if onednn is not None else {}
    result: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.cpu", *(sys.argv[1:] if argv is None else argv)]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_description(),
        "data_source": f"image folder {image_folder}" if image_folder else "synthetic (SyntheticImageDataset)",
        "sizes": {"train": args.train_size, "test": args.test_size, "batch": args.batch_size},
    }
    print(f"Data: {result['data_source']}; {args.train_size} train / {args.test_size} validation images")
    with tempfile.TemporaryDirectory(prefix="ac-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "image_cache"
        if "data" in sections:
            print("Data loading")
            result["data"], _ = data.measure_data(image_folder, tmp / "data")
        images = data.prepare_images(image_folder, cache, *sizes, tmp / "images.npz")
        # Measured before and after the training, the best kept: other work on the
        # machine only ever lowers what a measurement attains.
        limits_before = measure_limits(project_env)
        base = {"data": str(images), "epochs": args.epochs, "batch_size": args.batch_size}
        rows: dict[str, Variant] = {}
        wanted = args.variants.split(",")
        for name in wanted:
            variant, precision = _row(name)
            kind, activation = variant.split("_")
            spec = dict(base, activation=activation)
            if precision:  # else the project's default
                spec.update(precision=precision, knobs={"precision": precision})
            if kind == "original" and "training" in sections:
                python = str(baseline_env.ensure(args.baseline_env))
                rows[name] = Variant("benchmarks.seed_worker", spec, python)
            elif kind == "port" and "training" in sections:
                rows[name] = Variant("benchmarks.seed_worker", spec, sys.executable)
            elif kind == "project" and "training" in sections:
                rows[name] = Variant("benchmarks.project_worker", spec, sys.executable, project_env)
            elif kind == "kedro" and "pipeline" in sections:
                project = _kedro_project(tmp, name, image_folder, cache, sizes)
                spec.update(project=str(project), image_folder=str(image_folder) if image_folder else None,
                            train_size=args.train_size, test_size=args.test_size)
                env = {**project_env, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
                       "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}
                rows[name] = Variant("benchmarks.kedro_worker", spec, sys.executable, env)
        if rows:
            print(f"Training: {args.epochs} epochs x {args.repeats} run(s), interleaved")
            result["training"] = _repeat(rows, args.epochs, args.repeats)
            for name, row in result["training"].items():
                row["precision"] = _precision_of(name)
        if "levers" in sections:
            epochs = args.lever_epochs or args.epochs
            print(f"Levers: {epochs} epochs, interleaved")
            levers = {}
            for name in args.lever_variants.split(","):
                activation, knobs = LEVERS[name]
                spec = dict(base, activation=activation, epochs=epochs, knobs=knobs)
                env = {**project_env, **({"TF_ENABLE_ONEDNN_OPTS": knobs["onednn"]} if "onednn" in knobs else {})}
                levers[name] = Variant("benchmarks.project_worker", spec, sys.executable, env)
            result["levers"] = _repeat(levers, epochs, args.repeats)
            for name, row in result["levers"].items():
                row["precision"] = _precision_of("project", LEVERS[name][1].get("precision"))
    trained = {**result.get("training", {}), **result.get("levers", {})}
    if trained:
        print("Attainable throughput")
        after = measure_limits(project_env)
        result["limits"] = {k: max(v, limits_before.get(k) or 0) if isinstance(v, float) else v for k, v in after.items()}
        result["limits_measured"] = [limits_before, after]
        result["throughput"] = report.throughput(trained, result["limits"], result["sizes"])
    result["ratios"] = report.ratios(result.get("training", {}), result.get("levers", {}))
    result["targets"] = report.targets(result.get("training", {}))
    result["overheads"] = report.overheads(result.get("training", {}))
    result["steadiness"] = report.steadiness(trained)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    report.print_table(result)
    print(f"\nWrote {out}")
    return 0


def _repeat(variants: dict[str, Variant], epochs: int, repeats: int) -> dict[str, Any]:
    """``repeats`` interleaved runs of every variant, fresh workers each time, runs pooled."""
    pooled: dict[str, Any] = {}
    for _ in range(repeats):
        for name, one in run_interleaved(variants, epochs).items():
            if name in pooled:
                pooled[name]["runs"] += one["runs"]
            else:
                pooled[name] = one
    for row in pooled.values():
        row.update(summary(row["runs"]))
    return pooled


if __name__ == "__main__":
    sys.exit(main())
