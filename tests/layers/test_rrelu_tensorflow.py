"""RReLU under TensorFlow: gradients, tf.function and XLA (``jit_compile=True``).

``fit`` with ``jit_compile=True`` is in ``test_rrelu.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
if keras.backend.backend() != "tensorflow":
    pytest.skip("TensorFlow backend only", allow_module_level=True)

from activation_compare.layers import RReLU  # noqa: E402

LOWER, UPPER = 1.0 / 8.0, 1.0 / 3.0
MEAN = 11.0 / 48.0


def test_gradient_is_the_slope_used():
    x = tf.Variable(np.linspace(-3.0, 3.0, 64, dtype="float32").reshape(8, 8) + 0.01)
    layer = RReLU(seed=5)
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
    grad = tape.gradient(y, x).numpy()
    x_np, y_np = x.numpy(), y.numpy()
    negative = x_np < 0
    assert negative.any() and (~negative).any()
    np.testing.assert_allclose(grad[negative], y_np[negative] / x_np[negative], rtol=1e-5)
    assert np.all((grad[negative] >= LOWER) & (grad[negative] <= UPPER))
    np.testing.assert_array_equal(grad[~negative], 1.0)


def test_gradient_at_inference_is_the_mean_slope():
    x = tf.Variable([-2.0, -0.5, 1.0, 3.0])
    with tf.GradientTape() as tape:
        y = RReLU()(x)
    np.testing.assert_allclose(tape.gradient(y, x), [MEAN, MEAN, 1.0, 1.0], rtol=1e-6)


def test_slopes_come_from_full_range_words_not_a_reduced_range():
    """TensorFlow's full-range draw, not randint's modulo (layers/random_words.py)."""
    layer = RReLU(seed=3)
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        tf.TensorSpec((2, 4, 4, 8), tf.float32)
    ).graph
    ops_ = {op.type for op in graph.get_operations()}
    assert "StatelessRandomUniformFullIntV2" in ops_
    assert "StatelessRandomUniformIntV2" not in ops_


def test_words_are_randints_with_the_top_bit_flipped():
    """The same generator and seed as keras.random.randint: only the range's offset differs."""
    from activation_compare.layers.random_words import random_words

    words = random_words((1000,), keras.random.SeedGenerator(7)).numpy()
    randints = keras.random.randint((1000,), -(2**31), 2**31 - 1, dtype="int32", seed=keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(words ^ np.int32(-(2**31)), keras.ops.convert_to_numpy(randints))


def test_seed_state_advances_inside_a_tf_function():
    layer = RReLU(seed=12)
    before = layer.seed_generator.state.numpy().copy()

    @tf.function
    def step(x):
        return layer(x, training=True)

    x = tf.constant(-np.ones((3, 3), dtype="float32"))
    first, second = step(x).numpy(), step(x).numpy()
    assert not np.array_equal(first, second)
    assert layer.seed_generator.state.numpy()[1] == before[1] + 2


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_xla_training_call_draws_fresh_slopes(dtype):
    layer = RReLU(seed=8, dtype=dtype)

    @tf.function(jit_compile=True)
    def train_call(x):
        return layer(x, training=True)

    @tf.function(jit_compile=True)
    def infer_call(x):
        return layer(x, training=False)

    x = tf.constant(-np.ones((4, 256)), dtype=dtype)
    first, second = train_call(x), train_call(x)
    assert first.dtype == tf.as_dtype(dtype)
    first, second = (-tf.cast(t, "float32").numpy() for t in (first, second))
    eps = 0.0 if dtype == "float32" else 2.0**-7
    for slopes in (first, second):
        assert slopes.min() >= LOWER - eps and slopes.max() <= UPPER + eps
    assert not np.allclose(first, second)
    expected = tf.cast(tf.cast(MEAN, dtype), "float32").numpy()
    np.testing.assert_array_equal(-tf.cast(infer_call(x), "float32").numpy(), expected)
