"""The one schema for the project's parameters (``conf/*/parameters*.yml``), and its checks.

Everything a user can set with ``--params`` or in ``conf/`` is declared in
:mod:`.schema`, so a typo or an out-of-range value is rejected before any data
loads or any model trains. Nodes receive the typed sections (Kedro instantiates
a pydantic model for a ``params:`` input whose type hint is one), and
:func:`validate_parameters` (:mod:`.validation`) checks the whole tree, unknown
keys included, once per run, when the Kedro context is created. The activation
types, their options and the layers they build are defined once, in
:mod:`.activations` (the registry).
"""

from .activations import (
    ACTIVATION_SPECS,
    ACTIVATION_TYPES,
    KERAS_ACTIVATIONS,
    Activation,
    CustomSpec,
    ELUSpec,
    KerasSpec,
    LeakyReLUSpec,
    PReLUSpec,
    ReLUSpec,
    RReLUSpec,
)
from .schema import (
    DATA_SOURCES,
    DEFAULT_MAX_IMAGES,
    PRECISIONS,
    PROTOCOLS,
    ActivationSpec,
    CompareParams,
    DataParams,
    ModelParams,
    OptimizerParams,
    ProjectParameters,
    Protocol,
    TrainingParams,
    TuningParams,
)
from .validation import (
    InvalidParametersError,
    check_batch_size,
    check_custom_layers,
    check_subsample,
    training_images,
    validate_parameters,
)

__all__ = [
    "ACTIVATION_SPECS",
    "ACTIVATION_TYPES",
    "KERAS_ACTIVATIONS",
    "DATA_SOURCES",
    "DEFAULT_MAX_IMAGES",
    "PRECISIONS",
    "PROTOCOLS",
    "Protocol",
    "Activation",
    "ActivationSpec",
    "CompareParams",
    "CustomSpec",
    "DataParams",
    "ELUSpec",
    "InvalidParametersError",
    "KerasSpec",
    "LeakyReLUSpec",
    "ModelParams",
    "OptimizerParams",
    "PReLUSpec",
    "ProjectParameters",
    "RReLUSpec",
    "ReLUSpec",
    "TrainingParams",
    "TuningParams",
    "check_batch_size",
    "check_custom_layers",
    "check_subsample",
    "training_images",
    "validate_parameters",
]
