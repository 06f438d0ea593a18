"""The floating-point precision a model computes in: ``model.precision``, resolved for this machine.

``float32`` is the original experiment's. ``bfloat16`` and ``float16`` are
Keras' mixed policies (``mixed_bfloat16``, ``mixed_float16``): the weights
stay float32, the layers compute in 16 bits, and the classifier computes its
softmax in float32. ``auto`` picks ``bfloat16`` where the CPU computes it
natively (AVX512_BF16 or AMX: twice as fast an epoch for this model, with the
same accuracy, README "Speed") and float32 everywhere else, GPUs included,
where float16's accuracy has not been checked.

The policy is given to each layer when the model is built (never set as
Keras' global policy, which would leak into every model of the process), so
it is part of the model's config and of its checkpoint's fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from activation_compare.params import PRECISIONS

__all__ = ["cpu_has_bfloat16", "dtype_policy", "model_precision", "needs_loss_scaling"]

# model.precision -> Keras dtype policy.
_POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# /proc/cpuinfo flags of native bfloat16 arithmetic, which oneDNN uses.
_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bfloat16 natively (Linux' CPU flags; False where unknown)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return not _BFLOAT16_FLAGS.isdisjoint(value.split())
    return False


def _sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def dtype_policy(precision: str) -> str:
    """The Keras dtype policy for ``model.precision`` on this machine.

    Raises:
        ValueError: If ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision == "auto":
        return _POLICIES["bfloat16"] if cpu_has_bfloat16() and not _sees_gpu() else _POLICIES["float32"]
    try:
        return _POLICIES[precision]
    except KeyError:
        raise ValueError(f"model.precision={precision!r}; allowed: {', '.join(PRECISIONS)}") from None


def model_precision(model: Any) -> str:
    """The dtype policy the model's layers compute in (the first layer with weights)."""
    for layer in model.layers:
        if layer.weights:
            return layer.dtype_policy.name
    return model.dtype_policy.name


def needs_loss_scaling(model: Any) -> bool:
    """Whether training must scale the loss: float16 gradients underflow otherwise.

    Keras wraps the optimizer by itself only for a *global* ``mixed_float16``
    policy; the policy here is per layer.
    """
    return any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
