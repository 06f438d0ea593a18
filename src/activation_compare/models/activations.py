"""The activation registry: a parameter spec in, a Keras activation layer out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from pydantic import BaseModel, TypeAdapter

from activation_compare.layers import RReLU
from activation_compare.params import (
    ACTIVATION_TYPES,
    ActivationSpec,
    ELUSpec,
    LeakyReLUSpec,
    PReLUSpec,
    ReLUSpec,
    RReLUSpec,
)

__all__ = ["ACTIVATION_TYPES", "activation_layer", "parse_activation"]

_SPEC_ADAPTER: TypeAdapter[ActivationSpec] = TypeAdapter(ActivationSpec)
_SPEC_CLASSES = (ReLUSpec, RReLUSpec, LeakyReLUSpec, PReLUSpec, ELUSpec)


def _unknown_type(type_name: Any) -> ValueError:
    return ValueError(
        f"Unknown activation type {type_name!r}; valid types are: "
        f"{', '.join(ACTIVATION_TYPES)}"
    )


def parse_activation(name_or_dict: str | Mapping[str, Any] | BaseModel) -> ActivationSpec:
    """Turn an activation name or an ``activations.<name>`` dict into its typed spec.

    Args:
        name_or_dict: A bare type name (``"rrelu"``: that type with its default
            options), a dict with a ``type`` key and that type's options
            (``{"type": "leaky_relu", "slope": 0.18}``), or an already parsed spec
            (returned as it is).

    Returns:
        The spec, e.g. ``RReLUSpec(type="rrelu", lower=0.125, upper=0.333...)``.

    Raises:
        ValueError: For an unknown type (the message lists the valid ones) or an
            invalid option (``pydantic.ValidationError``, a ``ValueError``).
        TypeError: For anything that is neither a string, a mapping nor a spec.
    """
    if isinstance(name_or_dict, _SPEC_CLASSES):
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
    if not isinstance(raw["type"], str) or raw["type"] not in ACTIVATION_TYPES:
        raise _unknown_type(raw["type"])
    return _SPEC_ADAPTER.validate_python(raw)


def activation_layer(
    spec: ActivationSpec | str | Mapping[str, Any],
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
    ========== ====================================================================

    Args:
        spec: The activation's spec; a type name or dict is parsed first with
            :func:`parse_activation`.
        name: The layer's name; ``None`` lets Keras choose one.
        seed: Seeds RReLU's slope draws; the other activations ignore it.
        dtype: The layer's Keras dtype policy (e.g. ``"mixed_bfloat16"``);
            ``None``: Keras' global policy.

    Returns:
        An unbuilt layer, new at every call (layers are never shared).
    """
    spec = parse_activation(spec)
    match spec:
        case ReLUSpec():
            return keras.layers.ReLU(name=name, dtype=dtype)
        case RReLUSpec(lower=lower, upper=upper):
            return RReLU(lower=lower, upper=upper, seed=seed, name=name, dtype=dtype)
        case LeakyReLUSpec(slope=slope):
            return keras.layers.LeakyReLU(negative_slope=slope, name=name, dtype=dtype)
        case PReLUSpec(initial_slope=initial_slope):
            return keras.layers.PReLU(
                alpha_initializer=keras.initializers.Constant(initial_slope),
                shared_axes=[1, 2],
                name=name,
                dtype=dtype,
            )
        case ELUSpec(alpha=alpha):
            return keras.layers.ELU(alpha=alpha, name=name, dtype=dtype)
    raise _unknown_type(getattr(spec, "type", spec))  # pragma: no cover - exhaustive
