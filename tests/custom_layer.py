"""A user's own activation layer, written as a user would: a package with a registered Keras layer.

Tests write it into a folder (a temporary one on ``sys.path``, or a project
copy's ``src/``, which Kedro puts on the import path) and name it in an
``activations`` entry as ``{"type": "custom", "layer": "<package>.layers:Swish"}``.
"""

from __future__ import annotations

from pathlib import Path

SWISH = '''\
"""Swish with a fixed beta: x * sigmoid(beta * x)."""

import keras

from {package}.scale import BETA_SCALE


@keras.saving.register_keras_serializable(package="{package}")
class Swish(keras.layers.Layer):
    """x * sigmoid(beta * x)."""

    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta

    def call(self, inputs):
        return inputs * keras.ops.sigmoid(self.beta * BETA_SCALE * inputs)

    def get_config(self):
        return {{**super().get_config(), "beta": self.beta}}
'''


def write_layer_package(folder: Path, package: str = "userlayers", scale: float = 1.0) -> Path:
    """``<folder>/<package>/`` with ``layers.py`` (Swish) and ``scale.py`` (a constant it uses); returns the package."""
    root = Path(folder, package)
    root.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text('"""A user\'s activation layers."""\n')
    (root / "scale.py").write_text(f"BETA_SCALE = {scale!r}\n")
    (root / "layers.py").write_text(SWISH.format(package=package))
    return root


def custom_entry(package: str = "userlayers", **kwargs) -> dict:
    """The ``activations.<name>`` entry of the package's Swish."""
    return {"type": "custom", "layer": f"{package}.layers:Swish", **kwargs}
