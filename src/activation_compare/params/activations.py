"""The activation registry: every activation type, defined once.

One class per ``type`` an ``activations.<name>`` entry can have. The class is
the whole definition of its type: its fields are the entry's options (their
types, ranges, defaults and docstrings give the schema, the validation
messages and the parameters page), and its :meth:`~Activation.build_layer` is
the layer factory the model calls (:mod:`activation_compare.models.activations`).
:data:`ACTIVATION_SPECS` maps each ``type`` to its class; adding a type is one
class decorated with :func:`_registered`.

Nothing here imports Keras or TensorFlow until a layer is built: the
parameters are validated in processes that must not load TensorFlow
(``kedro registry list``, the driver ParallelRunner forks). So a Keras
activation's name is checked against :data:`KERAS_ACTIVATIONS`, a static list
that ``tests/params/test_activations.py`` compares with ``keras.activations``;
a custom layer's import is checked in a child process before training
(:func:`~activation_compare.params.validation.check_custom_layers`).
"""

from __future__ import annotations

import difflib
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .strict import Strict

if TYPE_CHECKING:
    import keras

__all__ = [
    "ACTIVATION_SPECS",
    "KERAS_ACTIVATIONS",
    "Activation",
    "CustomSpec",
    "ELUSpec",
    "KerasSpec",
    "LeakyReLUSpec",
    "PReLUSpec",
    "RReLUSpec",
    "ReLUSpec",
]

# Every activation ``keras.activations.get`` resolves by name (Keras 3.15); a test
# compares this list with the installed Keras, so it cannot fall behind unnoticed.
KERAS_ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "glu", "hard_shrink", "hard_sigmoid", "hard_silu",
    "hard_swish", "hard_tanh", "leaky_relu", "linear", "log_sigmoid", "log_softmax", "mish",
    "relu", "relu6", "selu", "sigmoid", "silu", "soft_shrink", "softmax", "softplus",
    "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax", "squareplus", "swish", "tanh",
    "tanh_shrink", "threshold",
)  # fmt: skip

# A custom layer's import path: ``package.module:ClassName``.
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
# Constructor arguments the model sets itself on every activation layer.
_SET_BY_THE_MODEL = ("name", "dtype")

# Pydantic error types whose message is a sentence about ``<parameter>=<value>``
# (validation.py writes them as ``activations.x.name='gelux' is not …``).
SENTENCE_ERRORS = frozenset({"keras_activation", "import_path"})


class Activation(Strict):
    """The base of every activation type: its options, and the layer they build."""

    type: str

    commutes_with_max_pool: ClassVar[bool] = False
    """Whether max-pooling before the activation gives, bit for bit, the outputs
    and gradients of max-pooling after it. The model then pools first, and the
    activation's passes run over a quarter of the elements (docs/speed.md)."""

    def build_layer(
        self, *, name: str | None = None, seed: int | None = None, dtype: str | None = None
    ) -> keras.layers.Layer:
        """A new, unbuilt Keras layer applying this activation.

        Args:
            name: The layer's name; ``None`` lets Keras choose one.
            seed: Seeds a random activation (RReLU, a custom layer whose
                constructor takes ``seed``); the others ignore it.
            dtype: The layer's Keras dtype policy; ``None``: Keras' global policy.
        """
        raise NotImplementedError


# type -> its class, in the order the parameters page lists them.
ACTIVATION_SPECS: dict[str, type[Activation]] = {}


def _registered(cls: type[Activation]) -> type[Activation]:
    """Add an activation type to the registry, under its ``type`` field's one value."""
    ACTIVATION_SPECS[cls.model_fields["type"].default] = cls
    return cls


@_registered
class ReLUSpec(Activation):
    """max(0, x)."""

    type: Literal["relu"] = "relu"

    # max(0, ·) keeps every positive value as it is and maps the rest to 0, so
    # the largest of a window is the same value at the same place either way;
    # where every value of a window is <= 0 the output and the gradient are 0
    # either way (ReLU's gradient at 0 is 0). Not for leaky_relu: a slope can
    # round two different negative values to one, and max-pooling after it then
    # sends the gradient to the first of the two, not to the larger.
    commutes_with_max_pool: ClassVar[bool] = True

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        import keras

        return keras.layers.ReLU(name=name, dtype=dtype)


@_registered
class RReLUSpec(Activation):
    """Randomized leaky ReLU: slope ~ U(lower, upper) in training, the mean at inference."""

    type: Literal["rrelu"] = "rrelu"
    lower: float = 1.0 / 8.0
    """Lowest negative slope drawn while training (1/8 as in the RReLU paper); 0 ≤ lower ≤ upper < 1."""
    upper: float = 1.0 / 3.0
    """Highest negative slope drawn while training (1/3); inference uses (lower + upper) / 2, 11/48 by default."""

    @model_validator(mode="after")
    def _bounds(self) -> RReLUSpec:
        if not 0.0 <= self.lower <= self.upper < 1.0:
            raise ValueError(
                f"RReLU needs 0 <= lower <= upper < 1, got lower={self.lower}, "
                f"upper={self.upper}"
            )
        return self

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        from activation_compare.layers import RReLU

        return RReLU(lower=self.lower, upper=self.upper, seed=seed, name=name, dtype=dtype)


@_registered
class LeakyReLUSpec(Activation):
    """x for x >= 0, slope·x below; the RReLU paper uses slopes 0.01 and 0.18."""

    type: Literal["leaky_relu"] = "leaky_relu"
    slope: float = Field(default=0.01, ge=0.0, lt=1.0)
    """Negative slope."""

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        import keras

        return keras.layers.LeakyReLU(negative_slope=self.slope, name=name, dtype=dtype)


@_registered
class PReLUSpec(Activation):
    """Leaky ReLU with one learned slope per channel, starting at ``initial_slope``."""

    type: Literal["prelu"] = "prelu"
    initial_slope: float = Field(default=0.25, ge=0.0, lt=1.0)
    """Starting value of the learned slopes."""

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        import keras

        # shared_axes=[1, 2]: one slope per channel of a (batch, height, width,
        # channels) input, as the PReLU and RReLU papers use for convolutions.
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(self.initial_slope),
            shared_axes=[1, 2],
            name=name,
            dtype=dtype,
        )


@_registered
class ELUSpec(Activation):
    """x for x >= 0, alpha·(exp(x) − 1) below."""

    type: Literal["elu"] = "elu"
    alpha: float = Field(default=1.0, gt=0.0)
    """Scale of the negative part."""

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        import keras

        return keras.layers.ELU(alpha=self.alpha, name=name, dtype=dtype)


def _close_matches(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value.lower(), choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "Keras knows: " + ", ".join(choices)


@_registered
class KerasSpec(Activation):
    """Any activation Keras knows by name (`keras.activations.get`), as a `keras.layers.Activation` layer: `gelu`, `silu`, `mish`, `selu`, `tanh`, …"""

    type: Literal["keras"] = "keras"
    name: str = Field(
        description="The Keras activation's name, with Keras' default options; one of "
        + ", ".join(f"`{name}`" for name in KERAS_ACTIVATIONS)
        + "."
    )

    @field_validator("name")
    @classmethod
    def _known_to_keras(cls, name: str) -> str:
        if name not in KERAS_ACTIVATIONS:
            raise PydanticCustomError(
                "keras_activation",
                "is not a Keras activation; {suggestion}",
                {"suggestion": _close_matches(name, KERAS_ACTIVATIONS)},
            )
        return name

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        import keras

        return keras.layers.Activation(self.name, name=name, dtype=dtype)


@_registered
class CustomSpec(Activation):
    """Your own Keras layer, by import path ([Activations](activations.md) says what its package must provide)."""

    # Any other key is one of the layer's constructor arguments.
    model_config = ConfigDict(extra="allow")

    type: Literal["custom"] = "custom"
    layer: str
    """The layer class as `package.module:ClassName`, importable in the project's `src/` folder or installed; a `keras.layers.Layer` subclass registered with `@keras.saving.register_keras_serializable()`."""

    @field_validator("layer")
    @classmethod
    def _import_path(cls, layer: str) -> str:
        if not _IMPORT_PATH.match(layer):
            raise PydanticCustomError(
                "import_path", "is not an import path; expected 'package.module:ClassName'"
            )
        return layer

    @model_validator(mode="after")
    def _model_arguments(self) -> CustomSpec:
        taken = sorted(set(self.kwargs) & set(_SET_BY_THE_MODEL))
        if taken:
            raise ValueError(
                f"{', '.join(taken)} cannot be set: the model names each activation layer "
                "and gives it model.precision's dtype policy"
            )
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """The layer's constructor arguments: the entry's keys other than ``type`` and ``layer``."""
        return dict(self.model_extra or {})

    def build_layer(self, *, name=None, seed=None, dtype=None):  # noqa: D102 - Activation's
        from activation_compare.layers.custom import build_custom_layer

        return build_custom_layer(self.layer, self.kwargs, name=name, seed=seed, dtype=dtype)


ACTIVATION_TYPES = tuple(ACTIVATION_SPECS)
# Types whose every option has a default: the schema's default entries, one per type.
DEFAULT_ACTIVATION_TYPES = tuple(
    kind
    for kind, spec in ACTIVATION_SPECS.items()
    if all(not field.is_required() for name, field in spec.model_fields.items())
)
