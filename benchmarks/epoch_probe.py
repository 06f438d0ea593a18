"""One model's epochs alone, with what the process did in each: wall and CPU seconds, run-queue delay, switches.

    uv run python -m benchmarks.epoch_probe --activation rrelu --images 10000 --epochs 10 [--tensor-slices] [--autotune]

The training node (``build_model`` + ``train_model``, bfloat16, no checkpoint,
no tracking) on synthetic CIFAR-shaped images (``--images`` for training and
as many for validation). After each epoch it prints the wall seconds, the CPU
seconds of all its threads and their time waiting for a core
(``/proc/self/task/*/schedstat``), the voluntary and involuntary context
switches, and the system's I/O pressure and this process's block-I/O delay
(``/proc/pressure/io``, ``/proc/self/stat``). An epoch whose wall time grows
at the same CPU seconds, with no run-queue delay, is one whose threads waited
on each other. ``idle`` is the share of the epoch in which none of the
process's threads was running or waiting for a core, sampled every 20 ms from
``/proc/<pid>/task/*/stat`` by a second process (``--sample``). ``--tensor-slices``
feeds ``tf.data`` tensor slices instead of the node's generator (no shuffling: a
timing comparison only); ``--autotune`` turns ``tf.data``'s autotuning back on
(the node has it off: docs/speed.md says why).
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks.project_copy import PROJECT_ROOT


def _sched() -> tuple[float, float]:
    cpu = delay = 0
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/schedstat"):
        try:
            ran, waited, _ = open(path).read().split()
        except (OSError, ValueError):
            continue  # a thread that ended meanwhile
        cpu, delay = cpu + int(ran), delay + int(waited)
    return cpu / 1e9, delay / 1e9


def _io() -> tuple[float, float]:
    some = 0.0
    with open("/proc/pressure/io") as pressure:
        for line in pressure:
            kind, *fields = line.split()
            if kind == "some":
                some = int(dict(f.split("=") for f in fields)["total"]) / 1e6
    block = int(open(f"/proc/{os.getpid()}/stat").read().rsplit(")", 1)[1].split()[39]) / os.sysconf("SC_CLK_TCK")
    return some, block


def _switches() -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_nvcsw, usage.ru_nivcsw


_SAMPLE_S = 0.02


def _sample(pid: int, out: str) -> None:
    """Count samples of ``pid`` and those with no thread running; rewrite ``out`` as it goes."""
    total = idle = 0
    while True:
        threads = running = 0
        for path in glob.glob(f"/proc/{pid}/task/*/stat"):
            try:
                state = open(path).read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue  # a thread that ended meanwhile
            threads, running = threads + 1, running + (state == "R")
        if not threads:
            return
        total, idle = total + 1, idle + (running == 0)
        with open(f"{out}.tmp", "w") as counts:
            counts.write(f"{total} {idle}")
        os.replace(f"{out}.tmp", out)
        time.sleep(_SAMPLE_S)


def _idle_counts(path: str) -> tuple[int, int]:
    try:
        total, idle = open(path).read().split()
    except (OSError, ValueError):
        return 0, 0
    return int(total), int(idle)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="rrelu")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--tensor-slices", action="store_true")
    parser.add_argument("--autotune", action="store_true", help="tf.data autotuning on, as before the node turned it off")
    parser.add_argument("--sample", nargs=2, metavar=("PID", "FILE"), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.sample:
        _sample(int(options.sample[0]), options.sample[1])
        return

    import numpy as np
    import tensorflow as tf

    from activation_compare import training_events
    from activation_compare.datasets.types import LabelledImages
    from activation_compare.identity import ModelKey
    from activation_compare.params import ModelParams, TrainingParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling import input_pipeline, nodes

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (options.images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, options.images).astype(np.uint8)
    data = normalize_images(LabelledImages(images, labels))
    if options.tensor_slices:
        def batches(images, labels, batch_size, *, shuffle_seed=None, first_pass=0):
            return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).prefetch(4)

        input_pipeline.batches = batches
    elif options.autotune:
        input_pipeline.batches = functools.partial(input_pipeline.batches, autotune=True)
    counts = tempfile.NamedTemporaryFile(prefix="epoch-probe-idle-", delete=False).name
    sampler = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.epoch_probe", "--sample", str(os.getpid()), counts],
        cwd=PROJECT_ROOT,  # makes `benchmarks` importable
    )
    last = {}

    def mark() -> None:
        last.update(t=time.perf_counter(), sched=_sched(), io=_io(), switches=_switches(), idle=_idle_counts(counts))

    def on_epoch(event) -> None:
        before = dict(last)
        mark()
        cpu, delay = (a - b for a, b in zip(last["sched"], before["sched"]))
        io_some, block = (a - b for a, b in zip(last["io"], before["io"]))
        voluntary, involuntary = (a - b for a, b in zip(last["switches"], before["switches"]))
        samples, idle = (a - b for a, b in zip(last["idle"], before["idle"]))
        idle_share = f"{idle / samples:.2f}" if samples else "n/a"
        print(f"epoch {event.epoch} wall {last['t'] - before['t']:.2f} s cpu {cpu:.2f} s runq_delay {delay:.2f} s "
              f"switches {voluntary}/{involuntary} io_pressure {io_some:.2f} s block_io {block:.2f} s "
              f"idle {idle_share}", flush=True)

    key = ModelKey(options.activation, 0)
    model = nodes.build_model({"type": options.activation}, ModelParams(precision="bfloat16"), key=key)
    training_events.subscribe(on_epoch)
    mark()
    try:
        nodes.train_model(model, data, data, TrainingParams(epochs=options.epochs, batch_size=100, verbose=0), key=key)
    finally:
        sampler.kill()
        sampler.wait()
        for leftover in (counts, f"{counts}.tmp"):
            if os.path.exists(leftover):
                os.remove(leftover)


if __name__ == "__main__":
    main()
