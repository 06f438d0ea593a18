"""The schema: every parameter a user can set, its type, range and default.

Everything a user can set with ``--params`` or in ``conf/`` is declared here, so
a typo or an out-of-range value is rejected before any data loads or any model
trains. Nodes receive the typed sections (Kedro instantiates a pydantic model
for a ``params:`` input whose type hint is one), and
:func:`validate_parameters` checks the whole tree, unknown keys included, when
the Kedro context is created.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BeforeValidator,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from .activations import ACTIVATION_SPECS, ACTIVATION_TYPES, DEFAULT_ACTIVATION_TYPES
from .strict import Strict


# Activation names become Kedro namespaces and file names.
_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# The image sources (datasets/image_source.py builds one per name).
DATA_SOURCES = ("cifar10", "image_folder", "synthetic")
# An image folder or archive may hold at most this many images unless
# data.max_images says otherwise: CIFAR-10 has 60,000, and a cap near that
# refuses a decompression bomb before anything is decoded.
DEFAULT_MAX_IMAGES = 100_000


def _split_words(value: Any) -> Any:
    """Let a list be written as "a b c" or "a;b;c", and one item as itself.

    ``kedro run --params`` splits its argument on commas, so "[0,1,2]" cannot
    be passed there; "training.seeds=0 1 2" can, and "training.seeds=5" (which
    Kedro hands over as the integer 5) means [5]. An empty value is an empty list.
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [word for word in re.split(r"[\s;]+", value.strip(" []")) if word]
    if isinstance(value, int) and not isinstance(value, bool):
        return [value]
    return value


def _split_floats(value: Any) -> Any:
    words = _split_words(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        try:
            return [float(word) for word in words]
        except ValueError:
            raise ValueError(f"expected numbers separated by spaces, got {value!r}") from None
    return words


def _split_ints(value: Any) -> Any:
    words = _split_words(value)
    if isinstance(value, str):
        try:
            return [int(word) for word in words]
        except ValueError:
            raise ValueError(f"expected integers separated by spaces, got {value!r}") from None
    return words


# NumPy's and TensorFlow's seeds are 32-bit unsigned integers.
SEED_MAX = 2**32 - 1


def _seed_in_range(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= SEED_MAX:
        raise ValueError(f"a seed must be from 0 to {SEED_MAX} (2**32 - 1)")
    return value


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would take true for 1
        raise ValueError("Input should be an integer, not true or false")
    return value


# A seed: one message for any integer out of range, before the bounds' own.
Seed = Annotated[StrictInt, Field(ge=0, le=SEED_MAX), BeforeValidator(_seed_in_range)]
# A positive count (epochs, images, batch size); true and false are not counts.
Count = Annotated[int, Field(gt=0), BeforeValidator(_not_a_bool)]


# Unknown keys are errors: a misspelt parameter must never be ignored.
_Strict = Strict


# --- activations -----------------------------------------------------------

# Every activation type, its options and its layer are defined once, in
# activations.py (the registry); an entry of ``activations`` is any of them,
# chosen by its ``type``.
ActivationSpec = Annotated[
    Union[tuple(ACTIVATION_SPECS.values())],  # type: ignore[valid-type]
    Field(discriminator="type"),
]
# model.precision's choices (models/precision.py turns them into Keras dtype policies).
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


# --- sections --------------------------------------------------------------


class DataParams(_Strict):
    """Where the images come from and how much of them to use."""

    source: Literal[DATA_SOURCES] = "cifar10"  # type: ignore[valid-type]
    """Image source: `cifar10` (the official binary archive, downloaded on first use), `image_folder` (class folders or a .tar.gz of them), `synthetic` (generated, for tests and the smoke environment)."""
    path: str | None = None
    """The source's file or folder: a CIFAR-10 binary archive (`cifar10`; none: download it) or a folder / .tar.gz with `train/<class>/*` and `test/<class>/*` images (`image_folder`)."""
    limit_train: Count | None = None
    """Stratified subsample of the training set for quick runs; none keeps every image."""
    limit_test: Count | None = None
    """Stratified subsample of the test set; none keeps every image."""
    validation_split: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Fraction of the training set held out as validation data; 0 uses the test set as validation data, as the original experiment did."""
    split_seed: Seed = 0
    """Seed of the stratified subsampling and of the validation split."""
    max_images: Count = DEFAULT_MAX_IMAGES
    """The most images an image folder or archive may hold; more is refused from its headers, before anything is decoded."""


class ModelParams(_Strict):
    """The network every activation is plugged into."""

    architecture: Literal["seed_cnn"] = "seed_cnn"
    """The network: the original's Conv2D(32) → MaxPool → Conv2D(64) → MaxPool → Dense(10), 42,442 parameters."""
    precision: Literal[PRECISIONS] = "auto"
    """What the layers compute in: `auto` is bfloat16 on CPUs with AVX512_BF16 or AMX and float32 elsewhere; `float32` as the original; `bfloat16`; `float16` (GPUs; the loss is scaled)."""


class OptimizerParams(_Strict):
    """Adam with Keras' defaults, as the original."""

    name: Literal["adam"] = "adam"
    """The optimizer (Adam, Keras' defaults otherwise)."""
    learning_rate: float = Field(default=0.001, gt=0.0)
    """Adam's learning rate."""


class TrainingParams(_Strict):
    """How each model is trained."""

    epochs: Count = 50
    """Epochs per model."""
    batch_size: Count = 100
    """Mini-batch size."""
    seeds: list[Seed] = Field(default_factory=lambda: [0], min_length=1)
    """One model per activation per seed, e.g. `0 1 2` on the command line."""
    optimizer: OptimizerParams = OptimizerParams()
    """The optimizer."""
    verbose: Literal[0, 1, 2] = 0
    """Keras' own fit() output: 0 none (the progress log already has one line per epoch), 1 a progress bar, 2 a line per epoch."""
    retrain: bool = False
    """Train every model from scratch; otherwise a finished model with the same training settings is reused and an interrupted one resumes."""
    jit_compile: bool = False
    """XLA compilation of the train step (slower for this model on a CPU)."""
    deterministic: bool = True
    """TensorFlow op determinism: the same seed gives the same metrics on the same machine."""

    _seeds_from_text = field_validator("seeds", mode="before")(_split_ints)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {seeds}")
        return seeds


class Protocol(StrEnum):
    """How the activations are compared (`compare.protocol`)."""

    ORIGINAL = "original"
    """One learning rate, the test set as validation data, as the original experiment."""
    RIGOROUS = "rigorous"
    """Learning rate tuned per activation on a held-out split; the test set read once."""


PROTOCOLS = tuple(p.value for p in Protocol)


class CompareParams(_Strict):
    """Which activations are compared, against which baseline, and under which protocol."""

    # Not empty: checked in ProjectParameters, whose message lists the defined names.
    activations: list[str] = Field(default_factory=lambda: ["relu", "rrelu"])
    """The activations compared, by their names under `activations`."""
    baseline: str = "relu"
    """The activation the others are compared against."""
    confidence_level: float = Field(default=0.95, gt=0.0, lt=1.0)
    """Confidence level of the intervals in the comparison."""
    protocol: Protocol = Protocol.ORIGINAL
    """`original`: one learning rate, the test set as validation data (as the original); `rigorous`: a validation split of the training set, the learning rate tuned per activation on it, each final model's best validation epoch kept, the test set read once."""

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


class TuningParams(_Strict):
    """The learning-rate search of the rigorous protocol (``compare.protocol=rigorous``).

    Per activation, one trial model per learning rate, trained on the training set
    less a stratified validation split of ``validation_size`` images and scored by
    its best validation accuracy; the best rate trains the final models.
    """

    learning_rates: list[Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=lambda: [0.0003, 0.001, 0.003], min_length=1
    )
    """Rigorous protocol: the learning-rate grid, one trial model per rate and activation."""
    epochs: Count | None = None
    """Rigorous protocol: epochs of every trial; none: `training.epochs`."""
    seed: Seed = 0
    """Rigorous protocol: the seed of every trial model."""
    validation_size: Count = 5000
    """Rigorous protocol: training images held out, stratified by class, as validation data."""

    _rates_from_text = field_validator("learning_rates", mode="before")(_split_floats)

    @field_validator("learning_rates")
    @classmethod
    def _distinct_rates(cls, rates: list[float]) -> list[float]:
        if len(set(rates)) != len(rates):
            raise ValueError(f"learning rates must be distinct, got {rates}")
        return rates


class ProjectParameters(_Strict):
    """The whole parameter tree."""

    data: DataParams = DataParams()
    model: ModelParams = ModelParams()
    training: TrainingParams = TrainingParams()
    activations: dict[str, ActivationSpec] = Field(
        default_factory=lambda: {name: {"type": name} for name in DEFAULT_ACTIVATION_TYPES},
        validate_default=True,
    )
    compare: CompareParams = CompareParams()
    tuning: TuningParams = TuningParams()

    @model_validator(mode="after")
    def _compared_activations_are_defined(self) -> ProjectParameters:
        if not self.compare.activations:
            raise ValueError(
                "compare.activations is empty; name one or more of the activations defined "
                f"under 'activations': {sorted(self.activations)}, e.g. "
                "--params 'compare.activations=relu rrelu'"
            )
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
        if self.compare.protocol is Protocol.RIGOROUS:
            _check_rigorous(self)
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


def _check_rigorous(params: ProjectParameters) -> None:
    """What the rigorous protocol cannot run with, as far as the parameters alone tell."""
    if params.data.validation_split:
        raise ValueError(
            f"data.validation_split={params.data.validation_split} cannot be used with "
            "compare.protocol='rigorous', which holds out tuning.validation_size="
            f"{params.tuning.validation_size} training images itself; set data.validation_split=0"
        )
    limit = params.data.limit_train
    if limit is not None and params.tuning.validation_size >= limit:
        raise ValueError(
            f"tuning.validation_size={params.tuning.validation_size} leaves no training images "
            f"of data.limit_train={limit}; expected fewer than {limit}"
        )
