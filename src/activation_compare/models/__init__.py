"""Model building: the activation registry and the experiment's CNN."""

from activation_compare.models.activations import (
    ACTIVATION_TYPES,
    activation_layer,
    parse_activation,
)
from activation_compare.models.seed_cnn import SEED_CNN_LAYERS, build_seed_cnn

__all__ = [
    "ACTIVATION_TYPES",
    "SEED_CNN_LAYERS",
    "activation_layer",
    "build_seed_cnn",
    "parse_activation",
]
