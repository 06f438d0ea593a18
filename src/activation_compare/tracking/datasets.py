"""The data a model was trained, validated and tested on, as MLflow datasets (``mlflow.data``).

Each split a model's nodes read (``train_set``, ``validation_set``,
``test_set``) is recorded as a run input: an MLflow dataset named
``<source>-<split>`` (``cifar10-train``), its digest the project's content
fingerprint of the images and labels (:attr:`LabelledImages.content_digest`,
the one the training fingerprint uses), its source where the images came from
(the archive or folder ``data.path``, CIFAR-10's URL, or the synthetic
generator), tagged ``mlflow.data.context`` = ``train`` / ``validation`` /
``test``. A model's final metrics name the dataset they were measured on
(:func:`metric_dataset`), which is what MLflow's model page lists under
"Datasets used".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from activation_compare.identity import TEST_SET, TRAIN_SET, VALIDATION_SET
from activation_compare.params import DataParams
from activation_compare.tracking.store import Store

CONTEXT_TAG = "mlflow.data.context"
# Catalog name of a split -> its context.
SPLITS = {TRAIN_SET: "train", VALIDATION_SET: "validation", TEST_SET: "test"}


def source_of(data: DataParams) -> tuple[str, str, str]:
    """The data's kind (``cifar10`` …), MLflow source type and source JSON, from the ``data`` parameters."""
    kind, path = str(data.source), data.path
    if path:
        return kind, "local", json.dumps({"uri": str(path)})
    if kind == "cifar10":
        from activation_compare.datasets.cifar10_binary import CIFAR10_URL  # a second to import: CIFAR-10 only

        return kind, "http", json.dumps({"url": CIFAR10_URL})
    return kind, "code", json.dumps({"tags": {"generator": f"activation_compare.datasets.{kind}"}})


def dataset_inputs(data: DataParams, inputs: Mapping[str, Any]) -> list[Any]:
    """The splits among a node's inputs as MLflow dataset inputs."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    kind, source_type, source = source_of(data)
    found = []
    for name, context in SPLITS.items():
        split = inputs.get(name)
        digest = getattr(split, "content_digest", None)
        if not isinstance(digest, str):
            continue
        profile = json.dumps({"images": len(split), "shape": list(getattr(split, "images").shape[1:])})
        dataset = Dataset(f"{kind}-{context}", digest, source_type, source, profile=profile)
        found.append(DatasetInput(dataset, tags=[InputTag(CONTEXT_TAG, context)]))
    return found


def log_datasets(store: Store, run_id: str, data: DataParams, inputs: Mapping[str, Any]) -> None:
    """Record the splits among ``inputs`` as inputs of the run (each once)."""
    found = dataset_inputs(data, inputs)
    if not found:
        return
    have = {(d.name, d.digest) for d in run_datasets(store, run_id).values()}
    new = [d for d in found if (d.dataset.name, d.dataset.digest) not in have]
    if new:
        store.client.log_inputs(run_id, datasets=new)


def run_datasets(store: Store, run_id: str) -> dict[str, Any]:
    """The run's datasets by context (``train``, ``validation``, ``test``): the latest of each."""
    run = store.client.get_run(run_id)
    found: dict[str, Any] = {}
    for item in (run.inputs.dataset_inputs if run.inputs else []) or []:
        context = next((t.value for t in item.tags if t.key == CONTEXT_TAG), None)
        if context:
            found[context] = item.dataset
    return found


# Which dataset a final metric was measured on.
_METRIC_CONTEXT = {
    "test_accuracy": "test",
    "final_val_accuracy": "validation",
    "best_val_accuracy": "validation",
    "best_epoch": "validation",
    "final_train_accuracy": "train",
}


def metric_dataset(key: str, datasets: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The (name, digest) of the dataset a report metric was measured on, if the run recorded it."""
    context = _METRIC_CONTEXT.get(key) or ("test" if key.startswith("test_accuracy_class_") else None)
    dataset = datasets.get(context) if context else None
    return (dataset.name, dataset.digest) if dataset is not None else (None, None)
