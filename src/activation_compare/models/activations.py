"""The activation registry's model side: an ``activations.<name>`` entry in, a Keras layer out.

Every activation type is defined once, in
:mod:`activation_compare.params.activations`: its options' model and its
layer factory (:meth:`~activation_compare.params.Activation.build_layer`).
This module parses an entry into its type and builds the layer from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from pydantic import TypeAdapter

from activation_compare.params import ACTIVATION_SPECS, ACTIVATION_TYPES, Activation, ActivationSpec

__all__ = ["ACTIVATION_TYPES", "activation_layer", "parse_activation"]

_SPEC_ADAPTER: TypeAdapter[ActivationSpec] = TypeAdapter(ActivationSpec)


def _unknown_type(type_name: Any) -> ValueError:
    return ValueError(
        f"Unknown activation type {type_name!r}; valid types are: "
        f"{', '.join(ACTIVATION_TYPES)}"
    )


def parse_activation(name_or_dict: str | Mapping[str, Any] | Activation) -> ActivationSpec:
    """Turn an activation type name or an ``activations.<name>`` dict into its typed spec.

    Args:
        name_or_dict: A bare type name (``"rrelu"``: that type with its default
            options), a dict with a ``type`` key and that type's options
            (``{"type": "leaky_relu", "slope": 0.18}``,
            ``{"type": "keras", "name": "gelu"}``), or an already parsed spec
            (returned as it is).

    Returns:
        The spec, e.g. ``RReLUSpec(type="rrelu", lower=0.125, upper=0.333...)``.

    Raises:
        ValueError: For an unknown type (the message lists the valid ones) or an
            invalid option (``pydantic.ValidationError``, a ``ValueError``).
        TypeError: For anything that is neither a string, a mapping nor a spec.
    """
    if isinstance(name_or_dict, Activation):
        return name_or_dict
    if isinstance(name_or_dict, str):
        raw: dict[str, Any] = {"type": name_or_dict}
    elif isinstance(name_or_dict, Mapping):
        raw = dict(name_or_dict)
        if "type" not in raw:
            raise ValueError(
                f"Activation {raw!r} has no 'type'; valid types are: "
                f"{', '.join(ACTIVATION_TYPES)}"
            )
    else:
        raise TypeError(
            "An activation is a type name or a dict with a 'type' key; received "
            f"{name_or_dict!r} of type {type(name_or_dict).__name__}"
        )
    if not isinstance(raw["type"], str) or raw["type"] not in ACTIVATION_SPECS:
        raise _unknown_type(raw["type"])
    return _SPEC_ADAPTER.validate_python(raw)


def activation_layer(
    spec: Activation | str | Mapping[str, Any],
    *,
    name: str | None = None,
    seed: int | None = None,
    dtype: str | None = None,
) -> keras.layers.Layer:
    """A new Keras layer applying the activation that ``spec`` describes.

    ========== ====================================================================
    type       layer
    ========== ====================================================================
    relu       ``keras.layers.ReLU()``
    rrelu      ``RReLU(lower, upper, seed)``
    leaky_relu ``keras.layers.LeakyReLU(negative_slope=slope)``
    prelu      ``keras.layers.PReLU`` with every slope starting at
               ``initial_slope`` and ``shared_axes=[1, 2]``: one slope per
               channel of a ``(batch, height, width, channels)`` input, as the
               PReLU and RReLU papers use for convolutional layers
    elu        ``keras.layers.ELU(alpha)``
    keras      ``keras.layers.Activation(name)``: any activation Keras knows by name
    custom     the user's layer class (``layer``), built with the entry's other keys
    ========== ====================================================================

    Args:
        spec: The activation's spec; a type name or dict is parsed first with
            :func:`parse_activation`.
        name: The layer's name; ``None`` lets Keras choose one.
        seed: Seeds RReLU's slope draws (and a custom layer's, if its
            constructor takes ``seed``); the other activations ignore it.
        dtype: The layer's Keras dtype policy (e.g. ``"mixed_bfloat16"``);
            ``None``: Keras' global policy.

    Returns:
        An unbuilt layer, new at every call (layers are never shared).
    """
    return parse_activation(spec).build_layer(name=name, seed=seed, dtype=dtype)
