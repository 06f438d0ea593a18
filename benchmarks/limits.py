"""How far the training step is from the machine: attainable GFLOP/s against achieved.

    python -m benchmarks.limits          # prints one protocol message with the figures

Attainable: the best of several timed runs of a large matmul (float32, and
bfloat16 where TensorFlow computes it) and of the model's second convolution
at batch 100, in the TensorFlow of the project. Achieved: the model's
arithmetic per epoch (counted below, multiply-add = 2 FLOPs) over the epoch's
seconds.
"""

from __future__ import annotations

import time

from benchmarks.protocol import emit

# Multiply-adds per image of the seed CNN's forward pass.
_CONV1 = 30 * 30 * 32 * (3 * 3 * 3)  # 32x32x3 -> 30x30x32
_CONV2 = 13 * 13 * 64 * (3 * 3 * 32)  # 15x15x32 -> 13x13x64
_DENSE = 5 * 5 * 64 * 10
FORWARD_FLOPS = 2 * (_CONV1 + _CONV2 + _DENSE)
# Backward: gradients of the weights (all layers) and of the inputs (all but the first).
TRAIN_FLOPS = FORWARD_FLOPS + 2 * (2 * (_CONV1 + _CONV2 + _DENSE) - _CONV1)


def epoch_flops(train_images: int, validation_images: int) -> float:
    """FLOPs of one epoch as ``fit`` runs it: training steps, then the validation pass."""
    return train_images * TRAIN_FLOPS + validation_images * FORWARD_FLOPS


def _best_gflops(fn, flops: float, repeats: int = 10) -> float:
    fn()  # warm-up: tracing, oneDNN primitive creation
    best = min(_timed(fn) for _ in range(repeats))
    return flops / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure() -> dict:
    import tensorflow as tf

    out: dict = {}
    n = 2048
    for dtype in ("float32", "bfloat16"):
        a = tf.random.normal((n, n), dtype="float32")
        a = tf.cast(a, dtype)
        matmul = tf.function(lambda a=a: tf.reduce_sum(tf.cast(tf.matmul(a, a), "float32")))
        try:
            out[f"matmul_{dtype}_gflops"] = _best_gflops(lambda: matmul().numpy(), 2.0 * n**3)
        except tf.errors.OpError as error:  # a CPU or build without bfloat16 kernels
            out[f"matmul_{dtype}_gflops"] = None
            out[f"matmul_{dtype}_error"] = str(error).splitlines()[0]
    x = tf.random.normal((100, 15, 15, 32))
    w = tf.random.normal((3, 3, 32, 64))
    conv = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, w, 1, "VALID")))
    out["conv2_float32_gflops"] = _best_gflops(lambda: conv().numpy(), 100 * 2.0 * _CONV2, repeats=20)
    out["forward_flops_per_image"] = FORWARD_FLOPS
    out["train_flops_per_image"] = TRAIN_FLOPS
    return out


if __name__ == "__main__":
    emit({"event": "limits", **measure()})
