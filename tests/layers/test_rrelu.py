"""RReLU on any Keras backend: values, slope distribution, seeding, dtypes, saving, fit.

Only ``keras`` and ``numpy`` are used here, so this file runs unchanged under
``KERAS_BACKEND=tensorflow``, ``jax`` or ``torch``; TensorFlow-only checks
(gradients with ``tf.GradientTape``, XLA) are in ``test_rrelu_tensorflow.py``.
"""

from __future__ import annotations

import ast
import inspect
import math

import keras
import numpy as np
import pytest
from keras import ops

from activation_compare.layers import RReLU
from activation_compare.layers import random_words as random_words_module
from activation_compare.layers import rrelu as rrelu_module

LOWER, UPPER = 1.0 / 8.0, 1.0 / 3.0
MEAN = 11.0 / 48.0  # (1/8 + 1/3) / 2
STD = (UPPER - LOWER) / math.sqrt(12.0)  # of U(1/8, 1/3)
X = np.array([-4.0, -1.0, 0.0, 2.0], dtype="float32")


def to_numpy(tensor) -> np.ndarray:
    """Any backend's tensor (float16/bfloat16 included, on any device) as float32 numpy."""
    return np.asarray(ops.convert_to_numpy(ops.cast(tensor, "float32")))


def slopes_of(layer: RReLU, n: int = 100_000, dtype: str = "float32") -> np.ndarray:
    """The negative slopes a training-mode call draws: -y on x = -1 (exact)."""
    x = ops.convert_to_tensor(-np.ones((n,), dtype="float32"), dtype=dtype)
    return -to_numpy(layer(x, training=True))


# --- the layer contract, checked the way keras checks its own layers --------


def test_keras_layer_contract():
    """keras' own harness: config round trip, masking, symbolic call, mixed precision."""
    testing = pytest.importorskip("keras.src.testing")
    testing.TestCase().run_layer_test(
        RReLU,
        init_kwargs={"lower": 0.1, "upper": 0.3, "seed": 7},
        input_shape=(2, 3, 4),
        expected_output_shape=(2, 3, 4),
        expected_num_trainable_weights=0,
        expected_num_non_trainable_weights=0,
        expected_num_seed_generators=1,
        supports_masking=True,
        run_training_check=False,  # fit is tested below, without the harness' cost
    )


def test_defaults_are_torch_and_tfa_defaults():
    layer = RReLU()
    assert (layer.lower, layer.upper, layer.seed) == (LOWER, UPPER, None)
    assert layer.inference_slope == pytest.approx(MEAN)
    assert layer.name.startswith("rrelu")


# --- inference ---------------------------------------------------------------


def test_inference_uses_the_mean_slope():
    expected = np.array([-4.0 * MEAN, -MEAN, 0.0, 2.0], dtype="float32")
    layer = RReLU(seed=0)
    np.testing.assert_allclose(to_numpy(layer(X)), expected, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(X, training=False)), expected, rtol=1e-6)
    # Deterministic: no draw at inference.
    np.testing.assert_array_equal(to_numpy(layer(X)), to_numpy(layer(X)))


def test_inference_with_custom_bounds():
    layer = RReLU(lower=0.1, upper=0.3)
    np.testing.assert_allclose(to_numpy(layer(X)), [-0.8, -0.2, 0.0, 2.0], rtol=1e-6)


# --- training ----------------------------------------------------------------


def test_training_slopes_are_uniform_between_the_bounds():
    slopes = slopes_of(RReLU(seed=1))
    assert slopes.min() >= LOWER
    assert slopes.max() <= UPPER
    # 100k draws: the standard error of the mean is ~2e-4, of the std ~1.4e-4.
    assert slopes.mean() == pytest.approx(MEAN, abs=2e-3)
    assert slopes.std() == pytest.approx(STD, abs=2e-3)
    # Spread evenly over the whole interval.
    counts, _ = np.histogram(slopes, bins=10, range=(LOWER, UPPER))
    np.testing.assert_allclose(counts / slopes.size, 0.1, atol=0.01)


@pytest.mark.parametrize("shape", [(200_000,), (99_999,), (50, 40, 51)], ids=["even", "odd", "odd-last-axis"])
def test_training_slopes_pass_a_kolmogorov_smirnov_test(shape):
    # The slopes are 16-bit bin midpoints: U(lower, upper) to within 1/65536 of
    # the range, far below what 2e5 draws can resolve (KS critical value ~3e-3).
    from scipy import stats

    x = ops.convert_to_tensor(-np.ones(shape, dtype="float32"))
    slopes = -to_numpy(RReLU(seed=21)(x, training=True)).ravel()
    assert slopes.size == math.prod(shape)
    assert LOWER < slopes.min() and slopes.max() < UPPER
    assert slopes.mean() == pytest.approx(MEAN, abs=4 * STD / math.sqrt(slopes.size))
    assert slopes.std() == pytest.approx(STD, rel=0.01)
    result = stats.kstest(slopes, stats.uniform(loc=LOWER, scale=UPPER - LOWER).cdf)
    assert result.pvalue > 1e-3, result


def test_training_slopes_are_independent_between_neighbours_and_steps():
    layer = RReLU(seed=22)
    x = ops.convert_to_tensor(-np.ones((100, 8, 8, 32), dtype="float32"))
    first = -to_numpy(layer(x, training=True))
    second = -to_numpy(layer(x, training=True))
    n = first.size
    bound = 5.0 / math.sqrt(n)  # 5 standard errors of a correlation of independent draws
    # Neighbours along the last axis share one 32-bit draw; along the others they do not.
    for axis in range(1, 4):
        a = np.moveaxis(first, axis, 0)
        assert abs(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]) < 2 * bound
    assert abs(np.corrcoef(first.ravel(), second.ravel())[0, 1]) < bound
    # Two slopes of one element in two steps agree only as often as chance allows.
    assert np.mean(first == second) < 1e-3


def test_inference_slope_is_eleven_48ths():
    assert RReLU().inference_slope == pytest.approx(11.0 / 48.0, abs=1e-15)
    np.testing.assert_allclose(to_numpy(RReLU()(-np.ones((7,), "float32"))), -11.0 / 48.0, rtol=1e-7)


def test_training_keeps_non_negative_inputs():
    x = np.array([[0.0, 0.5, 3.0, 1e4]], dtype="float32")
    np.testing.assert_array_equal(to_numpy(RReLU(seed=0)(x, training=True)), x)


def test_training_slopes_differ_per_element_and_per_call():
    layer = RReLU(seed=2)
    first = slopes_of(layer, n=1000)
    second = slopes_of(layer, n=1000)
    assert np.unique(first).size > 990
    assert not np.allclose(first, second)
    # Independent draws: E|a - b| = (upper - lower) / 3 ~ 0.069.
    assert np.abs(first - second).mean() == pytest.approx((UPPER - LOWER) / 3, abs=0.01)


def test_same_seed_draws_the_same_slopes():
    a, b, c = RReLU(seed=3), RReLU(seed=3), RReLU(seed=4)
    a1, a2 = slopes_of(a, n=500), slopes_of(a, n=500)
    b1, b2 = slopes_of(b, n=500), slopes_of(b, n=500)
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.allclose(a1, slopes_of(c, n=500))


def test_global_seed_makes_unseeded_layers_reproducible():
    keras.utils.set_random_seed(11)
    first = slopes_of(RReLU(), n=200)
    keras.utils.set_random_seed(11)
    np.testing.assert_array_equal(first, slopes_of(RReLU(), n=200))


def test_equal_bounds_degenerate_to_leaky_relu():
    layer = RReLU(lower=0.2, upper=0.2, seed=0)
    expected = to_numpy(keras.layers.LeakyReLU(negative_slope=0.2)(X))
    np.testing.assert_allclose(to_numpy(layer(X, training=True)), expected, rtol=1e-6)
    np.testing.assert_allclose(to_numpy(layer(X, training=False)), expected, rtol=1e-6)


def test_zero_bounds_degenerate_to_relu():
    layer = RReLU(lower=0.0, upper=0.0, seed=0)
    np.testing.assert_array_equal(to_numpy(layer(X, training=True)), [0.0, 0.0, 0.0, 2.0])


# --- shapes, masks, dtypes ------------------------------------------------------


def test_output_shape_and_symbolic_call():
    layer = RReLU()
    assert layer.compute_output_shape((None, 5, 7, 3)) == (None, 5, 7, 3)
    symbolic = layer(keras.Input((5, 7, 3)))
    assert tuple(symbolic.shape) == (None, 5, 7, 3)
    assert layer(np.zeros((2, 5, 7, 3), dtype="float32"), training=True).shape == (2, 5, 7, 3)


def test_mask_passes_through():
    layer = RReLU()
    x = np.array([[[1.0], [-2.0], [0.0]]], dtype="float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_array_equal(layer.compute_mask(x, mask), mask)
    masked = keras.layers.Masking(mask_value=0.0)(keras.Input((3, 1)))
    assert RReLU()(masked)._keras_mask is not None  # the mask reaches the next layer


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_keeps_dtype_and_range(dtype):
    layer = RReLU(seed=6, dtype=dtype)
    x = ops.convert_to_tensor(X, dtype=dtype)
    inference, training = layer(x), layer(x, training=True)
    assert keras.backend.standardize_dtype(inference.dtype) == dtype
    assert keras.backend.standardize_dtype(training.dtype) == dtype
    # The mean slope rounded to the dtype, times exact powers of two.
    mean = to_numpy(ops.cast(MEAN, dtype))
    np.testing.assert_array_equal(to_numpy(inference), [-4.0 * mean, -mean, 0.0, 2.0])
    slopes = slopes_of(layer, n=20_000, dtype=dtype)
    eps = 2.0**-10 if dtype == "float16" else 2.0**-7  # the dtype's rounding
    assert np.all(np.isfinite(slopes))
    assert slopes.min() >= LOWER - eps
    assert slopes.max() <= UPPER + eps
    assert slopes.mean() == pytest.approx(MEAN, abs=5e-3)
    assert np.unique(slopes).size > 20  # random, not one value


def test_mixed_precision_policy_computes_in_float16():
    layer = RReLU(seed=0, dtype="mixed_float16")
    assert keras.backend.standardize_dtype(layer(X, training=True).dtype) == "float16"
    # Without autocasting the layer follows its input's dtype.
    raw = RReLU(seed=0, autocast=False)
    x = ops.convert_to_tensor(X, dtype="float16")
    assert keras.backend.standardize_dtype(raw(x, training=True).dtype) == "float16"


# --- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "upper"),
    [(-0.1, 0.3), (0.4, 0.3), (0.1, 1.0), (0.1, 1.5), (-1.0, -0.5), (float("nan"), 0.3)],
)
def test_invalid_bounds_raise_with_the_values(lower, upper):
    with pytest.raises(ValueError, match=rf"lower={lower!r}, upper={upper!r}"):
        RReLU(lower=lower, upper=upper)


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"lower": "small"}, "lower='small'"),
        ({"upper": None}, "upper=None"),
        ({"lower": True}, "lower=True"),
        ({"seed": 1.5}, "seed=1.5"),
        ({"seed": True}, "seed=True"),
    ],
)
def test_non_numeric_arguments_raise(kwargs, quoted):
    with pytest.raises(ValueError, match=quoted):
        RReLU(**kwargs)


def test_numpy_arguments_become_python_numbers():
    layer = RReLU(lower=np.float32(0.25), upper=np.float64(0.5), seed=np.int64(3))
    config = layer.get_config()
    assert (config["lower"], config["upper"], config["seed"]) == (0.25, 0.5, 3)
    assert type(config["seed"]) is int


# --- serialization ---------------------------------------------------------------


def test_config_round_trip():
    layer = RReLU(lower=0.05, upper=0.4, seed=9, name="act")
    config = layer.get_config()
    assert {k: config[k] for k in ("lower", "upper", "seed", "name")} == {
        "lower": 0.05,
        "upper": 0.4,
        "seed": 9,
        "name": "act",
    }
    clone = RReLU.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(slopes_of(clone, n=100), slopes_of(layer, n=100))


def test_registered_for_safe_loading():
    assert keras.saving.get_registered_name(RReLU) == "activation_compare>RReLU"
    assert keras.saving.get_registered_object("activation_compare>RReLU") is RReLU


# Keras' own numpy-2 warning when it saves a SeedGenerator's state (Dropout's too).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_saved_model_loads_in_safe_mode(tmp_path):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(6, name="dense")(inputs)
    outputs = RReLU(lower=0.1, upper=0.2, seed=4, name="rrelu")(hidden)
    model = keras.Model(inputs, outputs)
    path = tmp_path / "rrelu.keras"
    model.save(path)

    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.get_layer("rrelu"), RReLU)
    assert loaded.get_layer("rrelu").get_config() == model.get_layer("rrelu").get_config()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# --- inside a model trained with fit ------------------------------------------------


class ProbeRReLU(RReLU):
    """Records the ``training`` flag each call (or trace) of ``call`` receives."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen: list[object] = []

    def call(self, inputs, training=False):
        self.seen.append(training)
        return super().call(inputs, training=training)


def fit_probe_model(jit_compile="auto", n: int = 1000):
    """Train ``Input -> ProbeRReLU`` on x = -1, target 0; returns what fit and predict saw."""
    inputs = keras.Input((n,))
    probe = ProbeRReLU(seed=10)
    model = keras.Model(inputs, probe(inputs))
    model.compile(loss="mse", optimizer="sgd", jit_compile=jit_compile)
    x = -np.ones((20, n), dtype="float32")
    y = np.zeros_like(x)
    state_before = np.array(probe.seed_generator.state.numpy())

    # Batches of 8, 8 and 4: the last one has another shape.
    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    fit_flags, probe.seen = probe.seen, []
    state_after = np.array(probe.seed_generator.state.numpy())

    loss = model.evaluate(x, y, batch_size=8, verbose=0)
    predictions = [model.predict(x, batch_size=8, verbose=0) for _ in range(2)]
    return {
        "fit_flags": fit_flags,
        "fit_loss": history.history["loss"][-1],
        "draws": int(state_after[1] - state_before[1]),
        "inference_flags": probe.seen,
        "evaluate_loss": loss,
        "predictions": predictions,
    }


@pytest.mark.filterwarnings("ignore:The model does not have any trainable weights")
@pytest.mark.parametrize("jit_compile", ["auto", True])
def test_fit_trains_with_random_slopes_and_predict_uses_the_mean(jit_compile):
    if jit_compile is True and keras.backend.backend() == "torch":
        pytest.skip("jit_compile=True means torch.compile on the torch backend")
    seen = fit_probe_model(jit_compile)  # True: XLA on TensorFlow, jax.jit on JAX
    # Every train step calls the layer with training=True and draws once: three
    # batches, three draws. (Before the first step the torch backend also makes
    # a shape-only call with training=False to build the model; it draws nothing.)
    assert True in seen["fit_flags"]
    if keras.backend.backend() == "tensorflow":
        assert all(flag is True for flag in seen["fit_flags"])
    assert seen["draws"] == 3
    # With x = -1 and target 0 the loss is E[a^2] = MEAN^2 + STD^2 with random
    # slopes and MEAN^2 with the mean slope: 20k draws separate them by > 10 sigma.
    assert seen["fit_loss"] == pytest.approx(MEAN**2 + STD**2, abs=1e-3)

    assert seen["inference_flags"] and all(not flag for flag in seen["inference_flags"])
    assert seen["evaluate_loss"] == pytest.approx(MEAN**2, rel=1e-5)
    first, second = seen["predictions"]
    np.testing.assert_allclose(first, -MEAN, rtol=1e-6)
    np.testing.assert_array_equal(first, second)


# --- backend independence ---------------------------------------------------------------


def _imports(module, *, top_level_only: bool = False) -> set[str]:
    """The modules ``module`` imports (only at its top level, if asked)."""
    tree = ast.parse(inspect.getsource(module))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    return {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names} | {
        node.module for node in nodes if isinstance(node, ast.ImportFrom) and node.module
    }


def test_uses_only_keras_apis():
    """No backend import: the layer must run on TensorFlow, JAX and PyTorch alike."""
    assert _imports(rrelu_module) <= {
        "__future__", "keras", "operator", "typing", "activation_compare.layers.random_words",
    }
    # The random words import TensorFlow inside the draw, on TensorFlow only.
    assert _imports(random_words_module, top_level_only=True) == {"__future__", "keras", "typing"}
    assert _imports(random_words_module) == {"__future__", "keras", "typing", "tensorflow"}
