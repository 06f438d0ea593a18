"""Speed and memory benchmark: the original code path against the project's, on this machine.

    python -m activation_compare.benchmark [--epochs N] [--repeats R] [--data PATH]
                                           [--out benchmarks/results/NAME.json]

What it measures, side by side in one run:

* **training**: per-epoch seconds (training + validation, as Keras reports an
  epoch) of

  - ``original_relu`` / ``original_rrelu``: the original experiment's code path,
    ``model.fit`` on float64 NumPy arrays (``x / 255`` of the uint8 images), the
    activation passed as ``Conv2D(activation=...)`` (``"relu"``, or the
    project's ``RReLU()`` layer as the callable), ``compile()`` with Keras'
    defaults, batch 100, the test set as validation data, TensorFlow's default
    environment;
  - ``project_relu`` / ``project_rrelu``: ``build_model`` + ``train_model`` of
    the modelling pipeline on the arrays ``normalize_images`` gives, with the
    ``training`` parameters of ``conf/base``.

  Every variant runs in a worker process of its own and the workers take turns
  epoch by epoch (the order rotates every epoch), so only one trains at a time
  and any drift of the machine hits all alike. The first epoch of each run
  includes tracing and is reported apart; medians and spreads use the others.
* **levers** (``--levers``): the project's ReLU model with one setting changed at
  a time, interleaved the same way (oneDNN off, op determinism off, one step per
  execution, Keras' own array input, validation batch 1000, one inter-op thread),
  and RReLU with a fused slope draw.
* **pipeline**: ``kedro run --pipeline=compare`` for ``--pipeline-epochs`` epochs
  in a throw-away copy of the project (its own data folder and MLflow store):
  wall time against the sum of the epochs in its histories, and the peak RSS of
  the run (its process tree, sampled).
* **data**: loading the official binary archive (``Cifar10BinaryDataset``; a
  synthetic archive in the official format with 50,000 + 10,000 records when the
  real one is absent), the image folder (``ImageFolderDataset``: first decode and
  cached load), and ``normalize_images``.

The table is printed and everything goes to the JSON file, with the machine's
description (CPU, flags, TensorFlow build).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGE_FOLDER = PROJECT_ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
OFFICIAL_ARCHIVE = PROJECT_ROOT / "data" / "01_raw" / "cifar-10-binary.tar.gz"
_PROTOCOL = "@@bench "

# --- what the workers run ------------------------------------------------------------------

TRAINING_VARIANTS = ("original_relu", "project_relu", "original_rrelu", "project_rrelu")

# name -> (activation, knobs); the baseline is project_relu with no knob.
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "lever_base_relu": ("relu", {}),
    "lever_onednn_off": ("relu", {"onednn": "0"}),
    "lever_no_determinism": ("relu", {"deterministic": False}),
    "lever_one_step_per_execution": ("relu", {"steps_per_execution": 1}),
    "lever_keras_array_input": ("relu", {"keras_arrays": True}),
    "lever_validation_batch_1000": ("relu", {"validation_batch": 1000}),
    "lever_one_interop_thread": ("relu", {"interop_threads": 1}),
    "lever_base_rrelu": ("rrelu", {}),
    "lever_rrelu_fused": ("rrelu", {"fused_rrelu": True}),
}


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss, not inherited over fork+exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(_PROTOCOL + json.dumps(message, default=float) + "\n")
    sys.stdout.flush()


def _wait_go() -> None:
    line = sys.stdin.readline()
    if not line or line.strip() != "go":
        raise SystemExit(0)  # the parent is gone or said stop


def _load_labelled(spec: dict[str, Any]):
    """The (train, test) uint8 splits the worker trains on, as the pipeline would load them."""
    from activation_compare.datasets import ImageFolderDataset, SyntheticImageDataset

    if spec["data"]:
        splits = ImageFolderDataset(spec["data"], cache_dir=spec["cache_dir"]).load()
    else:
        splits = SyntheticImageDataset(n_train=spec["train_size"], n_test=spec["test_size"]).load()
    return _subset(splits.train, spec["train_size"]), _subset(splits.test, spec["test_size"])


def _subset(images, size: int):
    """``size`` images drawn at random (seed 0; folders are sorted by class), in their order."""
    from activation_compare.datasets.types import LabelledImages

    if size >= len(images):
        return images
    keep = np.sort(np.random.default_rng(0).choice(len(images), size, replace=False))
    return LabelledImages(images.images[keep], images.labels[keep])


def _tf_description() -> dict[str, Any]:
    import tensorflow as tf
    from tensorflow.python.util import _pywrap_util_port

    import keras

    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "onednn_enabled": bool(_pywrap_util_port.IsMklEnabled()),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "build_info": {k: str(v) for k, v in tf.sysconfig.get_build_info().items()},
        "devices": [d.name for d in tf.config.list_physical_devices()],
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def _fused_rrelu_call(self, inputs, training=False):
    """RReLU with the slope and the branch folded into one factor (same values, one pass less).

    ``where(x >= 0, x, x * a)`` equals ``x * where(x >= 0, 1, a)``; with the factor
    saved, the gradient is one multiplication instead of two selects and a product.
    """
    import keras
    import tensorflow as tf

    if not training:
        return keras.ops.where(inputs >= 0, inputs, inputs * self.inference_slope)
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    slopes = keras.random.uniform(
        keras.ops.shape(inputs), minval=self.lower, maxval=self.upper, dtype=dtype,
        seed=self.seed_generator,
    )

    @tf.custom_gradient
    def apply(x, a):
        factor = tf.where(x >= 0, tf.ones_like(a), a)
        return x * factor, lambda g: (g * factor, None)

    return apply(inputs, slopes)


def _worker(spec: dict[str, Any]) -> None:
    """One training variant, gated epoch by epoch by the parent (stdin 'go' lines)."""
    import keras
    import tensorflow as tf

    from activation_compare.layers import RReLU
    from activation_compare.params import ModelParams, TrainingParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling import input_pipeline, nodes
    from activation_compare import training_events

    knobs = spec.get("knobs", {})
    if knobs.get("interop_threads"):  # before TensorFlow's runtime starts
        tf.config.threading.set_inter_op_parallelism_threads(knobs["interop_threads"])
    train_u8, test_u8 = _load_labelled(spec)
    kind, activation = spec["kind"], spec["activation"]
    epochs, batch = spec["epochs"], spec["batch_size"]
    if kind == "original":
        # The original: x / 255 of the uint8 arrays, float64.
        x, xv = train_u8.images / 255.0, test_u8.images / 255.0
        y, yv = train_u8.labels, test_u8.labels
    else:
        train, test = normalize_images(train_u8), normalize_images(test_u8)
    del train_u8, test_u8
    _emit({"event": "ready", "tf": _tf_description()})

    if knobs.get("fused_rrelu"):
        RReLU.call = _fused_rrelu_call
    if "steps_per_execution" in knobs:
        nodes._STEPS_PER_EXECUTION = knobs["steps_per_execution"]
    if knobs.get("keras_arrays") or knobs.get("validation_batch"):
        original_batches = input_pipeline.batches

        def batches(images, labels, batch_size, *, shuffle_seed=None, first_pass=0):
            if knobs.get("keras_arrays"):
                from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

                return ArrayDataAdapter(
                    images, labels, batch_size=batch_size, shuffle=shuffle_seed is not None
                ).get_tf_dataset()
            if shuffle_seed is None:
                batch_size = knobs["validation_batch"]
            return original_batches(
                images, labels, batch_size, shuffle_seed=shuffle_seed, first_pass=first_pass
            )

        input_pipeline.batches = batches

    for run in range(spec["repeats"]):
        seed = run
        rows: list[dict[str, float]] = []
        if kind == "original":

            class Gate(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    _wait_go()
                    self.started = time.perf_counter()

                def on_epoch_end(self, epoch, logs=None):
                    seconds = time.perf_counter() - self.started
                    row = {k: float(v) for k, v in (logs or {}).items()}
                    row.update(epoch=epoch, epoch_time_s=seconds)
                    rows.append(row)
                    _emit({"event": "epoch", "run": run, **row})

            keras.utils.set_random_seed(seed)
            # One RReLU layer per convolution, passed as the activation callable.
            act, act2 = ("relu", "relu") if activation == "relu" else (RReLU(), RReLU())
            model = keras.Sequential(
                [
                    keras.Input((32, 32, 3)),
                    keras.layers.Conv2D(32, (3, 3), activation=act),
                    keras.layers.MaxPooling2D((2, 2)),
                    keras.layers.Conv2D(64, (3, 3), activation=act2),
                    keras.layers.MaxPooling2D((2, 2)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(10, activation="softmax"),
                ]
            )
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            model.fit(
                x, y, batch_size=batch, epochs=epochs, validation_data=(xv, yv), verbose=0,
                callbacks=[Gate()],
            )
        else:
            def on_epoch(event):
                row = dict(event.metrics, epoch=event.epoch)
                rows.append(row)
                _emit({"event": "epoch", "run": run, **row})
                if event.epoch + 1 < event.epochs:
                    _wait_go()

            params = TrainingParams(
                epochs=epochs,
                batch_size=batch,
                verbose=0,
                deterministic=knobs.get("deterministic", True),
            )
            model = nodes.build_model({"type": activation}, ModelParams(), seed=seed, name=activation)
            training_events.subscribe(on_epoch)
            try:
                _wait_go()
                _, history = nodes.train_model(model, train, test, params, seed=seed)
            finally:
                training_events.unsubscribe(on_epoch)
            # The node's own timer is the figure the pipeline reports.
            for row, seconds in zip(rows, history["epoch_time_s"]):
                row["epoch_time_s"] = float(seconds)
        _emit({"event": "run_done", "run": run, "rows": rows})
        del model
        keras.backend.clear_session()
    _emit({"event": "done", "max_rss_mb": peak_rss_mb()})


# --- the parent: workers, interleaving ------------------------------------------------------


class _Worker:
    def __init__(self, name: str, spec: dict[str, Any], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "activation_compare.benchmark", "--worker", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=PROJECT_ROOT,
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.proc.stderr:  # keep the last lines for error messages
            self.stderr = (self.stderr + [line])[-40:]

    def receive(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(_PROTOCOL):
                return json.loads(line[len(_PROTOCOL) :])
        self.proc.wait()
        raise RuntimeError(
            f"benchmark worker {self.name} exited ({self.proc.returncode}):\n"
            + "".join(self.stderr[-25:])
        )

    def go(self) -> dict[str, Any]:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _worker_env(onednn: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    # "" is TensorFlow's default for this CPU, even if the project sets a default of its own.
    env["TF_ENABLE_ONEDNN_OPTS"] = "" if onednn is None else onednn
    return env


def run_interleaved(
    variants: dict[str, tuple[dict[str, Any], dict[str, str]]], epochs: int, repeats: int, log=print
) -> dict[str, Any]:
    """Start one worker per variant, then let them train one epoch each in turn."""
    workers: dict[str, _Worker] = {}
    results: dict[str, Any] = {}
    try:
        for name, (spec, env) in variants.items():
            # One at a time: loading data concurrently would only slow all down.
            worker = _Worker(name, spec, env)
            ready = worker.receive()
            workers[name] = worker
            results[name] = {"tf": ready["tf"], "runs": []}
            log(f"  worker {name} ready (oneDNN {'on' if ready['tf']['onednn_enabled'] else 'off'})")
        names = list(workers)
        for run in range(repeats):
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for epoch in range(epochs):
                shift = (epoch + run) % len(names)
                for name in names[shift:] + names[:shift]:
                    message = workers[name].go()
                    rows[name].append(message)
                    log(
                        f"  run {run} epoch {epoch} {name:30s} {message['epoch_time_s']:7.2f} s  "
                        f"val_accuracy {message.get('val_accuracy', float('nan')):.4f}"
                    )
            for name in names:
                done = workers[name].receive()
                assert done["event"] == "run_done", done
                # The project's rows carry the node's own epoch_time_s (same clock points).
                results[name]["runs"].append(done["rows"])
        for name in names:
            message = workers[name].receive()
            results[name]["max_rss_mb"] = message.get("max_rss_mb")
    finally:
        for worker in workers.values():
            worker.close()
    for name, result in results.items():
        result.update(_summary(result["runs"]))
    return results


def _summary(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    first = [run[0]["epoch_time_s"] for run in runs if run]
    steady = [row["epoch_time_s"] for run in runs for row in run[1:]] or first
    finals = [run[-1] for run in runs if run]
    return {
        "first_epoch_s": statistics.median(first) if first else None,
        "epoch_s_median": statistics.median(steady) if steady else None,
        "epoch_s_min": min(steady) if steady else None,
        "epoch_s_max": max(steady) if steady else None,
        "final_val_accuracy": statistics.mean(r.get("val_accuracy", float("nan")) for r in finals)
        if finals
        else None,
        "final_loss": statistics.mean(r.get("loss", float("nan")) for r in finals) if finals else None,
    }


# --- data ------------------------------------------------------------------------------------


def write_binary_archive(path: Path, train, test, class_names) -> None:
    """An archive in the official CIFAR-10 binary layout (5 train batches, 1 test batch)."""

    def records(images: np.ndarray, labels: np.ndarray) -> bytes:
        count = len(labels)
        out = np.empty((count, 3073), dtype=np.uint8)
        out[:, 0] = labels
        out[:, 1:] = images.transpose(0, 3, 1, 2).reshape(count, 3072)
        return out.tobytes()

    members = []
    per_batch = -(-len(train) // 5)
    for i in range(5):
        part = slice(i * per_batch, (i + 1) * per_batch)
        members.append((f"data_batch_{i + 1}.bin", records(train.images[part], train.labels[part])))
    members.append(("test_batch.bin", records(test.images, test.labels)))
    members.append(("batches.meta.txt", ("\n".join(class_names) + "\n").encode()))
    with tarfile.open(path, "w:gz", compresslevel=9) as tar:
        for name, data in members:
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def measure_data(image_folder: Path | None, tmp: Path, log=print) -> tuple[dict[str, Any], Any]:
    from activation_compare.datasets import (
        CIFAR10_CLASSES,
        Cifar10BinaryDataset,
        ImageFolderDataset,
        SyntheticImageDataset,
    )
    from activation_compare.datasets._download import file_md5
    from activation_compare.pipelines.data_processing.nodes import normalize_images

    result: dict[str, Any] = {}
    splits = None
    tmp.mkdir(parents=True, exist_ok=True)
    if image_folder is not None:
        cache = tmp / "image_cache"
        started = time.perf_counter()
        splits = ImageFolderDataset(str(image_folder), cache_dir=str(cache)).load()
        first = time.perf_counter() - started
        started = time.perf_counter()
        ImageFolderDataset(str(image_folder), cache_dir=str(cache)).load()
        cached = time.perf_counter() - started
        result["image_folder"] = {
            "path": str(image_folder),
            "images": len(splits.train) + len(splits.test),
            "first_decode_s": first,
            "cached_load_s": cached,
        }
        log(f"  image folder: first decode {first:.2f} s, cached {cached:.2f} s")

    if OFFICIAL_ARCHIVE.is_file():
        archive, kwargs, origin = OFFICIAL_ARCHIVE, {}, "official archive"
    else:
        source = splits or SyntheticImageDataset(n_train=50_000, n_test=10_000).load()
        archive = tmp / "cifar-10-binary.tar.gz"
        write_binary_archive(archive, source.train, source.test, CIFAR10_CLASSES)
        kwargs = {"md5": file_md5(archive), "size": archive.stat().st_size}
        origin = (
            "synthetic archive in the official binary format (the official one is absent), "
            + ("pixels of the image folder" if splits else "synthetic pixels")
        )
    cache = tmp / "binary_cache"
    timings = {}
    for label, cache_dir in (("parse_s", None), ("first_with_cache_s", cache), ("cached_load_s", cache)):
        dataset = Cifar10BinaryDataset(
            archive_path=str(archive), cache_dir=str(cache_dir) if cache_dir else None, **kwargs
        )
        started = time.perf_counter()
        loaded = dataset.load()
        timings[label] = time.perf_counter() - started
    result["cifar10_binary"] = {
        "archive": str(archive),
        "origin": origin,
        "bytes": archive.stat().st_size,
        "records": len(loaded.train) + len(loaded.test),
        **timings,
    }
    log(
        f"  binary archive ({origin}): parse {timings['parse_s']:.2f} s, "
        f"cached {timings['cached_load_s']:.2f} s"
    )
    splits = splits or loaded
    started = time.perf_counter()
    normalized = normalize_images(splits.train)
    normalize_images(splits.test)
    result["normalize_s"] = time.perf_counter() - started
    del normalized
    log(f"  normalize (train + test): {result['normalize_s']:.2f} s")
    return result, splits


# --- the whole pipeline ------------------------------------------------------------------------


def copy_project(destination: Path) -> Path:
    """A runnable copy of the project's config and an empty data tree (the code is installed)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (PROJECT_ROOT / name).exists():
            shutil.copy2(PROJECT_ROOT / name, destination / name)
    (destination / "src").mkdir(exist_ok=True)
    shutil.copytree(
        PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local")
    )
    (destination / "conf" / "local").mkdir(exist_ok=True)
    for layer in sorted((PROJECT_ROOT / "data").iterdir()):
        if layer.is_dir():
            (destination / "data" / layer.name).mkdir(parents=True, exist_ok=True)
    return destination


_PIPELINE_DRIVER = r"""
import json, os, sys, time
started = time.perf_counter()
project, params, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
from kedro.framework.hooks import hook_impl
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

class Timing:
    def __init__(self):
        self.nodes, self.io, self._open = {}, {"load": 0.0, "save": 0.0}, {}
    @hook_impl(trylast=True)  # the last before-hook: right before the node's function
    def before_node_run(self, node):
        self._open[node.name] = time.perf_counter()
    @hook_impl(tryfirst=True)  # the first after-hook: right after it
    def after_node_run(self, node):
        self.nodes[node.name] = time.perf_counter() - self._open.pop(node.name)
    @hook_impl(trylast=True)
    def before_dataset_loaded(self, dataset_name):
        self._open["load:" + dataset_name] = time.perf_counter()
    @hook_impl(tryfirst=True)
    def after_dataset_loaded(self, dataset_name):
        self.io["load"] += time.perf_counter() - self._open.pop("load:" + dataset_name)
    @hook_impl(trylast=True)
    def before_dataset_saved(self, dataset_name):
        self._open["save:" + dataset_name] = time.perf_counter()
    @hook_impl(tryfirst=True)
    def after_dataset_saved(self, dataset_name):
        self.io["save"] += time.perf_counter() - self._open.pop("save:" + dataset_name)

bootstrap_project(project)
timing = Timing()
with KedroSession.create(project_path=project, runtime_params=params) as session:
    session._hook_manager.register(timing)
    run_started = time.perf_counter()
    session.run(pipeline_name="compare")
    run_s = time.perf_counter() - run_started
result = {"startup_s": run_started - started, "run_s": run_s, "nodes": timing.nodes, "io": timing.io}
with open(out, "w") as f:
    json.dump(result, f)
"""


def measure_pipeline(
    tmp: Path, epochs: int, image_folder: Path | None, env: dict[str, str], sizes: tuple[int, int],
    log=print, again: bool = False,
) -> dict[str, Any]:
    """Run the compare pipeline as ``kedro run`` does (a KedroSession), timed node by node.

    ``again``: a second run in the same project copy and MLflow store (both exist
    already), retraining the models (``training.retrain=true``).
    """
    import pandas as pd
    import psutil

    project = tmp / "project" if again else copy_project(tmp / "project")
    params: dict[str, Any] = {"training": {"epochs": epochs, "verbose": 0, "retrain": again}}
    if image_folder is not None:
        params["data"] = {"source": "image_folder", "path": str(image_folder)}
        if sizes != (50_000, 10_000):
            params["data"].update(limit_train=sizes[0], limit_test=sizes[1])
        # A second run's situation: the decoded images are cached (first decode: see data).
        from activation_compare.datasets import ImageFolderDataset

        ImageFolderDataset(
            str(image_folder), cache_dir=str(project / "data/02_intermediate/image_cache")
        ).load()
    else:
        params["data"] = {"source": "synthetic"}
        (project / "conf/local/catalog.yml").write_text(
            "raw_images:\n  type: activation_compare.datasets.ImageSourceDataset\n"
            "  source: synthetic\n"
            f"  synthetic:\n    n_train: {sizes[0]}\n    n_test: {sizes[1]}\n    seed: 0\n"
        )
    run_env = {k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"}
    run_env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}",
        KEDRO_DISABLE_TELEMETRY="1",
        DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    timing_file = tmp / f"pipeline_timing{'_again' if again else ''}.json"
    command = [sys.executable, "-c", _PIPELINE_DRIVER, str(project), json.dumps(params), str(timing_file)]
    log(f"  kedro run --pipeline=compare with {json.dumps(params)} (in {project})")
    started = time.perf_counter()
    proc = psutil.Popen(
        command, cwd=project, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    peak_tree = peak_main = 0
    while proc.poll() is None:
        try:
            main = proc.memory_info().rss
            tree = main + sum(c.memory_info().rss for c in proc.children(recursive=True))
        except psutil.Error:
            main = tree = 0
        peak_main, peak_tree = max(peak_main, main), max(peak_tree, tree)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError("kedro run failed:\n" + "".join(output[-40:]))
    timing = json.loads(timing_file.read_text())
    histories = sorted((project / "data/07_model_output").glob("*_history.csv"))
    epoch_sum = sum(float(pd.read_csv(path)["epoch_time_s"].sum()) for path in histories)
    nodes = timing["nodes"]
    training_nodes = sum(t for name, t in nodes.items() if ".train_model" in name)
    node_sum = sum(nodes.values())
    io = timing["io"]["load"] + timing["io"]["save"]
    result = {
        "runtime_params": params,
        "epochs": epochs,
        "models": len(histories),
        "wall_s": wall,
        "sum_epoch_s": epoch_sum,
        "overhead_s": wall - epoch_sum,
        "overhead_pct_of_training": 100 * (wall - epoch_sum) / epoch_sum if epoch_sum else None,
        "breakdown_s": {
            "startup_imports_config": timing["startup_s"],
            "training_nodes_outside_epochs": training_nodes - epoch_sum,
            "other_nodes": node_sum - training_nodes,
            "dataset_load_save": io,
            "kedro_mlflow_hooks_runner": timing["run_s"] - node_sum - io,
            "shutdown": wall - timing["startup_s"] - timing["run_s"],
        },
        "nodes_s": nodes,
        "peak_rss_mb_main": peak_main / 2**20,
        "peak_rss_mb_tree": peak_tree / 2**20,
    }
    result["framework_overhead_pct_of_training"] = (
        100 * result["breakdown_s"]["kedro_mlflow_hooks_runner"] / epoch_sum if epoch_sum else None
    )
    log(
        f"  wall {wall:.1f} s, epochs {epoch_sum:.1f} s, overhead {result['overhead_s']:.1f} s "
        f"({result['overhead_pct_of_training']:.1f}%), peak RSS {peak_main / 2**20:.0f} MB "
        f"(tree {peak_tree / 2**20:.0f} MB)"
    )
    log("  breakdown: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["breakdown_s"].items()))
    return result


def measure_startup(env: dict[str, str]) -> float:
    """Seconds to start Python and import the project's training code (TensorFlow included)."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import activation_compare.pipelines.modelling.nodes"],
        env=env, check=True, capture_output=True,
    )
    return time.perf_counter() - started


# --- machine ---------------------------------------------------------------------------------


def machine_description() -> dict[str, Any]:
    model, flags = platform.processor(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    try:
        import psutil

        memory_gb = psutil.virtual_memory().total / 2**30
    except ImportError:  # pragma: no cover
        memory_gb = None
    return {
        "cpu_model": model,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_flags": {f: f in flags for f in ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")},
        "memory_gb": memory_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# --- report ----------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def print_table(report: dict[str, Any]) -> None:
    training = report.get("training", {})
    if training or report.get("levers"):
        print("\nPer-epoch seconds (training + validation), epochs after the first")
        print(f"{'variant':32s} {'median':>8s} {'min':>8s} {'max':>8s} {'1st':>8s} {'val_acc':>8s} {'oneDNN':>6s} {'RSS MB':>7s}")
        for name, r in {**training, **report.get("levers", {})}.items():
            print(
                f"{name:32s} {r['epoch_s_median']:8.2f} {r['epoch_s_min']:8.2f} {r['epoch_s_max']:8.2f} "
                f"{r['first_epoch_s']:8.2f} {r['final_val_accuracy']:8.4f} "
                f"{'on' if r['tf']['onednn_enabled'] else 'off':>6s} {r.get('max_rss_mb') or 0:7.0f}"
            )
    ratios = report.get("ratios", {})
    if ratios:
        fastest = report.get("ratios_of_fastest_epochs", {})
        print(f"\n{'Ratios':48s} {'medians':>8s} {'fastest':>8s}")
        for name, value in ratios.items():
            print(f"  {name:46s} {value:8.3f} {fastest.get(name) or float('nan'):8.3f}")
    for key in ("pipeline", "pipeline_second_run"):
        if key not in report:
            continue
        p = report[key]
        print(
            f"\n{key}: {p['models']} models x {p['epochs']} epochs: wall {p['wall_s']:.1f} s, "
            f"epochs {p['sum_epoch_s']:.1f} s, overhead {p['overhead_s']:.1f} s = "
            f"{p['overhead_pct_of_training']:.1f}% of training; peak RSS {p['peak_rss_mb_main']:.0f} MB "
            f"(with child processes {p['peak_rss_mb_tree']:.0f} MB)"
        )
        print(
            "  of which: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in p["breakdown_s"].items())
            + f"; Kedro + MLflow (hooks, runner) = {p['framework_overhead_pct_of_training']:.1f}% of training"
        )
    if "data" in report:
        print("\nData:", json.dumps(report["data"], indent=1, default=float))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m activation_compare.benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--epochs", type=int, default=3, help="epochs per training run (default 3)")
    parser.add_argument("--repeats", type=int, default=1, help="training runs per variant (default 1)")
    parser.add_argument(
        "--data",
        default=str(DEFAULT_IMAGE_FOLDER) if DEFAULT_IMAGE_FOLDER.exists() else None,
        help="image folder / .tar.gz (ImageFolderDataset); default ../shared/data/cifar10-jpeg.tar.gz "
        "if present, else synthetic data of the same shape",
    )
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--sections", default="data,training,pipeline",
        help="comma-separated: data, training, levers, pipeline (default data,training,pipeline)",
    )
    parser.add_argument("--levers", action="store_true", help="add the levers section")
    parser.add_argument(
        "--variants", default=",".join(TRAINING_VARIANTS),
        help=f"training variants to run (default {','.join(TRAINING_VARIANTS)})",
    )
    parser.add_argument("--lever-epochs", type=int, default=None, help="epochs for the levers (default --epochs)")
    parser.add_argument("--pipeline-epochs", type=int, default=2)
    parser.add_argument(
        "--onednn", choices=("inherit", "on", "off"), default="inherit",
        help="TF_ENABLE_ONEDNN_OPTS for the project's workers and the pipeline run: inherit the "
        "environment/project default, or force it (the original always gets TensorFlow's default)",
    )
    parser.add_argument("--out", default=None, help="JSON results (default benchmarks/results/<time>.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(json.loads(args.worker))
        return 0

    sections = set(args.sections.split(","))
    if args.levers:
        sections.add("levers")
    image_folder = Path(args.data).resolve() if args.data else None
    out = Path(args.out) if args.out else PROJECT_ROOT / "benchmarks" / "results" / (
        time.strftime("%Y%m%d-%H%M%S") + ".json"
    )
    project_onednn = {"inherit": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "on": "1", "off": "0"}[args.onednn]
    project_env = _worker_env(project_onednn)
    if project_onednn is None:
        project_env.pop("TF_ENABLE_ONEDNN_OPTS")
    report: dict[str, Any] = {
        "command": " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_description(),
        "data_source": (
            f"image folder {image_folder}" if image_folder else
            "synthetic (SyntheticImageDataset): no image folder given or found"
        ),
        "sizes": {"train": args.train_size, "test": args.test_size, "batch": args.batch_size},
        "project_onednn": args.onednn,
    }
    print(f"Data: {report['data_source']}; {args.train_size} train / {args.test_size} test images")
    with tempfile.TemporaryDirectory(prefix="ac-bench-") as tmp_name:
        tmp = Path(tmp_name)
        cache_dir = tmp / "worker_cache"
        if "data" in sections:
            print("Data loading")
            report["data"], _ = measure_data(image_folder, tmp / "data", log=print)
        base_spec = {
            "data": str(image_folder) if image_folder else None,
            "cache_dir": str(cache_dir),
            "train_size": args.train_size,
            "test_size": args.test_size,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
        }
        if image_folder is not None:  # decode once; the workers load the cache
            from activation_compare.datasets import ImageFolderDataset

            ImageFolderDataset(str(image_folder), cache_dir=str(cache_dir)).load()
        if "training" in sections:
            print(f"Training: {args.epochs} epochs x {args.repeats} run(s), interleaved")
            variants = {}
            for name in args.variants.split(","):
                if name not in TRAINING_VARIANTS:
                    parser.error(f"unknown variant {name!r}; choose from {TRAINING_VARIANTS}")
                kind, activation = name.split("_")
                spec = dict(base_spec, kind=kind, activation=activation, epochs=args.epochs)
                variants[name] = (spec, _worker_env(None) if kind == "original" else project_env)
            report["training"] = run_interleaved(variants, args.epochs, args.repeats)
        if "levers" in sections:
            epochs = args.lever_epochs or args.epochs
            print(f"Levers: {epochs} epochs x {args.repeats} run(s), interleaved")
            variants = {}
            for name, (activation, knobs) in LEVERS.items():
                spec = dict(base_spec, kind="project", activation=activation, epochs=epochs, knobs=knobs)
                env = _worker_env(knobs.get("onednn", "1"))
                variants[name] = (spec, env)
            report["levers"] = run_interleaved(variants, epochs, args.repeats)
        t = report.get("training", {})
        lv = report.get("levers", {})

        def med(group, name):
            return group.get(name, {}).get("epoch_s_median")

        report["ratios"] = {
            "project_relu / original_relu": _ratio(med(t, "project_relu"), med(t, "original_relu")),
            "project_rrelu / original_rrelu": _ratio(med(t, "project_rrelu"), med(t, "original_rrelu")),
            "project_rrelu / project_relu": _ratio(med(t, "project_rrelu"), med(t, "project_relu")),
            "original_rrelu / original_relu": _ratio(med(t, "original_rrelu"), med(t, "original_relu")),
            **{
                f"{name} / lever_base_{LEVERS[name][0]}": _ratio(
                    med(lv, name), med(lv, f"lever_base_{LEVERS[name][0]}")
                )
                for name in lv
                if not name.startswith("lever_base")
            },
        }
        report["ratios"] = {k: v for k, v in report["ratios"].items() if v is not None}
        # The fastest epoch of each: a robust figure when other work shares the machine.
        report["ratios_of_fastest_epochs"] = {
            name: _ratio(
                {**t, **lv}[name.split(" / ")[0]]["epoch_s_min"],
                {**t, **lv}[name.split(" / ")[1]]["epoch_s_min"],
            )
            for name in report["ratios"]
        }
        if "pipeline" in sections:
            print(f"Pipeline: kedro run --pipeline=compare, {args.pipeline_epochs} epochs")
            report["startup_s"] = measure_startup(project_env)
            report["pipeline"] = measure_pipeline(
                tmp, args.pipeline_epochs, image_folder, project_env,
                (args.train_size, args.test_size), log=print,
            )
            print("  again, with the MLflow store and the project copy in place (retrain=true)")
            report["pipeline_second_run"] = measure_pipeline(
                tmp, args.pipeline_epochs, image_folder, project_env,
                (args.train_size, args.test_size), log=print, again=True,
            )
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, default=float))
    print_table(report)
    print(f"\nWrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
