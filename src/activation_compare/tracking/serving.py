"""Serving a logged model: MLflow's pyfunc loader for this project's Keras models.

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
packages in its ``requirements.txt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

CODE_FOLDER = "code"
_PYFUNC = "python_function"


def _load_pyfunc(path: str) -> Any:
    """MLflow's pyfunc entry point: register the project's layers, then load as the Keras flavour does."""
    import activation_compare.layers  # noqa: F401 - registers RReLU with keras.saving
    from mlflow.keras.load import _load_pyfunc as load_keras_pyfunc

    return load_keras_pyfunc(path)


def use_project_loader(model_dir: Path) -> None:
    """Point a saved Keras model's pyfunc flavour at this module, and bundle the package's code.

    ``model_dir`` is a model folder written by ``mlflow.keras.save_model``.
    """
    from mlflow.models import Model
    from mlflow.models.model import MLMODEL_FILE_NAME

    import activation_compare

    package = Path(activation_compare.__file__).resolve().parent
    shutil.copytree(
        package,
        Path(model_dir, CODE_FOLDER, package.name),
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    model = Model.load(str(Path(model_dir, MLMODEL_FILE_NAME)))
    model.flavors[_PYFUNC]["loader_module"] = __name__
    model.flavors[_PYFUNC]["code"] = CODE_FOLDER
    model.save(str(Path(model_dir, MLMODEL_FILE_NAME)))
