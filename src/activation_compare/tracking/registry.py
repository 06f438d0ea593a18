"""MLflow's Model Registry: one registered model per activation, one version per trained model.

- **Name**: ``<experiment>-<activation>``: ``activation-compare-rrelu`` for the
  default experiment, ``activation-compare-smoke-rrelu`` for the smoke
  environment's, so models trained on synthetic data never compete with real ones.
  Any experiment name works: names are never pasted into MLflow filter strings
  (versions are looked up by run id, fingerprint or configuration id, and
  matched to the name exactly).
- **Version**: one per trained model of a ``compare`` run, registered once it
  has been evaluated (a model that never reached its evaluation is not
  registered), from the logged model its run logged: the logged model's tag
  ``mlflow.modelVersions`` names the version (MLflow's model page shows it),
  and the version's source is the logged model's artifacts, its tag
  ``model_id`` the logged model's id. A continued run registers its model once,
  and a rerun that reuses a finished model (same training fingerprint, same
  epochs) registers nothing: its logged model is linked to the existing version.
  Tags: seed, test accuracy, best validation accuracy and epoch, activation,
  Kedro run id, environment, data source, epochs, training fingerprint,
  ``configuration`` (an id) and ``configuration.settings`` (what it stands for).
- **Configuration**: what makes two models comparable: the activation and its
  settings, architecture, precision, epochs, batch size, optimizer, learning
  rate (the tuning grid under the rigorous protocol), data source, limits,
  validation split, protocol, and the digests of the train, validation and test
  sets. Seeds are what the versions of one configuration differ in.
- **Aliases**: ``best-<configuration>`` is the best version of each
  configuration; ``best`` is the best version of the configuration of the model
  registered last (``models:/activation-compare-rrelu@best``): it never
  compares models trained under different settings. "Best" is the highest
  test accuracy, or, when validation data is held out of the training set
  (the rigorous protocol, or ``data.validation_split`` > 0), the highest best
  validation accuracy (the test set never chooses); the older version on a tie.

Tuning trials (rigorous protocol) are not registered. Registering never stops
a run: a failure is a warning, like any other tracking call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from typing import Any

from activation_compare.identity import TAG_SEED, ModelKey
from activation_compare.reports import Report
from activation_compare.tracking.runs import TAG_KEDRO_ENV, TAG_KEDRO_RUN_ID, RunRef
from activation_compare.tracking.store import Store, store_lock

logger = logging.getLogger(__name__)

BEST_ALIAS = "best"
TAG_TEST_ACCURACY = "test_accuracy"
TAG_BEST_VAL_ACCURACY = "best_val_accuracy"
TAG_BEST_EPOCH = "best_epoch"
TAG_SELECTION_METRIC = "selection_metric"  # the tag "best" compares: test_accuracy or best_val_accuracy
TAG_CONFIGURATION = "configuration"
TAG_CONFIGURATION_SETTINGS = "configuration.settings"
TAG_FINGERPRINT = "activation_compare.fingerprint"  # the training fingerprint (resume's run tag)
TAG_EPOCHS_TRAINED = "training.epochs_trained"
TAG_MODEL_ID = "model_id"
TAG_MODEL_VERSIONS = "mlflow.modelVersions"  # MLflow's own: a logged model's registered versions
# Version tags copied from the model's run: its tags, then its params.
_RUN_TAGS = ("activation", TAG_KEDRO_RUN_ID, TAG_KEDRO_ENV)
_RUN_PARAMS = ("data.source", "training.epochs")
# The run params that make two models comparable (plus every activation.* and tuning.* param).
CONFIGURATION_PARAMS = (
    "activation",
    "model.architecture",
    "model.precision",
    "model.dtype_policy",
    "training.epochs",
    "training.batch_size",
    "training.optimizer",
    "training.learning_rate",
    "data.source",
    "data.path",
    "data.limit_train",
    "data.limit_test",
    "data.validation_split",
    "data.validation_mode",
    "data.split_seed",
    "compare.protocol",
)
_CONFIGURATION_PREFIXES = ("activation.", "tuning.")
# Values the project itself makes (run ids, configuration ids, fingerprint folder names
# such as ``3f9c…-epochs8``): nothing in them can end or escape a quoted filter value.
_ID = re.compile(r"^[0-9A-Za-z_-]+$")


def registered_model_name(experiment_name: str, activation: str) -> str:
    """The registered model of an activation's models in an experiment, e.g. ``activation-compare-rrelu``."""
    return f"{experiment_name}-{activation}"


def best_alias(configuration: str) -> str:
    """The alias of one configuration's best version: ``best-<configuration id>``."""
    return f"{BEST_ALIAS}-{configuration}"


def register_evaluated(store: Store, run: RunRef, key: ModelKey, report: Report) -> Any:
    """Register the model of ``run`` once evaluated, and move the ``best`` aliases; never raises.

    Returns the model version (the existing one for a continued run or a reused
    model), or None (a trial, no logged model, or a failure, logged as a warning).
    """
    if key.trial is not None:
        return None
    try:
        return _register(store, run, key, report)
    except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
        logger.warning("MLflow: could not register the model of %s: %s", key.run_name, exc)
        return None


def configuration(params: Mapping[str, str], datasets: Mapping[str, Any]) -> dict[str, str]:
    """What makes models comparable, from a model run's params and its datasets (by context)."""
    rigorous = params.get("compare.protocol") == "rigorous"
    settings = {
        name: value
        for name, value in params.items()
        if name in CONFIGURATION_PARAMS or name.startswith(_CONFIGURATION_PREFIXES)
    }
    if rigorous:  # the rate each run's tuning chose: the grid (tuning.*) is the setting
        settings.pop("training.learning_rate", None)
    for context, dataset in datasets.items():
        settings[f"data.{context}"] = f"{dataset.name}@{dataset.digest}"
    return dict(sorted(settings.items()))


def configuration_id(settings: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(dict(settings), sort_keys=True).encode()).hexdigest()[:12]


def selection_metric(params: Mapping[str, str]) -> str:
    """The report metric that chooses ``best``: validation accuracy when validation is held out, else test."""
    held_out = params.get("compare.protocol") == "rigorous" or params.get("data.validation_mode") == "holdout"
    return TAG_BEST_VAL_ACCURACY if held_out else TAG_TEST_ACCURACY


def _register(store: Store, run: RunRef, key: ModelKey, report: Report) -> Any:
    from activation_compare.tracking.datasets import run_datasets

    logged = logged_model(store, run.run_id)
    if logged is None:
        logger.info("MLflow: %s logged no model (log_models: false?); nothing to register", key.run_name)
        return None
    name = registered_model_name(store.settings.experiment_name, key.activation)
    client = store.client
    data = client.get_run(run.run_id).data
    metric = selection_metric(data.params)
    score = report.metrics()[metric]
    if not math.isfinite(score):
        logger.warning("MLflow: %s has no finite %s; its model is not registered", key.run_name, metric)
        return None
    settings = configuration(data.params, run_datasets(store, run.run_id))
    config = configuration_id(settings)
    tags = _version_tags(data, key, report, metric, settings, config, logged.model_id)
    # SQLite: registering and choosing the best version is one step between processes.
    with store_lock(store.uri, "registry"):
        _ensure_registered_model(client, name, key.activation)
        existing = _existing_version(client, name, run.run_id, tags)
        version = existing or client.create_model_version(
            name,
            # The artifact location, not models:/<id>: MLflow's SQL registry resolves
            # a models:/ source against the process's global tracking URI, not this store.
            source=logged.artifact_location,
            run_id=run.run_id,
            tags=tags,
            model_id=logged.model_id,
        )
        link_logged_model(client, logged.model_id, name, str(version.version))
        best = update_best(client, name, config)
    if existing is not None and existing.run_id != run.run_id:
        logger.info(
            "MLflow: %s reuses the model of %s version %s (run %s); not registered again",
            key.run_name, name, existing.version, existing.run_id,
        )
    else:
        logger.info(
            "MLflow: registered %s as %s version %s (%s %.4f); %s@%s is version %s",
            key.run_name, name, version.version, metric, score, name, BEST_ALIAS, best,
        )
    return version


def _existing_version(client: Any, name: str, run_id: str, tags: Mapping[str, str]) -> Any:
    """The version of this model already registered: by its run, or by training fingerprint and epochs."""
    found = [v for v in client.search_model_versions(f"run_id = '{_id(run_id)}'") if v.name == name]
    fingerprint = tags.get(TAG_FINGERPRINT)
    if not found and fingerprint:
        found = [
            v
            for v in client.search_model_versions(f"tags.`{TAG_FINGERPRINT}` = '{_id(fingerprint)}'")
            if v.name == name and v.tags.get(TAG_EPOCHS_TRAINED) == tags.get(TAG_EPOCHS_TRAINED)
        ]
    return min(found, key=lambda v: int(v.version)) if found else None


def _id(value: str) -> str:
    """A value for a filter string: an id of letters, digits, ``-`` and ``_``; anything else is refused."""
    if not _ID.match(value):
        raise ValueError(f"not an id: {value!r}")
    return value


def link_logged_model(client: Any, model_id: str, name: str, version: str) -> None:
    """Name a registered version on its logged model (``mlflow.modelVersions``, as ``mlflow.register_model`` does)."""
    current = client.get_logged_model(model_id).tags.get(TAG_MODEL_VERSIONS)
    try:
        versions = json.loads(current) if current else []
    except ValueError:
        versions = []
    entry = {"name": name, "version": version}
    if entry not in versions:
        client.set_logged_model_tags(model_id, {TAG_MODEL_VERSIONS: json.dumps([*versions, entry])})


def logged_model(store: Store, run_id: str) -> Any:
    """The newest finished model logged by ``run_id`` (``artifacts.log_model``), or None (the run's outputs)."""
    from mlflow.entities import LoggedModelStatus

    run = store.client.get_run(run_id)
    outputs = (run.outputs.model_outputs if run.outputs else None) or []
    models = [store.client.get_logged_model(output.model_id) for output in outputs]
    models = [m for m in models if m.status == LoggedModelStatus.READY and m.source_run_id == run_id]
    return max(models, key=lambda m: m.creation_timestamp) if models else None


def _ensure_registered_model(client: Any, name: str, activation: str) -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode

    try:
        client.get_registered_model(name)
        return
    except MlflowException:
        pass
    try:
        client.create_registered_model(
            name,
            tags={"activation": activation},
            description=(
                f"The {activation} CNN of activation-compare, one version per trained model "
                f"(tags: seed, test_accuracy, configuration); alias '{BEST_ALIAS}-<configuration>': the "
                f"best of a configuration (test accuracy, or validation accuracy when validation is held "
                f"out); '{BEST_ALIAS}': the best of the configuration registered last."
            ),
        )
    except MlflowException as exc:  # another process (a tracking server has no lock) made it meanwhile
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def _version_tags(
    data: Any,
    key: ModelKey,
    report: Report,
    metric: str,
    settings: Mapping[str, str],
    config: str,
    model_id: str,
) -> dict[str, str]:
    from activation_compare.tracking.params import truncate

    tags = {
        TAG_SEED: str(key.seed),
        TAG_TEST_ACCURACY: repr(float(report.test_accuracy)),
        TAG_SELECTION_METRIC: metric,
        TAG_CONFIGURATION: config,
        TAG_CONFIGURATION_SETTINGS: truncate(json.dumps(dict(settings))),
        TAG_MODEL_ID: model_id,
        TAG_BEST_VAL_ACCURACY: repr(float(report.best_val_accuracy)),
        TAG_BEST_EPOCH: repr(int(report.best_epoch)),
        TAG_EPOCHS_TRAINED: str(report.epochs_trained),
    }
    if data.tags.get(TAG_FINGERPRINT):
        tags[TAG_FINGERPRINT] = data.tags[TAG_FINGERPRINT]
    tags.update({name: data.tags[name] for name in _RUN_TAGS if data.tags.get(name)})
    tags.update({name: data.params[name] for name in _RUN_PARAMS if data.params.get(name)})
    return tags


def update_best(client: Any, name: str, config: str) -> str | None:
    """Point ``best`` and ``best-<config>`` at the best version of configuration ``config``; its number.

    Only versions of that configuration compete, each by its own selection
    metric's tag (they share it: the metric follows from the configuration);
    the older version wins a tie.
    """
    scored = []
    for version in client.search_model_versions(f"tags.`{TAG_CONFIGURATION}` = '{_id(config)}'"):
        if version.name != name:
            continue
        try:
            score = float(version.tags[version.tags[TAG_SELECTION_METRIC]])
        except (KeyError, ValueError):
            continue  # a version registered by hand
        scored.append((score, -int(version.version), str(version.version)))
    if not scored:
        return None
    best = max(scored)[2]
    for alias in (best_alias(config), BEST_ALIAS):
        if _alias_version(client, name, alias) != best:
            client.set_registered_model_alias(name, alias, best)
    return best


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
