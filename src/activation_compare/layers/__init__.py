"""Custom Keras layers; importing this package registers them for ``keras.saving``."""

from activation_compare.layers.rrelu import RReLU

__all__ = ["RReLU"]
