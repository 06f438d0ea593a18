"""What a run records as MLflow params: the run's parameters, a model's, the data's sizes.

MLflow params are strings written once; :func:`param_value` is how a value
becomes one, and :func:`truncate` keeps any text within MLflow's limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from activation_compare.identity import TEST_SET, TRAIN_SET, VALIDATION_SET, ModelKey

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


def shared_params(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameters as MLflow params (``parameters``: the validated schema, as JSON)."""
    data, training = parameters.get("data") or {}, parameters.get("training") or {}
    optimizer = training.get("optimizer") or {}
    compare, model = parameters.get("compare") or {}, parameters.get("model") or {}
    validation_split = data.get("validation_split", 0.0) or 0.0
    tuning = parameters.get("tuning") or {}
    rigorous = compare.get("protocol") == "rigorous"
    params = {
        "compare.activations": compare.get("activations"),
        "compare.baseline": compare.get("baseline"),
        "compare.confidence_level": compare.get("confidence_level"),
        "training.seeds": training.get("seeds"),
        "training.epochs": training.get("epochs"),
        "training.batch_size": training.get("batch_size"),
        "training.optimizer": optimizer.get("name"),
        "training.learning_rate": optimizer.get("learning_rate"),
        "model.architecture": model.get("architecture"),
        "model.precision": model.get("precision"),
        "data.source": data.get("source"),
        "data.path": data.get("path"),
        "data.limit_train": data.get("limit_train"),
        "data.limit_test": data.get("limit_test"),
        "data.validation_split": validation_split,
        "data.validation_mode": "test_set" if float(validation_split) == 0 and not rigorous else "holdout",
        "data.split_seed": data.get("split_seed"),
        "compare.protocol": compare.get("protocol"),
        "tensorflow_version": version("tensorflow"),
        "keras_version": version("keras"),
        "mlflow_version": version("mlflow"),
    }
    if rigorous:  # the learning rates are tuned: the grid, not training's one rate
        params["training.learning_rate"] = None
        params.update({f"tuning.{k}": tuning.get(k) for k in ("learning_rates", "epochs", "seed", "validation_size")})
    return {k: v for k, v in params.items() if v is not None}


def model_params(parameters: Mapping[str, Any], key: ModelKey) -> dict[str, Any]:
    """One model's params: its activation and settings, and the run's training and data params."""
    spec = (parameters.get("activations") or {}).get(key.activation) or {}
    params: dict[str, Any] = {"activation": key.activation, "seed": key.seed}
    if key.trial is not None:
        params["trial"] = key.trial
    params.update({f"activation.{name}": value for name, value in spec.items()})
    shared = shared_params(parameters)
    params.update({k: v for k, v in shared.items() if k not in _COMPARISON_PARAMS})
    params.update(_tuned_params(parameters, key))
    return {k: v for k, v in params.items() if v is not None}


def _tuned_params(parameters: Mapping[str, Any], key: ModelKey) -> dict[str, Any]:
    """Under the rigorous protocol: a trial's own learning rate and epochs; a final model's are chosen later.

    A final model's learning rate is the one its activation's tuning chose, logged
    when its training starts (it is an input of the training node, not a parameter).
    """
    if (parameters.get("compare") or {}).get("protocol") != "rigorous":
        return {}
    if key.trial is None:
        return {"training.learning_rate": None}
    tuning = parameters.get("tuning") or {}
    epochs = tuning.get("epochs") or (parameters.get("training") or {}).get("epochs")
    return {"training.learning_rate": tuning["learning_rates"][key.trial], "training.epochs": epochs}


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
    from activation_compare.models.precision import model_precision

    return {"model.dtype_policy": model_precision(model)}


def param_value(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)
