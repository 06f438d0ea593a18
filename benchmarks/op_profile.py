"""Where a training epoch's time goes, op by op: TensorFlow's profiler over one epoch of the training node.

    uv run python -m benchmarks.op_profile --activation relu --images 10000 [--precision auto] [--out FILE]
    uv run python -m benchmarks.op_profile --render FILE

The training node (``build_model`` + ``train_model``: the node's optimizer,
batches, validation batch size and steps per execution; no checkpoint, no
tracking; ``model.precision`` as given, ``auto`` by default as in ``kedro run``) trains on ``--images`` synthetic CIFAR-shaped images, validating on
as many. Its first epoch (tracing, kernel set-up) runs untraced; TensorFlow's
profiler records the second. Each op the executor ran is summed by the layer
it belongs to, forward or backward, and its kernel, and reported in
milliseconds per train step (per training batch; the validation ops per
validation batch), with its share of the traced ops' time. The ops are
timed on the thread that ran them, so they add up to more than the epoch's
wall time when the two cores overlap them.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

# "…/StatefulPartitionedCall/[gradient_tape/]seed_cnn_relu_seed0_1/conv2_1/…/Name:OpType": the
# seed CNN's layers (models/seed_cnn.py), each in a scope of its own.
_IN_MODEL = re.compile(r"(?P<backward>gradient_tape/)?[^/]+/(?P<layer>(?:conv|act|pool)\d|flatten|classifier)_\d+/")
# The scopes Keras' optimizers put their update ops in (``optimizer.name``; "adam_1"
# and so on for the later optimizers of a process).
_OPTIMIZER_SCOPE = re.compile(r"(adam|adamw|sgd|rmsprop|loss_scale_optimizer)(_\d+)?")
# The id of the compiled function an op ran in: "…/while/cond/then/_151/…".
_FUNCTION = re.compile(r"/then/_(\d+)/")


def _part(path: str) -> str:
    """The part of the step an op outside the model's layers belongs to, from its scope."""
    scopes = path.lower().split("/")
    if any(_OPTIMIZER_SCOPE.fullmatch(scope) for scope in scopes):
        return "optimizer"
    if "compile_loss" in scopes:
        return "loss"
    if "compile_metrics" in scopes or any(scope.startswith("accuracy") for scope in scopes):
        return "metrics"
    return "other (input cast, step counter, iterator)"


def summarize(events: list[tuple[str, float]], train_steps: int, validation_steps: int) -> dict[str, Any]:
    """Sum traced ``(op name, seconds)`` events into rows per phase, layer part and kernel.

    The training function is the one whose ops include gradients; every
    other op of a compiled function is validation's.
    """
    functions: dict[str, bool] = {}
    for name, _ in events:
        function = _FUNCTION.search(name)
        if function and "gradient_tape/" in name:
            functions[function.group(1)] = True
    totals: collections.Counter[tuple[str, str, str]] = collections.Counter()
    calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for name, seconds in events:
        path, kernel = name.rsplit(":", 1)
        function = _FUNCTION.search(path)
        phase = "train" if function and function.group(1) in functions else "validation"
        layer = _IN_MODEL.search(path)
        if layer:
            part = f"{layer.group('layer')} {'backward' if layer.group('backward') else 'forward'}"
        else:
            part = _part(path)
        totals[phase, part, kernel] += seconds
        calls[phase, part, kernel] += 1
    total = sum(totals.values()) or 1.0
    rows = [
        {
            "phase": phase,
            "part": part,
            "kernel": kernel,
            "ms_per_step": round(1e3 * seconds / (train_steps if phase == "train" else validation_steps), 3),
            "share": round(seconds / total, 4),
            "calls": calls[phase, part, kernel],
        }
        for (phase, part, kernel), seconds in totals.most_common()
    ]
    return {"traced_op_s": round(total, 3), "rows": rows}


def _events(logdir: str) -> list[tuple[str, float]]:
    """The executor's op events of the trace in ``logdir``: ``(name:kernel, seconds)``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    (path,) = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)
    space = xplane_pb2.XSpace()
    space.ParseFromString(Path(path).read_bytes())
    events = []
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue  # the executor's threads; python and tf.data lines hold no ops
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "/" in name:  # "scope/Name:Kernel"; the rest is executor bookkeeping
                    events.append((name, event.duration_ps / 1e12))
    return events


def measure(activation: str, images: int, precision: str, batch_size: int = 100) -> dict[str, Any]:
    """Train two epochs through the training node and profile the second."""
    import numpy as np
    import tensorflow as tf

    from activation_compare import training_events
    from activation_compare.datasets.types import LabelledImages
    from activation_compare.identity import ModelKey
    from activation_compare.models.precision import model_precision
    from activation_compare.params import ModelParams, TrainingParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling import nodes

    rng = np.random.default_rng(0)
    data = normalize_images(LabelledImages(
        rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, images).astype(np.uint8)
    ))
    key = ModelKey(activation, 0)
    model = nodes.build_model({"type": activation}, ModelParams(precision=precision), key=key)
    logdir = tempfile.mkdtemp(prefix="op-profile-")
    traced: dict[str, float] = {}

    def on_epoch(event: Any) -> None:
        if event.epoch == 1:  # the first epoch ended: trace the second
            tf.profiler.experimental.start(logdir)
            traced["start"] = time.perf_counter()
        elif event.epoch == 2:
            traced["wall_s"] = time.perf_counter() - traced["start"]
            tf.profiler.experimental.stop()

    training_events.subscribe(on_epoch)
    try:
        nodes.train_model(model, data, data, TrainingParams(epochs=2, batch_size=batch_size, verbose=0), key=key)
    finally:
        training_events.unsubscribe(on_epoch)
    train_steps = -(-images // batch_size)
    validation_steps = -(-images // nodes._VALIDATION_BATCH_SIZE)
    summary = summarize(_events(logdir), train_steps, validation_steps)
    return {
        "activation": activation, "images": images, "precision": model_precision(model), "batch_size": batch_size,
        "validation_batch_size": nodes._VALIDATION_BATCH_SIZE, "train_steps": train_steps,
        "validation_steps": validation_steps, "epoch_wall_s": round(traced["wall_s"], 3),
        "tensorflow": tf.__version__, **summary,
    }


def render(result: dict[str, Any], top: int = 20) -> str:
    """The profile as Markdown: the largest ``top`` rows, then the total per part of the step."""
    lines = [
        f"{result['activation']}, {result['precision']}, {result['images']} images: the traced epoch took "
        f"{result['epoch_wall_s']:.2f} s wall; its ops {result['traced_op_s']:.2f} s on the executor's threads "
        f"(TensorFlow {result['tensorflow']}).",
        "",
        "| phase | layer / part | kernel | ms per step | share |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"][:top]:
        lines.append(f"| {row['phase']} | {row['part']} | `{row['kernel']}` | {row['ms_per_step']:.2f} | "
                     f"{100 * row['share']:.1f} % |")
    per_part: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in result["rows"]:
        per_part[row["phase"], row["part"]] += row["share"]
    lines += ["", "| phase | layer / part | share |", "|---|---|---|"]
    lines += [f"| {phase} | {part} | {100 * share:.1f} % |" for (phase, part), share in per_part.most_common()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="relu")
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--precision", default="auto", choices=["auto", "bfloat16", "float32"],
                        help="model.precision (default auto: bfloat16 where the CPU has it, as kedro run)")
    parser.add_argument("--top", type=int, default=20, help="rows of the op table (default 20)")
    parser.add_argument("--out", type=Path, help="write the profile as JSON")
    parser.add_argument("--render", type=Path, metavar="FILE", help="print a recorded profile, run nothing")
    options = parser.parse_args(argv)
    if options.render:
        print(render(json.loads(options.render.read_text()), options.top))
        return
    result = measure(options.activation, options.images, options.precision)
    if options.out:
        options.out.write_text(json.dumps(result, indent=1) + "\n")
    print(render(result, options.top))


if __name__ == "__main__":
    main()
