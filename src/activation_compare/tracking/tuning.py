"""The rigorous protocol in MLflow: one run per activation's tuning, its trials nested under it.

::

    compare                      the Kedro run (parent)
    ├── relu-tuning              the chosen learning rate, why, every trial's score
    │   ├── relu-trial0-seed0    one learning rate: its validation curve and score
    │   └── …
    ├── relu-seed0               a final model, as under the original protocol
    └── …

The tuning run is found by its tags (Kedro run id and activation), as a
model's run is, so any process (a Dask worker, a thread) finds the same one;
if two create it at once, the earlier is kept and the later deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from activation_compare.identity import TAG_ACTIVATION, TAG_TUNING, ModelKey
from activation_compare.params import ProjectParameters
from activation_compare.tracking import runs
from activation_compare.tracking.store import Store


def run_name(activation: str) -> str:
    """The tuning run's name, e.g. ``relu-tuning``."""
    return f"{activation}-tuning".replace("_", "-")


def tuning_run(store: Store, parent: runs.RunRef, activation: str, parameters: ProjectParameters) -> runs.RunRef:
    """The run of ``activation``'s tuning in this Kedro run, created under ``parent`` if it has none yet."""
    kedro_run_id = parent.tags[runs.TAG_KEDRO_RUN_ID]
    found = _tuning_runs(store, kedro_run_id, activation)
    if found:
        return found[0]
    tuning = parameters.tuning
    params = {
        "activation": activation,
        "tuning.learning_rates": list(tuning.learning_rates),
        "tuning.epochs": tuning.epochs or parameters.training.epochs,  # what every trial trains
        "tuning.seed": tuning.seed,
        "tuning.validation_size": tuning.validation_size,
    }
    tags = {TAG_TUNING: activation, TAG_ACTIVATION: activation}
    run = runs.create_child(store, parent, run_name(activation), tags, params)
    same = _tuning_runs(store, kedro_run_id, activation)
    if same and same[0].run_id != run.run_id:
        store.client.delete_run(run.run_id)
        return same[0]
    return run


def _tuning_runs(store: Store, kedro_run_id: str, activation: str) -> list[runs.RunRef]:
    found = runs.search(store, {runs.TAG_KEDRO_RUN_ID: kedro_run_id, TAG_TUNING: activation})
    return [r for r in found if r.parent_id]


def parent_of(store: Store, parent: runs.RunRef, key: ModelKey, parameters: ProjectParameters) -> runs.RunRef:
    """The run a model's run nests under: its activation's tuning run for a trial, else ``parent``."""
    if key.trial is None:
        return parent
    return tuning_run(store, parent, key.activation, parameters)


def log_score(store: Store, run: runs.RunRef, score: Mapping[str, Any]) -> None:
    """A trial's score on its own run: the best validation accuracy and its epoch."""
    runs.log_metrics(
        store, run.run_id,
        {"best_val_accuracy": score.get("best_val_accuracy"), "best_epoch": score.get("best_epoch")},
    )
    runs.set_tags(store, run.run_id, {"activation_compare.diverged": str(bool(score.get("diverged"))).lower()})


def log_selection(store: Store, run: runs.RunRef, selection: Mapping[str, Any]) -> None:
    """The choice on the tuning run: the learning rate, why, and every trial's score by learning rate."""
    runs.log_params(store, run, {"chosen_learning_rate": selection["learning_rate"]})
    runs.log_metrics(
        store, run.run_id,
        {"best_val_accuracy": selection.get("best_val_accuracy"), "best_epoch": selection.get("best_epoch")},
    )
    for trial in selection.get("trials", []):
        runs.log_metrics(
            store, run.run_id,
            {f"trial_best_val_accuracy_lr_{trial['learning_rate']:g}": trial.get("best_val_accuracy")},
        )
    runs.set_tags(store, run.run_id, {"activation_compare.selection": selection["reason"], "mlflow.note.content": selection["reason"]})
