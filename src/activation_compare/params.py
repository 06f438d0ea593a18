"""The one schema for the project's parameters (``conf/*/parameters*.yml``).

Everything a user can set with ``--params`` or in ``conf/`` is declared here, so
a typo or an out-of-range value is rejected before any data loads or any model
trains. Nodes receive the typed sections (Kedro instantiates a pydantic model
for a ``params:`` input whose type hint is one), and
:func:`validate_parameters` checks the whole tree, unknown keys included, when
the Kedro context is created.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

# Activation names become Kedro namespaces and file names.
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# The image sources (datasets/image_source.py builds one per name).
DATA_SOURCES = ("cifar10", "image_folder", "synthetic")
# An image folder or archive may hold at most this many images unless
# data.max_images says otherwise: CIFAR-10 has 60,000, and a cap near that
# refuses a decompression bomb before anything is decoded.
DEFAULT_MAX_IMAGES = 100_000


def _split_words(value: Any) -> Any:
    """Let a list be written as "a b c" or "a;b;c".

    ``kedro run --params`` splits its argument on commas, so "[0,1,2]" cannot
    be passed there; "training.seeds=0 1 2" can.
    """
    if isinstance(value, str):
        return [word for word in re.split(r"[\s;]+", value.strip(" []")) if word]
    return value


def _split_ints(value: Any) -> Any:
    words = _split_words(value)
    if isinstance(value, str):
        try:
            return [int(word) for word in words]
        except ValueError:
            raise ValueError(f"expected integers separated by spaces, got {value!r}") from None
    return words


class _Strict(BaseModel):
    """Unknown keys are errors: a misspelt parameter must never be ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- activations -----------------------------------------------------------


class ReLUSpec(_Strict):
    """max(0, x)."""

    type: Literal["relu"] = "relu"


class RReLUSpec(_Strict):
    """Randomized leaky ReLU: slope ~ U(lower, upper) in training, the mean at inference."""

    type: Literal["rrelu"] = "rrelu"
    lower: float = 1.0 / 8.0
    upper: float = 1.0 / 3.0

    @model_validator(mode="after")
    def _bounds(self) -> RReLUSpec:
        if not 0.0 <= self.lower <= self.upper < 1.0:
            raise ValueError(
                f"RReLU needs 0 <= lower <= upper < 1, got lower={self.lower}, "
                f"upper={self.upper}"
            )
        return self


class LeakyReLUSpec(_Strict):
    """x for x >= 0, slope·x below; the RReLU paper uses slopes 0.01 and 0.18."""

    type: Literal["leaky_relu"] = "leaky_relu"
    slope: float = Field(default=0.01, ge=0.0, lt=1.0)


class PReLUSpec(_Strict):
    """Leaky ReLU with one learned slope per channel, starting at ``initial_slope``."""

    type: Literal["prelu"] = "prelu"
    initial_slope: float = Field(default=0.25, ge=0.0, lt=1.0)


class ELUSpec(_Strict):
    """x for x >= 0, alpha·(exp(x) − 1) below."""

    type: Literal["elu"] = "elu"
    alpha: float = Field(default=1.0, gt=0.0)


ActivationSpec = Annotated[
    Union[ReLUSpec, RReLUSpec, LeakyReLUSpec, PReLUSpec, ELUSpec],
    Field(discriminator="type"),
]
ACTIVATION_TYPES = ("relu", "rrelu", "leaky_relu", "prelu", "elu")


# --- sections --------------------------------------------------------------


class DataParams(_Strict):
    """Where the images come from and how much of them to use."""

    source: Literal[DATA_SOURCES] = "cifar10"  # type: ignore[valid-type]
    # An archive (cifar10) or a folder / .tar.gz (image_folder); None downloads CIFAR-10.
    path: str | None = None
    # Stratified subsamples for quick runs; None keeps everything.
    limit_train: Annotated[int, Field(gt=0)] | None = None
    limit_test: Annotated[int, Field(gt=0)] | None = None
    # Fraction of the training set held out as validation data. 0 uses the test
    # set as validation data, as the original experiment did.
    validation_split: float = Field(default=0.0, ge=0.0, lt=1.0)
    # Seed of the stratified subsampling and of the validation split.
    split_seed: StrictInt = 0
    # The most images an image_folder source may hold; more is refused before decoding.
    max_images: Annotated[int, Field(gt=0)] = DEFAULT_MAX_IMAGES


class ModelParams(_Strict):
    """The network every activation is plugged into."""

    architecture: Literal["seed_cnn"] = "seed_cnn"


class OptimizerParams(_Strict):
    """Adam with Keras' defaults, as the original."""

    name: Literal["adam"] = "adam"
    learning_rate: float = Field(default=0.001, gt=0.0)


class TrainingParams(_Strict):
    """How each model is trained."""

    epochs: Annotated[int, Field(gt=0)] = 50
    batch_size: Annotated[int, Field(gt=0)] = 100
    # One model per activation per seed.
    seeds: list[StrictInt] = Field(default_factory=lambda: [0], min_length=1)
    optimizer: OptimizerParams = OptimizerParams()
    # Keras' fit() console output: 0 silent, 1 progress bar, 2 one line per epoch.
    verbose: Literal[0, 1, 2] = 2
    # Train every model from scratch, discarding its training state. Otherwise a
    # model whose training finished with the same parameters is reused, and an
    # interrupted one resumes from its last epoch (pipelines/modelling/checkpoints.py).
    retrain: bool = False
    # XLA compilation of the train step. Off: on a CPU it made this small model
    # about 2x slower than TensorFlow's own kernels (see README, Speed).
    jit_compile: bool = False
    # TensorFlow op determinism: the same seed gives identical metrics on CPU.
    deterministic: bool = True

    _seeds_from_text = field_validator("seeds", mode="before")(_split_ints)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds


class CompareParams(_Strict):
    """Which activations are compared, and against which baseline."""

    activations: list[str] = Field(default_factory=lambda: ["relu", "rrelu"], min_length=1)
    baseline: str = "relu"
    confidence_level: float = Field(default=0.95, gt=0.0, lt=1.0)

    _activations_from_text = field_validator("activations", mode="before")(_split_words)

    @field_validator("activations")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _NAME_PATTERN.match(name):
                raise ValueError(
                    f"activation name {name!r} must be lowercase letters, digits and "
                    "underscores, starting with a letter (it names a Kedro namespace)"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate activations {duplicates} in {names}")
        return names


class ProjectParameters(_Strict):
    """The whole parameter tree."""

    data: DataParams = DataParams()
    model: ModelParams = ModelParams()
    training: TrainingParams = TrainingParams()
    activations: dict[str, ActivationSpec] = Field(
        default_factory=lambda: {name: {"type": name} for name in ACTIVATION_TYPES},
        validate_default=True,
    )
    compare: CompareParams = CompareParams()

    @model_validator(mode="after")
    def _compared_activations_are_defined(self) -> ProjectParameters:
        unknown = [n for n in self.compare.activations if n not in self.activations]
        if unknown:
            raise ValueError(
                f"compare.activations names {unknown}, which are not defined under "
                f"'activations'; defined: {sorted(self.activations)}"
            )
        if self.baseline_missing:
            raise ValueError(
                f"compare.baseline={self.compare.baseline!r} is not one of "
                f"compare.activations={self.compare.activations}"
            )
        if self.data.source == "image_folder" and not self.data.path:
            raise ValueError(
                "data.source='image_folder' needs data.path: a folder or .tar.gz "
                "holding train/<class>/* and test/<class>/* images"
            )
        return self

    @property
    def baseline_missing(self) -> bool:
        # A single-activation run has nothing to compare against; that is fine.
        return (
            len(self.compare.activations) > 1
            and self.compare.baseline not in self.compare.activations
        )


class InvalidParametersError(ValueError):
    """Raised with one line per problem: the parameter, the value, what is allowed."""


def _describe_error(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"] if part not in ACTIVATION_TYPES)
    if error["type"] == "extra_forbidden":
        return f"{location or '<root>'}: unknown parameter (is it misspelt?)"
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" = {value!r}"
    return f"{location or '<root>'}{shown}: {error['msg']}"


def validate_parameters(raw: dict[str, Any]) -> ProjectParameters:
    """Check the whole parameter tree; raise one error that lists every problem."""
    try:
        return ProjectParameters.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe_error(e)}" for e in exc.errors())
        raise InvalidParametersError(
            f"Invalid parameters ({exc.error_count()}):\n{problems}\n"
            "Parameters live in conf/<env>/parameters*.yml and can be overridden with "
            "kedro run --params 'key=value'."
        ) from None
