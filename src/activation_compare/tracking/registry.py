"""MLflow's Model Registry: one registered model per activation, a version per evaluated model.

- **Name**: ``<experiment>-<activation>``: ``activation-compare-rrelu`` for the
  default experiment, ``activation-compare-smoke-rrelu`` for the smoke
  environment's, so models trained on synthetic data never compete with real ones.
- **Version**: one per model of a ``compare`` run, registered once it has been
  evaluated (a model that never reached its evaluation is not registered),
  from the model its run logged (linked to its logged model id), tagged with its seed,
  test accuracy, activation, Kedro run id, environment, data source and epochs.
  A continued run registers its model once.
- **Alias** ``best``: the version with the highest test accuracy (the older one
  on a tie), moved when a better version arrives:
  ``models:/activation-compare-rrelu@best``.

Tuning trials (rigorous protocol) are not registered. Registering never stops
a run: a failure is a warning, like any other tracking call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from activation_compare.identity import TAG_SEED, ModelKey
from activation_compare.tracking.artifacts import MODEL_ARTIFACT_NAME
from activation_compare.tracking.runs import TAG_KEDRO_ENV, TAG_KEDRO_RUN_ID, RunRef
from activation_compare.tracking.store import Store, store_lock

logger = logging.getLogger(__name__)

BEST_ALIAS = "best"
TAG_TEST_ACCURACY = "test_accuracy"
# Version tags copied from the model's run: its tags, then its params.
_RUN_TAGS = ("activation", TAG_KEDRO_RUN_ID, TAG_KEDRO_ENV)
_RUN_PARAMS = ("data.source", "training.epochs")


def registered_model_name(experiment_name: str, activation: str) -> str:
    """The registered model of an activation's models in an experiment, e.g. ``activation-compare-rrelu``."""
    return f"{experiment_name}-{activation}"


def register_evaluated(store: Store, run: RunRef, key: ModelKey, report: Mapping[str, Any]) -> Any:
    """Register the model of ``run`` once evaluated, and move ``best`` if it is the best; never raises.

    Returns the model version, or None (a trial, no logged model, or a failure, logged as a warning).
    """
    if key.trial is not None:
        return None
    try:
        return _register(store, run, key, report)
    except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
        logger.warning("MLflow: could not register the model of %s: %s", key.run_name, exc)
        return None


def _register(store: Store, run: RunRef, key: ModelKey, report: Mapping[str, Any]) -> Any:
    accuracy = report.get("test_accuracy")
    if not isinstance(accuracy, (int, float)):
        logger.warning("MLflow: %s has no test accuracy; its model is not registered", key.run_name)
        return None
    logged = logged_model(store, run.run_id)
    if logged is None:
        logger.info("MLflow: %s logged no model (log_models: false?); nothing to register", key.run_name)
        return None
    name = registered_model_name(store.settings.experiment_name, key.activation)
    client = store.client
    # SQLite: registering and choosing the best version is one step between processes.
    with store_lock(store.uri, "registry"):
        _ensure_registered_model(client, name, key.activation)
        existing = client.search_model_versions(f"name = '{name}' AND run_id = '{run.run_id}'")
        version = existing[0] if existing else client.create_model_version(
            name,
            # The artifact location, not models:/<id>: MLflow's SQL registry resolves
            # a models:/ source against the process's global tracking URI, not this store.
            source=logged.artifact_location,
            run_id=run.run_id,
            tags=_version_tags(store, run.run_id, key, float(accuracy)),
            model_id=logged.model_id,
        )
        best = update_best(client, name)
    logger.info(
        "MLflow: registered %s as %s version %s (test accuracy %.4f); %s@%s is version %s",
        key.run_name, name, version.version, accuracy, name, BEST_ALIAS, best,
    )
    return version


def logged_model(store: Store, run_id: str) -> Any:
    """The newest finished model logged by ``run_id`` (``artifacts.log_model``), or None."""
    from mlflow.entities import LoggedModelStatus

    found = store.client.search_logged_models(
        experiment_ids=[store.experiment_id],
        filter_string=f"name = '{MODEL_ARTIFACT_NAME}' AND source_run_id = '{run_id}'",
        max_results=100,
    )
    models = [m for m in found if m.status == LoggedModelStatus.READY and m.source_run_id == run_id]
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
                f"(tags: seed, test_accuracy); alias '{BEST_ALIAS}': the highest test accuracy."
            ),
        )
    except MlflowException as exc:  # another process (a tracking server has no lock) made it meanwhile
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def _version_tags(store: Store, run_id: str, key: ModelKey, accuracy: float) -> dict[str, str]:
    data = store.client.get_run(run_id).data
    tags = {TAG_SEED: str(key.seed), TAG_TEST_ACCURACY: repr(accuracy)}
    tags.update({name: data.tags[name] for name in _RUN_TAGS if data.tags.get(name)})
    tags.update({name: data.params[name] for name in _RUN_PARAMS if data.params.get(name)})
    return tags


def update_best(client: Any, name: str) -> str | None:
    """Point ``best`` at the version with the highest test accuracy (the older on a tie); its number."""
    scored = []
    for version in client.search_model_versions(f"name = '{name}'"):
        try:
            scored.append((float(version.tags[TAG_TEST_ACCURACY]), -int(version.version), version.version))
        except (KeyError, ValueError):
            continue  # a version registered by hand, without a test accuracy
    if not scored:
        return None
    best = str(max(scored)[2])
    current = _alias_version(client, name)
    if current != best:
        client.set_registered_model_alias(name, BEST_ALIAS, best)
    return best


def _alias_version(client: Any, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, BEST_ALIAS).version)
    except MlflowException:
        return None
