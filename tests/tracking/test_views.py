"""The saved chart view of a comparison: an experiment tag MLflow's UI restores, and the link that opens it."""

from __future__ import annotations

import json
import urllib.parse

from activation_compare.tracking import TrackingSettings, views
from activation_compare.tracking.store import open_store


def test_a_comparison_saves_its_view_and_keeps_what_the_user_chose(scratch_store, tmp_path):
    settings = TrackingSettings(
        tracking_uri=scratch_store, experiment_name="views", artifact_location=tmp_path.as_uri()
    )
    store = open_store(settings)
    store.client.set_experiment_tag(store.experiment_id, "mlflow.note.content", "my own notes")

    url = views.share_comparison(store, "parent1")
    tags = store.client.get_experiment(store.experiment_id).tags
    assert tags["mlflow.note.content"] == "my own notes"
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(tags["mlflow.sharedViewState.parent1"])
    assert view == views.comparison_view("parent1")
    assert view["searchFilter"] == "tags.`mlflow.parentRunId` = 'parent1' AND tags.`activation_compare.model` LIKE '%'"
    assert tags["mlflow.sharedViewState.latest"] == tags["mlflow.sharedViewState.parent1"]

    base, _, fragment = url.partition("/#/")
    assert base == "http://127.0.0.1:5000"
    path, _, query = fragment.partition("?")
    assert path == f"experiments/{store.experiment_id}/runs"
    assert urllib.parse.parse_qs(query) == {
        "workflowType": ["machine_learning"], "compareRunsMode": ["CHART"], "viewStateShareKey": ["parent1"]
    }

    views.share_comparison(store, "parent2")  # the newest comparison becomes "latest"
    tags = store.client.get_experiment(store.experiment_id).tags
    assert json.loads(tags["mlflow.sharedViewState.latest"]) == views.comparison_view("parent2")
    assert "mlflow.sharedViewState.parent1" in tags


def test_the_search_filter_finds_the_model_runs_only(scratch_store, tmp_path):
    """MLflow's own search accepts the view's filter and returns the parent's model runs, not the parent."""
    from activation_compare.identity import ModelKey
    from activation_compare.tracking import runs

    store = open_store(TrackingSettings(tracking_uri=scratch_store, experiment_name="views-filter",
                                        artifact_location=tmp_path.as_uri()))
    parent = runs.create_run(store, "relu vs rrelu", {runs.TAG_KEDRO_RUN_ID: "v-1"}, {})
    for key in (ModelKey("relu", 0), ModelKey("rrelu", 0)):
        runs.create_run(store, key.run_name, {**key.run_tags(), runs.TAG_PARENT_RUN_ID: parent.run_id}, {})
    found = store.client.search_runs([store.experiment_id], views.comparison_view(parent.run_id)["searchFilter"])
    assert sorted(r.info.run_name for r in found) == ["relu-seed0", "rrelu-seed0"]


def test_a_tracking_server_is_its_own_ui():
    assert views.ui_base_url("http://tracking.example:5000/") == "http://tracking.example:5000/"
    assert views.ui_base_url("sqlite:////tmp/mlflow.db") == "http://127.0.0.1:5000"
