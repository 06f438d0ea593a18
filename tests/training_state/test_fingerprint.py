"""The training fingerprint of a model with a user's own layer: its code is part of it.

A checkpoint is reused only for the same fingerprint; a custom layer's config
names its class, not what its code computes, so the digest of the layer's
package files is in the fingerprint (``model.code.<module>:<class>``).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from custom_layer import custom_entry, write_layer_package

from activation_compare.datasets.types import LabelledImages, array_digest
from activation_compare.models import build_seed_cnn
from activation_compare.params import TrainingParams
from activation_compare.training_state.fingerprint import (
    data_digest,
    differences,
    fingerprint_id,
    training_fingerprint,
)

PACKAGE = "userlayers_fingerprint"
LAYER = f"{PACKAGE}.layers:Swish"


@pytest.fixture
def package(tmp_path):
    root = write_layer_package(tmp_path, PACKAGE)
    sys.path.insert(0, str(tmp_path))
    yield root
    sys.path.remove(str(tmp_path))


def _images(n: int = 4) -> LabelledImages:
    rng = np.random.default_rng(0)
    return LabelledImages(rng.random((n, 32, 32, 3), dtype=np.float32), np.arange(n, dtype=np.int64) % 10)


def _fingerprint(activation) -> dict:
    data = _images()
    return training_fingerprint(build_seed_cnn(activation, seed=0), data, data, TrainingParams(), seed=0)


def test_a_custom_layers_code_is_in_the_fingerprint_and_any_change_of_its_package_changes_it(package):
    before = _fingerprint(custom_entry(PACKAGE))
    assert list(k for k in before if k.startswith("model.code.")) == [f"model.code.{LAYER}"]
    assert _fingerprint(custom_entry(PACKAGE)) == before  # stable

    # The layer's own module changes: the model's config is the same, the fingerprint is not.
    (package / "layers.py").write_text((package / "layers.py").read_text().replace("inputs * keras", "1.0 * inputs * keras"))
    edited = _fingerprint(custom_entry(PACKAGE))
    assert edited["model.config"] == before["model.config"]
    assert fingerprint_id(edited) != fingerprint_id(before)
    assert differences(before, edited) == [f"the code of the custom layer {LAYER} changed"]

    # Another module of its package (a constant the layer uses) changes it too.
    (package / "scale.py").write_text("BETA_SCALE = 2.0\n")
    assert _fingerprint(custom_entry(PACKAGE))[f"model.code.{LAYER}"] != edited[f"model.code.{LAYER}"]


def test_compiled_files_are_not_code(package):
    before = _fingerprint(custom_entry(PACKAGE))
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "extra.cpython-311.pyc").write_bytes(b"\0" * 16)
    assert _fingerprint(custom_entry(PACKAGE)) == before


def test_a_custom_layers_arguments_are_in_the_models_config(package):
    one, two = _fingerprint(custom_entry(PACKAGE, beta=1.0)), _fingerprint(custom_entry(PACKAGE, beta=2.0))
    assert one["model.config"] != two["model.config"]
    assert differences(one, two) == ["the model (architecture or activation parameters) changed"]


@pytest.mark.parametrize("activation", ["relu", "rrelu", {"type": "keras", "name": "gelu"}])
def test_the_projects_and_keras_layers_add_no_code_entry(activation):
    """Their code is the installed project's and Keras': the fingerprints of existing models stay as they were."""
    assert not [k for k in _fingerprint(activation) if k.startswith("model.code.")]


def test_the_data_digest_is_the_datasets_array_digest():
    data = _images()
    assert data.content_digest == f"{array_digest(data.images)[:16]}-{array_digest(data.labels)[:16]}"

    class Split:  # any object with images and labels, without a cached digest
        images, labels = data.images, data.labels

    assert data_digest(Split()) == data.content_digest
