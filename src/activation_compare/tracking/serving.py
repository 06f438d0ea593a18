"""Serving a logged model: MLflow's pyfunc loader for this project's Keras models, and its input contract.

MLflow's Keras flavour loads the ``.keras`` file with ``keras.saving.load_model``,
which finds RReLU (``activation_compare>RReLU``) only if
``activation_compare.layers`` has been imported in that process: Keras imports
no module of a custom layer by itself, and the Keras 3 flavour keeps no
``custom_objects``. ``mlflow models serve`` and ``mlflow.pyfunc.load_model`` in a
fresh process know nothing of this project, so every model the project logs
(:func:`use_project_loader`) keeps its Keras flavour and gets a pyfunc flavour
whose loader is this module, with the package's own code bundled in the model
(``code/activation_compare``, MLflow puts it on ``sys.path`` first): the served
model runs the layer code it was trained with, and needs only the Python
packages in its ``requirements.txt``. A model with a user's own activation layer
(``{type: custom}``) also bundles that layer's top-level package
(``code/<package>``: the files whose digest is in the training fingerprint,
:func:`~activation_compare.layers.custom.layer_source`), and the loader imports
the modules its ``.keras`` file names before loading it, which registers the
layer with Keras.

**The served model's contract** (the pyfunc flavour; the Keras flavour still
takes ``x / 255`` floats, as in training):

- input: pixel values as users have them, integers 0-255, shape
  ``(N, 32, 32, 3)`` (channels last, RGB), declared by the model's signature
  (a ``uint8`` tensor spec) and its input example. As JSON:
  ``{"inputs": [[[[r, g, b], … 32 pixels], … 32 rows], … N images]}``.
  The model divides by 255 with the pipeline's own normalisation
  (:func:`~activation_compare.datasets.types.scale_pixels`).
- output, per image: ``{"class": "<name>", "probabilities": {"<name>": p, …}}``
  (every class, in the training data's order).
- refused with HTTP 400 and a one-line reason (:class:`InvalidPixels`):
  values that are not integers, outside 0-255, NaN or infinite, and any other
  shape.

MLflow internals this relies on, all here and tested in
``tests/tracking/test_serve.py``: the signature is marked as one MLflow's
scoring server hands over unparsed (:func:`pixels_signature`), or the server
would cast the JSON to ``uint8`` itself, turning 1.5 into 1 and 300 into an
``OverflowError``; and the server rewrites a refusal's message to echo the whole
request, which :class:`InvalidPixels` keeps to its one line.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

from activation_compare.private_apis import mlflow_load_keras_pyfunc, mlflow_pass_requests_unparsed

CODE_FOLDER = "code"
CLASS_NAMES_FILE = "class_names.json"
_PYFUNC = "python_function"
_IMAGE_SHAPE = (32, 32, 3)
_SHOWN = 3  # offending values named in a refusal


def pixels_signature() -> Any:
    """The served model's signature: a ``uint8`` tensor ``(-1, 32, 32, 3)``, handed to the model unparsed.

    MLflow's scoring server casts a request to the signature's dtype before the
    model sees it (``np.array(data, dtype=uint8)``), which truncates 1.5 to 1;
    a signature marked as coming from type hints is passed through as sent,
    and :func:`check_pixels` checks it instead (MLflow-private: the flag).
    """
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *_IMAGE_SHAPE))]))
    return mlflow_pass_requests_unparsed(signature)


class InvalidPixels(MlflowException):
    """A request the model refuses (HTTP 400): its message stays the one-line reason.

    MLflow's scoring server prefixes the message of an error raised by
    ``predict`` with the whole request (``Failed to predict data '…'``);
    the reason alone is what a user needs, so the rewrite is ignored.
    """

    def __init__(self, reason: str) -> None:
        self._reason = reason
        super().__init__(reason, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._reason

    @message.setter
    def message(self, value: str) -> None:  # MLflow's rewrite (see the class docstring)
        pass


def check_pixels(data: Any) -> Any:
    """``data`` as a ``uint8`` array ``(N, 32, 32, 3)``, or :class:`InvalidPixels` with a one-line reason."""
    import numpy as np
    import pandas as pd

    invalid = InvalidPixels
    if isinstance(data, dict) and len(data) == 1:  # {"<name>": …}: one named array
        data = next(iter(data.values()))
    if isinstance(data, pd.DataFrame):
        raise invalid(
            "expected pixel values as an array of shape (N, 32, 32, 3) "
            '(JSON: {"inputs": [[[[r, g, b], ...]]]}), got a table'
        )
    try:
        array = np.asarray(data)
    except ValueError:
        raise invalid("expected pixel values as an array of shape (N, 32, 32, 3); the nested lists are ragged") from None
    if array.dtype == object or array.dtype.kind not in "uif":
        kind = "ragged lists or values that are not numbers" if array.dtype == object else f"values of type {array.dtype}"
        raise invalid(f"expected integer pixel values 0-255 of shape (N, 32, 32, 3), got {kind}")
    if array.ndim != 4 or array.shape[1:] != _IMAGE_SHAPE or array.shape[0] == 0:
        raise invalid(f"expected pixel values of shape (N, 32, 32, 3) with N >= 1, got shape {array.shape}")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            raise invalid(f"pixel values must be integers 0-255; got NaN or infinite values ({int(bad.sum())})")
        fractional = array != np.floor(array)
        if fractional.any():
            shown = ", ".join(repr(float(v)) for v in array[fractional][:_SHOWN])
            raise invalid(f"pixel values must be integers 0-255; got non-integer values ({shown})")
    out = (array < 0) | (array > 255)
    if out.any():
        shown = ", ".join(str(v) for v in array[out][:_SHOWN].tolist())
        raise invalid(f"pixel values must be integers 0-255; got values out of range ({shown})")
    return array.astype(np.uint8)


class ServedModel:
    """The pyfunc model: pixels 0-255 in, each image's class and its probabilities by class name out."""

    def __init__(self, model: Any, class_names: Sequence[str]) -> None:
        self.model = model
        self.class_names = [str(name) for name in class_names]

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        import numpy as np

        from activation_compare.datasets.types import scale_pixels

        pixels = check_pixels(data)
        probabilities = np.asarray(self.model.predict(scale_pixels(pixels), verbose=0), dtype=np.float64)
        names = self.class_names or [str(i) for i in range(probabilities.shape[1])]
        return [
            {
                "class": names[int(row.argmax())],
                "probabilities": {name: float(p) for name, p in zip(names, row)},
            }
            for row in probabilities
        ]


def _model_root(path: str) -> Path:
    """The model folder of the path MLflow hands the loader (the folder, or its ``data`` folder)."""
    from mlflow.models.model import MLMODEL_FILE_NAME

    here = Path(path)
    return here if (here / MLMODEL_FILE_NAME).is_file() else here.parent


def _keras_file(model_dir: Path) -> Path | None:
    """The ``.keras`` file MLflow's Keras flavour saved in a model folder."""
    found = sorted(Path(model_dir).rglob("*.keras"))
    return found[0] if found else None


def _load_pyfunc(path: str) -> ServedModel:
    """MLflow's pyfunc entry point: register the project's and the custom layers, load as the Keras flavour does, wrap."""
    import activation_compare.layers  # noqa: F401 - registers RReLU with keras.saving
    from activation_compare.layers.custom import import_layer_modules

    keras_file = _keras_file(_model_root(path))
    if keras_file is not None:
        import_layer_modules(keras_file)  # the bundled custom layers' modules (code/ is on sys.path)
    keras_model = mlflow_load_keras_pyfunc(path).get_raw_model()
    names_file = _model_root(path) / CLASS_NAMES_FILE
    class_names = json.loads(names_file.read_text()) if names_file.is_file() else []
    return ServedModel(keras_model, class_names)


def use_project_loader(model_dir: Path, class_names: Sequence[str] | None = None) -> None:
    """Point a saved Keras model's pyfunc flavour at this module, bundle the code it needs and the class names.

    ``model_dir`` is a model folder written by ``mlflow.keras.save_model``. The
    code: this package, and the top-level package (or module) of every custom
    layer the saved model holds, as :func:`~activation_compare.layers.custom.layer_source`
    finds it in this process (the one that trained the model).
    """
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    import activation_compare
    from activation_compare.layers.custom import keras_file_modules, layer_source

    package = Path(activation_compare.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    shutil.copytree(package, Path(model_dir, CODE_FOLDER, package.name), ignore=ignore)
    keras_file = _keras_file(Path(model_dir))
    custom = keras_file_modules(keras_file) if keras_file is not None else []
    for source in {layer_source(module).root: layer_source(module) for module in custom}.values():
        target = Path(model_dir, CODE_FOLDER, source.root.name)
        if source.root.is_dir():
            shutil.copytree(source.root, target, ignore=ignore)
        else:
            shutil.copy2(source.root, target)
    Path(model_dir, CLASS_NAMES_FILE).write_text(json.dumps([str(n) for n in class_names or []]))
    model = Model.load(str(Path(model_dir, MLMODEL_FILE_NAME)))
    model.flavors[_PYFUNC]["loader_module"] = __name__
    model.flavors[_PYFUNC]["code"] = CODE_FOLDER
    model.save(str(Path(model_dir, MLMODEL_FILE_NAME)))
