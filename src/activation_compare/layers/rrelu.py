"""Randomized leaky ReLU (RReLU) as a backend-agnostic Keras 3 layer."""

from __future__ import annotations

import operator
from typing import Any

import keras
from keras import ops

from activation_compare.layers.random_words import random_words

__all__ = ["RReLU"]


def _scale_negatives(inputs, slopes):
    """``where(x >= 0, x, slopes * x)`` as ``x * factor``, the factor reused by the gradient."""

    @ops.custom_gradient
    def scale(x):
        # A scalar 1 broadcasts: no tensor of ones is written.
        factor = ops.where(x >= 0, ops.cast(1, slopes.dtype), slopes)

        def grad(*args, upstream=None):
            # TensorFlow and JAX pass the upstream gradient alone, torch as a keyword.
            return (args[0] if upstream is None else upstream) * factor

        return x * factor, grad

    return scale(inputs)


def _bound(name: str, value: Any) -> float:
    """``value`` as a Python float, or a ValueError that names the argument."""
    if isinstance(value, bool):
        raise ValueError(f"RReLU `{name}` must be a float, received: {name}={value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"RReLU `{name}` must be a float, received: {name}={value!r}"
        ) from None


@keras.saving.register_keras_serializable(package="activation_compare")
class RReLU(keras.layers.Layer):
    """Randomized leaky rectified linear unit (Xu et al., 2015).

    A leaky ReLU whose negative slope is random while training and fixed at
    the slopes' mean at inference:

    ```
    training:   f(x) = x      if x >= 0
                f(x) = a * x  if x < 0,   a ~ U(lower, upper)
    inference:  f(x) = x      if x >= 0
                f(x) = ((lower + upper) / 2) * x  if x < 0
    ```

    While training, a fresh slope is drawn for every element of the input and
    at every call (every training step), from the layer's own
    `keras.random.SeedGenerator`, whose state advances with each draw, also
    inside a compiled train step. Each slope takes 16 random bits: one 32-bit
    draw gives two slopes, each the midpoint of one of 65,536 equal bins of
    [lower, upper]. That is U(lower, upper) to within 1/65,536 of the range,
    with the exact mean, at half the random-number work of a float32 draw,
    which is what makes RReLU cost more than ReLU on a CPU (README, Speed).
    The slope and the sign test are folded into one factor with its own
    gradient (the same values and gradients as `where(x >= 0, x, a * x)`,
    one pass less over the tensor forward and backward).

    The defaults `lower=1/8`, `upper=1/3` and the inference slope
    `(lower + upper) / 2` (11/48 ~ 0.229) are those of `torch.nn.RReLU` and of
    the retired `tfa.activations.rrelu`. The paper writes the slope as `1/a`
    with `a ~ U(3, 8)`, the same training range, but at test time divides by
    the mean of `a`, a slope of 2/11 ~ 0.18. The mean of the slopes, used
    here as in those libraries, makes the inference output the expectation of
    the training output.

    Example:

    ```python
    layer = RReLU()  # lower=1/8, upper=1/3: inference slope 11/48 ~ 0.2292
    layer(np.array([-4.0, -1.0, 0.0, 2.0]))
    # [-0.9167, -0.2292, 0.0, 2.0]
    layer(np.array([-4.0, -1.0, 0.0, 2.0]), training=True)
    # e.g. [-0.6133, -0.3012, 0.0, 2.0]: slopes between 1/8 and 1/3
    ```

    The slopes are computed in float32 and cast to the dtype the layer
    computes in, so the layer runs in float16 or bfloat16 under such a dtype policy (for example
    `dtype="mixed_float16"`); in bfloat16 a slope keeps 8 significant bits,
    as every activation of such a model does. Only `keras.ops` and `keras.random` are used, and
    on TensorFlow its full-range integer draw (`random_words`), so it works on
    every Keras backend and under XLA (`jit_compile=True`).

    Args:
        lower: Float, `0 <= lower <= upper`. Smallest negative slope.
            Defaults to `1/8`.
        upper: Float, `lower <= upper < 1`. Largest negative slope.
            Defaults to `1/3`.
        seed: Integer or `None`. Seeds the slope draws; two layers with the
            same seed draw the same slopes. `None` (the default) takes a seed
            from Keras' global random state (see `keras.utils.set_random_seed`).
        **kwargs: Base layer keyword arguments, such as `name` and `dtype`.

    Call arguments:
        inputs: Input tensor of any shape.
        training: Python boolean. `True` draws random slopes, `False` (the
            default) uses their mean. `fit()` passes `True`; `evaluate()`,
            `predict()` and direct calls pass `False`.
    """

    def __init__(
        self,
        lower: float = 1.0 / 8.0,
        upper: float = 1.0 / 3.0,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        lower_value = _bound("lower", lower)
        upper_value = _bound("upper", upper)
        # Written as a negation so that NaN bounds are rejected too.
        if not 0.0 <= lower_value <= upper_value < 1.0:
            raise ValueError(
                "RReLU needs 0 <= lower <= upper < 1. "
                f"Received: lower={lower!r}, upper={upper!r}"
            )
        if seed is not None:
            try:
                if isinstance(seed, bool):
                    raise TypeError
                seed = operator.index(seed)
            except TypeError:
                raise ValueError(
                    f"RReLU `seed` must be an integer or None. Received: seed={seed!r}"
                ) from None
        if kwargs.get("name") is None:
            # Keras would call it "r_re_lu"; "rrelu", "rrelu_1", ... reads better.
            uid = keras.backend.get_uid("rrelu")
            kwargs["name"] = "rrelu" if uid == 1 else f"rrelu_{uid - 1}"
        super().__init__(**kwargs)
        self.lower = lower_value
        self.upper = upper_value
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    @property
    def inference_slope(self) -> float:
        """The slope used at inference: the mean of U(lower, upper)."""
        return (self.lower + self.upper) / 2.0

    def call(self, inputs, training=False):
        if not training:
            # A leaky ReLU with the mean slope: one fused op, which TensorFlow's
            # oneDNN also fuses into the convolution before it (README, Speed).
            return ops.leaky_relu(inputs, negative_slope=self.inference_slope)
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        slopes = ops.cast(self._draw_slopes(ops.shape(inputs)), dtype)
        return _scale_negatives(inputs, slopes)

    def _draw_slopes(self, shape) -> Any:
        """float32 slopes of ``shape``, each from 16 random bits: two per 32-bit draw."""
        last = shape[-1] if shape else None
        if isinstance(last, int) and last % 2 == 0:
            # int32 words -> two uint16 halves each, laid out along the last axis.
            words = random_words((*shape[:-1], last // 2), self.seed_generator)
            bits = ops.view(words, "uint16")
        else:
            count = 1
            for size in shape:
                count = count * size
            words = random_words(((count + 1) // 2,), self.seed_generator)
            bits = ops.reshape(ops.reshape(ops.view(words, "uint16"), (-1,))[:count], shape)
        # Bin midpoints: (bits + 1/2) / 2**16 spans [lower, upper] evenly, exactly
        # representable in float32 and symmetric about the mean.
        width = (self.upper - self.lower) / 65536.0
        return ops.cast(bits, "float32") * width + (self.lower + width / 2.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"lower": self.lower, "upper": self.upper, "seed": self.seed})
        return config

