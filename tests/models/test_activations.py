"""The activation registry: every spec type builds the right layer with its options."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from custom_layer import custom_entry, write_layer_package

from activation_compare import params
from activation_compare.layers import RReLU
from activation_compare.models import ACTIVATION_TYPES, activation_layer, parse_activation
from activation_compare.params import (
    ELUSpec,
    KerasSpec,
    LeakyReLUSpec,
    PReLUSpec,
    ReLUSpec,
    RReLUSpec,
)

EXPECTED_CLASS = {
    "relu": keras.layers.ReLU,
    "rrelu": RReLU,
    "leaky_relu": keras.layers.LeakyReLU,
    "prelu": keras.layers.PReLU,
    "elu": keras.layers.ELU,
    "keras": keras.layers.Activation,
    "custom": "userlayers_models.layers.Swish",
}
# One entry of each type (the types with required options need more than their name).
ENTRIES = {kind: kind for kind in params.ACTIVATION_TYPES} | {
    "keras": {"type": "keras", "name": "gelu"},
    "custom": custom_entry("userlayers_models"),
}
X = np.array([[[[-2.0, 1.0], [0.0, -0.5]]]], dtype="float32")  # (1, 1, 2, 2): NHWC


@pytest.fixture(scope="module", autouse=True)
def _user_layer_package(tmp_path_factory):
    """The custom entry's package, importable for this module's tests."""
    import sys

    folder = tmp_path_factory.mktemp("user_code")
    write_layer_package(folder, "userlayers_models")
    sys.path.insert(0, str(folder))
    yield
    sys.path.remove(str(folder))


def test_types_are_the_params_types():
    assert ACTIVATION_TYPES == params.ACTIVATION_TYPES
    assert set(EXPECTED_CLASS) == set(ACTIVATION_TYPES) == set(ENTRIES)


@pytest.mark.parametrize("type_name", params.ACTIVATION_TYPES)
def test_every_type_builds_and_runs(type_name):
    layer = activation_layer(parse_activation(ENTRIES[type_name]), name=f"act_{type_name}", seed=0)
    expected = EXPECTED_CLASS[type_name]
    if isinstance(expected, str):
        assert f"{type(layer).__module__}.{type(layer).__qualname__}" == expected
    else:
        assert type(layer) is expected
    assert layer.name == f"act_{type_name}"
    y = np.asarray(layer(X))
    assert y.shape == X.shape
    if type_name in ("keras", "custom"):  # GELU and Swish: smooth, below x above 0
        assert np.all(y[X > 0] < X[X > 0]) and np.all((y[X < 0] < 0) & (y[X < 0] > X[X < 0]))
        return
    np.testing.assert_array_equal(y[X >= 0], X[X >= 0])  # the built-in five are the identity above 0
    if type_name == "relu":
        np.testing.assert_array_equal(y[X < 0], 0.0)
    else:  # the others let a little of the negative part through
        assert np.all((y[X < 0] < 0) & (y[X < 0] > X[X < 0]))


@pytest.mark.parametrize("name", ["gelu", "silu", "mish", "selu", "tanh"])
def test_a_keras_activation_by_name_is_kerass_own_function(name):
    layer = activation_layer(KerasSpec(name=name), name="act")
    assert layer.get_config()["activation"] == name
    np.testing.assert_allclose(layer(X), keras.activations.get(name)(X), rtol=1e-6)


def test_a_custom_layer_gets_its_arguments_and_the_models_name_and_dtype():
    layer = activation_layer(custom_entry("userlayers_models", beta=2.0), name="act1", dtype="mixed_bfloat16")
    assert (layer.name, layer.beta, layer.dtype_policy.name) == ("act1", 2.0, "mixed_bfloat16")
    np.testing.assert_allclose(np.asarray(layer(X), dtype="float32"), X / (1 + np.exp(-2.0 * X)), rtol=1e-2)


def test_relu_zeroes_negatives():
    np.testing.assert_array_equal(activation_layer(ReLUSpec())(X), np.maximum(X, 0.0))


@pytest.mark.parametrize("slope", [0.01, 0.18])
def test_leaky_relu_slope_reaches_the_layer(slope):
    layer = activation_layer(LeakyReLUSpec(slope=slope))
    assert layer.get_config()["negative_slope"] == slope
    np.testing.assert_allclose(layer(X), np.where(X >= 0, X, slope * X), rtol=1e-6)


def test_leaky_relu_dict_slope():
    layer = activation_layer({"type": "leaky_relu", "slope": 0.18})
    assert layer.get_config()["negative_slope"] == 0.18


def test_rrelu_bounds_and_seed_reach_the_layer():
    layer = activation_layer(RReLUSpec(lower=0.1, upper=0.3), seed=5)
    config = layer.get_config()
    assert (config["lower"], config["upper"], config["seed"]) == (0.1, 0.3, 5)
    defaults = activation_layer(RReLUSpec()).get_config()
    assert (defaults["lower"], defaults["upper"]) == (1 / 8, 1 / 3)


def test_prelu_starts_at_initial_slope_with_one_slope_per_channel():
    layer = activation_layer(PReLUSpec(initial_slope=0.1))
    config = layer.get_config()
    assert config["shared_axes"] == [1, 2]
    y = layer(np.zeros((2, 5, 5, 3), dtype="float32") - 1.0)
    assert tuple(layer.alpha.shape) == (1, 1, 3)
    np.testing.assert_allclose(layer.alpha.numpy(), 0.1)
    np.testing.assert_allclose(y, -0.1, rtol=1e-6)
    assert len(layer.trainable_weights) == 1


def test_elu_alpha_reaches_the_layer():
    layer = activation_layer(ELUSpec(alpha=0.5))
    assert layer.alpha == 0.5
    np.testing.assert_allclose(layer(X), np.where(X >= 0, X, 0.5 * np.expm1(X)), rtol=1e-6)


def test_each_call_builds_a_new_layer():
    spec = ReLUSpec()
    assert activation_layer(spec) is not activation_layer(spec)


# --- parse_activation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("relu", ReLUSpec()),
        ("rrelu", RReLUSpec(lower=1 / 8, upper=1 / 3)),
        ({"type": "rrelu", "lower": 0.2, "upper": 0.25}, RReLUSpec(lower=0.2, upper=0.25)),
        ({"type": "leaky_relu", "slope": 0.18}, LeakyReLUSpec(slope=0.18)),
        ({"type": "prelu"}, PReLUSpec(initial_slope=0.25)),
        ({"type": "elu", "alpha": 2.0}, ELUSpec(alpha=2.0)),
    ],
)
def test_parse_names_and_dicts(raw, expected):
    assert parse_activation(raw) == expected


def test_parse_returns_specs_unchanged():
    spec = LeakyReLUSpec(slope=0.18)
    assert parse_activation(spec) is spec


@pytest.mark.parametrize("raw", ["swish", "ReLU", {"type": "gelu"}, {"type": 3}])
def test_unknown_type_lists_the_valid_names(raw):
    with pytest.raises(ValueError, match="Unknown activation type") as error:
        parse_activation(raw)
    for name in params.ACTIVATION_TYPES:
        assert name in str(error.value)


def test_dict_without_type_lists_the_valid_names():
    with pytest.raises(ValueError, match="no 'type'.*relu, rrelu, leaky_relu, prelu, elu, keras, custom"):
        parse_activation({"slope": 0.1})


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "rrelu", "lower": 0.5, "upper": 0.1},
        {"type": "leaky_relu", "slope": -0.1},
        {"type": "elu", "alpha": 0.0},
        {"type": "relu", "slope": 0.1},  # an option the type does not have
        {"type": "keras"},  # no name
        {"type": "keras", "name": "gelux"},
        {"type": "custom", "layer": "userlayers.layers.Swish"},  # no ':'
        {"type": "custom", "layer": "userlayers.layers:Swish", "name": "x"},  # set by the model
    ],
)
def test_invalid_options_raise_value_error(raw):
    with pytest.raises(ValueError):
        parse_activation(raw)


def test_non_spec_input_is_a_type_error():
    with pytest.raises(TypeError, match="type name or a dict"):
        parse_activation(42)
