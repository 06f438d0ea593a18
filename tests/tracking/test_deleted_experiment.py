"""A deleted MLflow experiment stays deleted (issue 22, item 9).

A user who deleted the experiment (MLflow UI, ``mlflow experiments delete``)
and runs again gets a new, empty experiment under the same name, told so in
one line; the deleted one stays in the trash with its runs, renamed so that
it can still be restored. It used to be restored silently, old runs and all.
"""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, ViewType

from activation_compare.tracking import TrackingSettings
from activation_compare.tracking.store import deleted_experiment_name, open_store
from conftest import logged_messages


def test_a_deleted_experiment_stays_deleted_and_the_run_gets_a_new_one(tmp_path):
    settings = TrackingSettings(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_name="activations"
    )
    first = open_store(settings)
    old_run = first.client.create_run(first.experiment_id).info.run_id
    MlflowClient(settings.tracking_uri).delete_experiment(first.experiment_id)

    with logged_messages("activation_compare.tracking.store") as messages:
        second = open_store(settings)

    client = MlflowClient(settings.tracking_uri)
    assert second.experiment_id != first.experiment_id
    new = client.get_experiment(second.experiment_id)
    assert new.name == "activations" and new.lifecycle_stage == LifecycleStage.ACTIVE
    assert client.search_runs([second.experiment_id], run_view_type=ViewType.ALL) == []
    # The old experiment is still in the trash, with its run, under a name of its own.
    old = client.get_experiment(first.experiment_id)
    assert old.lifecycle_stage == LifecycleStage.DELETED
    assert old.name == deleted_experiment_name("activations", first.experiment_id)
    old_runs = client.search_runs([old.experiment_id], run_view_type=ViewType.ALL)
    assert [r.info.run_id for r in old_runs] == [old_run]
    warnings = [m for m in messages if "was deleted" in m]
    assert len(warnings) == 1 and len(warnings[0].splitlines()) == 1, messages
    assert f"new one (id {second.experiment_id})" in warnings[0]
    assert f"mlflow experiments restore --experiment-id {first.experiment_id}" in warnings[0]

    # The next run continues the new experiment, silently.
    with logged_messages("activation_compare.tracking.store") as messages:
        assert open_store(settings).experiment_id == second.experiment_id
    assert not [m for m in messages if "was deleted" in m]
