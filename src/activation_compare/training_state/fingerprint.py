"""What a checkpoint was trained on: the training fingerprint, and how two of them differ.

A checkpoint is valid only for the model, data and training parameters it was
trained with. :func:`training_fingerprint` lists those as flat ``name -> value``
pairs (JSON values, so ``state.json`` keeps them and a log line can say which
one changed); :func:`fingerprint_id` turns them into the short name of the
checkpoint's folder (``06_models/checkpoints/<model>/<fingerprint id>/``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from activation_compare.datasets.types import array_digest

# Training parameters that do not change what a model learns. ``epochs`` is
# left out on purpose: a longer training continues a shorter one.
NOT_FINGERPRINTED = frozenset({"epochs", "seeds", "verbose", "retrain", "jit_compile", "deterministic"})
# A custom layer's code: ``model.code.<module>:<class>`` -> the digest of its package's files.
CODE_PREFIX = "model.code."


def data_digest(split: Any) -> str:
    """The digest of a split's images and labels.

    Uses the split's own cached ``content_digest`` when it has one
    (:class:`~activation_compare.datasets.types.LabelledImages`): the training
    set is shared by every model of a run and can be 600 MB.
    """
    cached = getattr(split, "content_digest", None)
    if isinstance(cached, str):
        return cached
    return f"{array_digest(split.images)[:16]}-{array_digest(split.labels)[:16]}"


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _without_names(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_names(v) for k, v in value.items() if k != "name"}
    if isinstance(value, (list, tuple)):
        return [_without_names(v) for v in value]
    return value


def model_digest(model: Any) -> str:
    """The model's name and its layers' classes and configs, in order.

    Layer names are left out: Keras numbers unnamed layers per process
    (``dense``, ``dense_1``...), which says nothing about the model.
    """
    layers = [
        (f"{type(layer).__module__}.{type(layer).__qualname__}", _without_names(layer.get_config()))
        for layer in model.layers
    ]
    text = json.dumps({"name": model.name, "layers": layers}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def custom_code(model: Any) -> dict[str, str]:
    """``model.code.<module>:<class>`` -> the digest of the package's files, per custom layer class of the model."""
    from activation_compare.layers.custom import custom_layer_classes, layer_source

    return {
        f"{CODE_PREFIX}{cls.__module__}:{cls.__qualname__}": layer_source(cls.__module__).digest
        for cls in custom_layer_classes(model)
    }


def training_fingerprint(
    model: Any, train_set: Any, validation_set: Any, params: Any, *, seed: int
) -> dict[str, Any]:
    """What a checkpoint is only valid for, as flat ``name -> value`` pairs (JSON values).

    The model's config covers the architecture, the activation's spec, the
    layers' dtype policy and the initialisers' seeds; the data digests cover the source, its path, the
    subsample limits, the validation split and the training-set size. A custom
    activation layer (``{type: custom}``) adds ``model.code.<module>:<class>``,
    the digest of its package's files (:func:`custom_code`): the config names
    the class, not what its code computes.
    """
    from activation_compare.models.precision import model_precision

    parts: dict[str, Any] = {
        "model.config": model_digest(model),
        # In the config too; apart, so that a change of precision is named as such.
        "model.precision": model_precision(model),
        "seed": int(seed),
    }
    # Only for custom layers: the fingerprints of every other model stay as they were.
    parts.update(custom_code(model))
    dumped = params.model_dump(mode="json") if hasattr(params, "model_dump") else dict(params)
    for key, value in sorted(dumped.items()):
        if key not in NOT_FINGERPRINTED:
            _flatten(f"training.{key}", value, parts)
    for name, split in (("train_set", train_set), ("validation_set", validation_set)):
        parts[f"{name}.size"] = len(split)
        parts[f"{name}.content"] = data_digest(split)
    return parts


def fingerprint_id(fingerprint: Mapping[str, Any]) -> str:
    """A short, stable name for a fingerprint (the checkpoint folder's name)."""
    text = json.dumps(dict(fingerprint), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What changed from ``old`` to ``new``, one phrase per setting, for log lines."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, "<unset>"), new.get(key, "<unset>")
        if before == after:
            continue
        if key == "model.config":
            changes.append("the model (architecture or activation parameters) changed")
        elif key.startswith(CODE_PREFIX):
            layer = key.removeprefix(CODE_PREFIX)
            changes.append(
                f"the code of the custom layer {layer} changed" if key in old and key in new
                else f"the custom layer {layer} was {'added' if key in new else 'removed'}"
            )
        elif key.endswith(".content") and old.get(key.replace(".content", ".size")) == new.get(
            key.replace(".content", ".size")
        ):
            changes.append(f"the {key.split('.')[0].replace('_', ' ')} changed (same size, other images)")
        elif not key.endswith(".content"):
            changes.append(f"{key} changed from {before!r} to {after!r}")
    return changes or ["the fingerprint changed"]
