"""What a run records as MLflow params: the run's parameters, a model's, the data's sizes.

MLflow params are strings written once; :func:`param_value` is how a value
becomes one, and :func:`truncate` keeps any text within MLflow's limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any

from activation_compare.identity import TEST_SET, TRAIN_SET, VALIDATION_SET, ModelKey
from activation_compare.params import ProjectParameters, Protocol

if TYPE_CHECKING:
    from activation_compare.training_events import TrainingStart

_MAX_TAG_CHARS = 5000
# The catalog's and every model's parameters that describe the whole comparison.
_COMPARISON_PARAMS = ("compare.activations", "compare.baseline", "compare.confidence_level", "training.seeds")


def truncate(text: str, limit: int = _MAX_TAG_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def shared_params(parameters: ProjectParameters) -> dict[str, Any]:
    """The run's parameters as MLflow params."""
    data, training, compare = parameters.data, parameters.training, parameters.compare
    rigorous = compare.protocol is Protocol.RIGOROUS
    params: dict[str, Any] = {
        "compare.activations": list(compare.activations),
        "compare.baseline": compare.baseline,
        "compare.confidence_level": compare.confidence_level,
        "training.seeds": list(training.seeds),
        "training.epochs": training.epochs,
        "training.batch_size": training.batch_size,
        "training.optimizer": training.optimizer.name,
        "training.learning_rate": training.optimizer.learning_rate,
        "model.architecture": parameters.model.architecture,
        "model.precision": parameters.model.precision,
        "data.source": data.source,
        "data.path": data.path,
        "data.limit_train": data.limit_train,
        "data.limit_test": data.limit_test,
        "data.validation_split": data.validation_split,
        "data.validation_mode": "test_set" if float(data.validation_split) == 0 and not rigorous else "holdout",
        "data.split_seed": data.split_seed,
        "compare.protocol": compare.protocol,
        "tensorflow_version": version("tensorflow"),
        "keras_version": version("keras"),
        "mlflow_version": version("mlflow"),
    }
    if rigorous:  # the learning rates are tuned: the grid, not training's one rate
        params["training.learning_rate"] = None
        tuning = parameters.tuning
        params.update({
            "tuning.learning_rates": list(tuning.learning_rates),
            "tuning.epochs": tuning.epochs,
            "tuning.seed": tuning.seed,
            "tuning.validation_size": tuning.validation_size,
        })
    return {k: v for k, v in params.items() if v is not None}


def model_params(parameters: ProjectParameters, key: ModelKey) -> dict[str, Any]:
    """One model's params: its activation and settings, and the run's training and data params.

    Under the rigorous protocol a model's learning rate and epochs are its own
    (a trial's, a final model's chosen rate): the training node computes them,
    and they are logged from its :class:`~activation_compare.training_events.TrainingStart`
    (:func:`training_params`), not here.
    """
    spec = parameters.activations.get(key.activation)
    params: dict[str, Any] = {"activation": key.activation, "seed": key.seed}
    if key.trial is not None:
        params["trial"] = key.trial
    if spec is not None:
        params.update({f"activation.{name}": value for name, value in spec.model_dump(mode="json").items()})
    shared = shared_params(parameters)
    params.update({k: v for k, v in shared.items() if k not in _COMPARISON_PARAMS})
    if parameters.compare.protocol is Protocol.RIGOROUS:
        params.pop("training.learning_rate", None)
        params.pop("training.epochs", None)
    return {k: v for k, v in params.items() if v is not None}


def training_params(start: TrainingStart) -> dict[str, Any]:
    """The settings a model trains with, as its training node computed them (its ``TrainingStart``)."""
    return {"training.learning_rate": start.learning_rate, "training.epochs": start.epochs}


def data_params(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Split sizes from the inputs a node gets; the source's description from the loaded images."""
    info: dict[str, Any] = {
        f"data.{split}_size": len(inputs[name])
        for name, split in ((TRAIN_SET, "train"), (VALIDATION_SET, "validation"), (TEST_SET, "test"))
        if name in inputs and hasattr(inputs[name], "__len__")
    }
    for value in inputs.values():
        description = getattr(value, "description", None)
        if isinstance(description, str) and hasattr(value, "class_names"):
            info["data.description"] = truncate(description, 500)
            info["data.classes"] = len(value.class_names)
    return info


def precision_params(model: Any) -> dict[str, Any]:
    """The dtype policy a model computes in (what ``model.precision`` became on this machine)."""
    if model is None or not hasattr(model, "layers"):
        return {}
    from activation_compare.models.precision import model_precision  # imports TensorFlow: only with a model

    return {"model.dtype_policy": model_precision(model)}


def param_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)
