"""The original experiment's CNN: architecture, parameter count, seeding, training flag."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from activation_compare.layers import RReLU
from activation_compare.models import SEED_CNN_LAYERS, build_seed_cnn, parse_activation
from activation_compare.params import KerasSpec, PReLUSpec
from activation_compare.params.activations import ACTIVATION_SPECS, DEFAULT_ACTIVATION_TYPES

ORIGINAL_PARAMS = 42_442  # 896 + 18,496 + 23,050
PRELU_SLOPES = 32 + 64


def trainable_count(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def images(n: int = 4, seed: int = 0, shape=(32, 32, 3)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, *shape)).astype("float32")


@pytest.fixture(scope="module")
def rrelu_model() -> keras.Model:
    return build_seed_cnn(parse_activation("rrelu"), seed=0)


@pytest.mark.parametrize("type_name", ["relu", "rrelu", "leaky_relu", "elu"])
def test_parameter_count_is_the_originals(type_name):
    model = build_seed_cnn(parse_activation(type_name), seed=0)
    assert trainable_count(model) == ORIGINAL_PARAMS
    assert model.count_params() == ORIGINAL_PARAMS
    assert not model.non_trainable_weights


def test_prelu_adds_one_slope_per_channel():
    model = build_seed_cnn(PReLUSpec(), seed=0)
    assert trainable_count(model) == ORIGINAL_PARAMS + PRELU_SLOPES
    assert tuple(model.get_layer("act1").alpha.shape) == (1, 1, 32)
    assert tuple(model.get_layer("act2").alpha.shape) == (1, 1, 64)


def test_layer_order_and_shapes(rrelu_model):
    assert [layer.name for layer in rrelu_model.layers[1:]] == list(SEED_CNN_LAYERS)
    shapes = {layer.name: tuple(layer.output.shape) for layer in rrelu_model.layers}
    assert shapes == {
        "images": (None, 32, 32, 3),
        "conv1": (None, 30, 30, 32),
        "act1": (None, 30, 30, 32),
        "pool1": (None, 15, 15, 32),
        "conv2": (None, 13, 13, 64),
        "act2": (None, 13, 13, 64),
        "pool2": (None, 6, 6, 64),
        "flatten": (None, 2304),
        "classifier": (None, 10),
    }
    conv1, conv2 = rrelu_model.get_layer("conv1"), rrelu_model.get_layer("conv2")
    assert (conv1.filters, conv1.kernel_size, conv1.padding) == (32, (3, 3), "valid")
    assert (conv2.filters, conv2.kernel_size, conv2.padding) == (64, (3, 3), "valid")
    assert conv1.activation is keras.activations.linear  # the activation is its own layer
    assert rrelu_model.get_layer("pool1").pool_size == (2, 2)
    assert rrelu_model.get_layer("classifier").activation is keras.activations.softmax
    assert isinstance(rrelu_model.get_layer("act1"), RReLU)
    assert isinstance(rrelu_model.get_layer("act2"), RReLU)


def _activation_before_pooling(model: keras.Model) -> keras.Model:
    """``model``'s own layers wired in the original's order: conv, activation, pool."""
    layer = model.get_layer
    x = inputs = keras.Input(shape=(32, 32, 3))
    for block in (1, 2):
        x = layer(f"pool{block}")(layer(f"act{block}")(layer(f"conv{block}")(x)))
    return keras.Model(inputs, layer("classifier")(layer("flatten")(x)))


def test_relu_pools_first_and_the_others_do_not():
    relu = build_seed_cnn("relu", seed=0)
    assert [layer.name for layer in relu.layers[1:7]] == ["conv1", "pool1", "act1", "conv2", "pool2", "act2"]
    assert tuple(relu.get_layer("act1").output.shape) == (None, 15, 15, 32)
    # Only ReLU is exact both ways (params/activations.py says why not leaky_relu).
    assert [name for name, spec in ACTIVATION_SPECS.items() if spec.commutes_with_max_pool] == ["relu"]


@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16"])
def test_relu_after_pooling_trains_to_the_same_weights_bit_for_bit(dtype):
    """Pooling first changes no number: the same weights after training, the same predictions."""
    x = np.random.default_rng(1).uniform(0.0, 1.0, size=(200, 32, 32, 3)).astype("float32")
    y = np.random.default_rng(2).integers(0, 10, 200)
    trained = []
    for wiring in (lambda model: model, _activation_before_pooling):
        keras.utils.set_random_seed(0)
        model = wiring(build_seed_cnn("relu", seed=0, dtype=dtype))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=50, epochs=2, shuffle=False, verbose=0)
        trained.append(model)
    pools_first, original = trained
    assert pools_first.layers.index(pools_first.get_layer("pool1")) < pools_first.layers.index(pools_first.get_layer("act1"))
    assert original.layers.index(original.get_layer("act1")) < original.layers.index(original.get_layer("pool1"))
    for name in ("conv1", "conv2", "classifier"):
        for ours, theirs in zip(pools_first.get_layer(name).weights, original.get_layer(name).weights, strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
    np.testing.assert_array_equal(pools_first.predict(x, verbose=0), original.predict(x, verbose=0))


def test_name_and_uncompiled(rrelu_model):
    assert rrelu_model.name == "seed_cnn_rrelu"
    assert build_seed_cnn("relu", name="mine").name == "mine"
    assert not rrelu_model.compiled
    assert getattr(rrelu_model, "optimizer", None) is None


def test_softmax_output(rrelu_model):
    assert rrelu_model.output_shape == (None, 10)
    probabilities = rrelu_model.predict(images(), verbose=0)
    assert probabilities.shape == (4, 10)
    assert np.all(probabilities >= 0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_training_flag_reaches_rrelu(rrelu_model):
    x = images(2)
    inference = [rrelu_model(x, training=False).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*inference)
    training = [rrelu_model(x, training=True).numpy() for _ in range(2)]
    assert not np.allclose(training[0], training[1])
    assert not np.allclose(training[0], inference[0])


def test_relu_model_is_deterministic_in_training_mode():
    model = build_seed_cnn("relu", seed=0)
    x = images(2)
    np.testing.assert_array_equal(model(x, training=True), model(x, training=False))


def test_same_seed_same_model_and_slopes():
    a = build_seed_cnn("rrelu", seed=3)
    b = build_seed_cnn("rrelu", seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    x = images(2)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))


def test_different_seeds_differ():
    a = build_seed_cnn("rrelu", seed=3)
    b = build_seed_cnn("rrelu", seed=4)
    kernel_a, kernel_b = (m.get_layer("conv1").kernel.numpy() for m in (a, b))
    assert not np.allclose(kernel_a, kernel_b)
    assert a.get_layer("act1").seed != b.get_layer("act1").seed


def test_each_component_has_its_own_seed(rrelu_model):
    from activation_compare.models.seed_cnn import _derived_seeds

    seeds = _derived_seeds(0)
    assert set(seeds) == {"conv1", "conv2", "classifier", "act1", "act2"}
    assert len(set(seeds.values())) == len(seeds)
    assert all(0 <= s < 2**31 for s in seeds.values())
    assert _derived_seeds(0) == seeds != _derived_seeds(1)
    assert rrelu_model.get_layer("act1").seed == seeds["act1"]
    assert rrelu_model.get_layer("act2").seed == seeds["act2"]
    assert _derived_seeds(None) == dict.fromkeys(seeds)


def test_unseeded_builds_follow_the_global_seed():
    keras.utils.set_random_seed(1)
    a = build_seed_cnn("rrelu")
    keras.utils.set_random_seed(1)
    b = build_seed_cnn("rrelu")
    kernel_a, kernel_b = (m.get_layer("conv1").kernel.numpy() for m in (a, b))
    np.testing.assert_array_equal(kernel_a, kernel_b)
    assert a.get_layer("act1").seed is None


@pytest.mark.parametrize("type_name", DEFAULT_ACTIVATION_TYPES)
def test_every_activation_builds(type_name):
    model = build_seed_cnn(type_name, seed=0, input_shape=(16, 16, 1), num_classes=3)
    assert model.output_shape == (None, 3)
    assert model.predict(images(2, shape=(16, 16, 1)), verbose=0).shape == (2, 3)


@pytest.mark.parametrize("name", ["gelu", "silu", "mish"])
def test_a_keras_activation_keeps_the_originals_parameter_count(name):
    model = build_seed_cnn(KerasSpec(name=name), seed=0)
    assert trainable_count(model) == ORIGINAL_PARAMS
    assert model.get_layer("act1").get_config()["activation"] == name
    assert model.name == "seed_cnn_keras"


def test_accepts_a_dict_spec():
    model = build_seed_cnn({"type": "leaky_relu", "slope": 0.18}, seed=0)
    assert model.get_layer("act1").get_config()["negative_slope"] == 0.18
    assert model.get_layer("act2").get_config()["negative_slope"] == 0.18


def test_fit_as_the_training_node_does():
    """Adam + sparse cross-entropy, a partial last batch (XLA is tested in tests/layers)."""
    model = build_seed_cnn("rrelu", seed=0, input_shape=(12, 12, 1), num_classes=3)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    x = images(7, shape=(12, 12, 1))
    y = np.array([0, 1, 2, 0, 1, 2, 0])
    before = model.get_layer("act1").seed_generator.state.numpy().copy()
    history = model.fit(x, y, batch_size=3, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    # Three steps per epoch, each drawing fresh slopes in both RReLU layers.
    after = model.get_layer("act1").seed_generator.state.numpy()
    assert after[1] - before[1] == 6
    predicted = model.predict(x, batch_size=3, verbose=0)
    np.testing.assert_array_equal(predicted, model.predict(x, batch_size=3, verbose=0))
