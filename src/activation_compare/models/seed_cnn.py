"""The original experiment's small CNN, with a pluggable activation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from activation_compare.models.activations import activation_layer, parse_activation
from activation_compare.params import Activation

__all__ = ["SEED_CNN_LAYERS", "build_seed_cnn"]

# The model's layers after its input, in order (with an activation that
# commutes with max-pooling, each ``pool`` comes before its ``act``).
SEED_CNN_LAYERS = ("conv1", "act1", "pool1", "conv2", "act2", "pool2", "flatten", "classifier")

# One seed per seeded component, in this order, all derived from the model seed.
_SEEDED = ("conv1", "conv2", "classifier", "act1", "act2")


def _derived_seeds(seed: int | None) -> dict[str, int | None]:
    """Independent seeds for the kernels and RReLU layers, from the model seed.

    Each component needs its own seed: Keras' stateless draws with equal integer
    seeds repeat the same random stream, which would correlate, say, the first
    kernel's initial weights with the first RReLU layer's first slopes.
    ``numpy.random.SeedSequence`` spreads one seed into well-mixed words; they
    are kept below 2**31 so every backend accepts them.
    """
    if seed is None:
        return dict.fromkeys(_SEEDED)
    words = np.random.SeedSequence(seed).generate_state(len(_SEEDED))
    return {name: int(word) & 0x7FFFFFFF for name, word in zip(_SEEDED, words)}


def build_seed_cnn(
    activation: Activation | str | Mapping[str, Any],
    *,
    seed: int | None = None,
    input_shape: tuple[int, int, int] = (32, 32, 3),
    num_classes: int = 10,
    name: str | None = None,
    dtype: str = "float32",
) -> keras.Model:
    """The CNN of the original experiment, with ``activation`` after each convolution.

    ::

        Input(32, 32, 3)
        conv1  Conv2D(32, 3x3, valid)    -> (30, 30, 32)     896 weights
        act1   activation
        pool1  MaxPooling2D(2x2)         -> (15, 15, 32)
        conv2  Conv2D(64, 3x3, valid)    -> (13, 13, 64)  18,496 weights
        act2   activation
        pool2  MaxPooling2D(2x2)         -> (6, 6, 64)
        flatten                          -> (2304,)
        classifier Dense(10, softmax)                     23,050 weights

    With an activation that commutes with max-pooling (``relu``: see
    :attr:`~activation_compare.params.activations.Activation.commutes_with_max_pool`)
    each pooling comes before its activation instead (conv1, pool1, act1, ...):
    the same outputs and gradients, bit for bit, with the activation over a
    quarter of the elements.

    42,442 trainable weights with ``relu``, ``rrelu``, ``leaky_relu``, ``elu`` and any ``keras`` activation;
    ``prelu`` adds one slope per channel (32 + 64). The activations are layers
    of their own, so the ``training`` flag of ``fit``/``predict`` reaches RReLU.

    Args:
        activation: The activation spec (or a type name / dict, see
            :func:`~activation_compare.models.activations.parse_activation`).
        seed: Makes the model reproducible: the kernels' Glorot-uniform
            initialisation and each RReLU layer's slope draws get their own seed
            derived from it. ``None`` draws them from Keras' global random state.
        input_shape: Height, width and channels of the images.
        num_classes: Width of the softmax output.
        name: The model's name; defaults to ``seed_cnn_<activation type>``.
        dtype: The Keras dtype policy of the layers (``"float32"``,
            ``"mixed_bfloat16"``, ``"mixed_float16"``: see
            :mod:`~activation_compare.models.precision`). Under a mixed policy
            the classifier still computes in float32: a 16-bit softmax and
            cross-entropy lose the small probabilities.

    Returns:
        An uncompiled ``keras.Model`` (the training node compiles it).
    """
    spec = parse_activation(activation)
    seeds = _derived_seeds(seed)

    def kernel_initializer(layer: str) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seeds[layer])

    classifier_dtype = "float32" if dtype.startswith("mixed_") else dtype

    def convolution_block(x: Any, block: int, filters: int) -> Any:
        conv = keras.layers.Conv2D(
            filters, (3, 3), padding="valid", kernel_initializer=kernel_initializer(f"conv{block}"),
            name=f"conv{block}", dtype=dtype,
        )
        act = activation_layer(spec, name=f"act{block}", seed=seeds[f"act{block}"], dtype=dtype)
        pool = keras.layers.MaxPooling2D((2, 2), name=f"pool{block}", dtype=dtype)
        if spec.commutes_with_max_pool:
            return act(pool(conv(x)))
        return pool(act(conv(x)))

    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = convolution_block(inputs, 1, 32)
    x = convolution_block(x, 2, 64)
    x = keras.layers.Flatten(name="flatten", dtype=dtype)(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation="softmax",
        kernel_initializer=kernel_initializer("classifier"),
        name="classifier",
        dtype=classifier_dtype,
    )(x)
    return keras.Model(inputs, outputs, name=name or f"seed_cnn_{spec.type}")
