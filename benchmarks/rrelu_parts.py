"""What each part of the RReLU layer costs, in isolation: ``python -m benchmarks.rrelu_parts``.

Forward + backward of the model's two activations on a batch of 100 (the
first convolution's (100, 30, 30, 32) output and the second's (100, 13, 13,
64): 3.96 M activations), in one ``tf.function``, fastest and median of
``--steps`` calls, for:

* ``relu``: ``tf.nn.relu`` (what ReLU costs outside a convolution);
* ``layer``: the project's ``RReLU`` while training (16-bit draw, fused factor);
* ``no_draw``: the same factor with every slope the mean (not RReLU: the
  cost of everything but the random slopes);
* ``draw``: the slopes alone (added to the input so they are computed).

Then one epoch of validation (10,000 random images, batch 100) of the whole
model, RReLU at inference as ``leaky_relu`` (the layer) and as the select
it replaced, and ReLU. Each variant's order rotates over ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

SHAPES = ((100, 30, 30, 32), (100, 13, 13, 64))


def _step_functions(tf: Any) -> dict[str, Any]:
    from keras import ops

    from activation_compare.layers import RReLU
    from activation_compare.layers import rrelu as rrelu_module

    inputs = [tf.random.normal(shape, seed=i) for i, shape in enumerate(SHAPES)]
    layers = [RReLU(seed=1), RReLU(seed=2)]

    def activation(kind: str, i: int, x: Any) -> Any:
        if kind == "relu":
            return tf.nn.relu(x)
        if kind == "layer":
            return layers[i](x, training=True)
        if kind == "no_draw":
            return rrelu_module._scale_negatives(x, ops.full(x.shape, layers[i].inference_slope))
        return x + layers[i]._draw_slopes(tuple(x.shape))  # "draw"

    def make(kind: str) -> Any:
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                for x in inputs:
                    tape.watch(x)
                loss = tf.add_n([tf.reduce_sum(activation(kind, i, x) ** 2) for i, x in enumerate(inputs)])
            return tape.gradient(loss, inputs)

        return step

    return {kind: make(kind) for kind in ("relu", "layer", "no_draw", "draw")}


def _validation_functions(tf: Any) -> dict[str, Any]:
    import numpy as np
    from keras import ops

    from activation_compare.layers import RReLU
    from activation_compare.models import build_seed_cnn

    images = np.random.default_rng(0).random((10_000, 32, 32, 3), dtype=np.float32)
    data = tf.data.Dataset.from_tensor_slices(images).batch(100).cache()

    def where_at_inference(self, inputs, training=False):
        return ops.where(inputs >= 0, inputs, inputs * ops.cast(self.inference_slope, inputs.dtype))

    class WhereRReLU(RReLU):
        call = where_at_inference

    models = {"relu": build_seed_cnn("relu", seed=0), "rrelu_leaky_relu": build_seed_cnn("rrelu", seed=0)}
    where_model = build_seed_cnn("rrelu", seed=0)
    for name in ("act1", "act2"):
        where_model.get_layer(name).__class__ = WhereRReLU
    models["rrelu_where"] = where_model
    return {name: (lambda m=model: m.predict(data, verbose=0)) for name, model in models.items()}


def _time(functions: dict[str, Any], rounds: int, repeat: int) -> dict[str, dict[str, float]]:
    for function in functions.values():
        function()  # tracing
    times: dict[str, list[float]] = {name: [] for name in functions}
    names = list(functions)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            for _ in range(repeat):
                start = time.perf_counter()
                result = functions[name]()
                if isinstance(result, list):
                    [value.numpy() for value in result]
                times[name].append(time.perf_counter() - start)
    return {name: {"min_ms": 1e3 * min(t), "median_ms": 1e3 * statistics.median(t)} for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rrelu_parts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="calls per variant and round (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="rotations of the variants (default 5)")
    parser.add_argument("--out", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    import os

    import tensorflow as tf

    result = {
        "step_ms": _time(_step_functions(tf), args.rounds, args.steps),
        "validation_epoch_ms": _time(_validation_functions(tf), args.rounds, 1),
        "load_average": os.getloadavg(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for section, rows in result.items():
        if isinstance(rows, dict):
            print(section)
            for name, row in rows.items():
                print(f"  {name:18s} fastest {row['min_ms']:8.1f} ms   median {row['median_ms']:8.1f} ms")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
