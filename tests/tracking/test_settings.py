"""Where runs go: conf/<env>/mlflow.yml, environment overrides, paths resolved against the project."""

from __future__ import annotations

import pytest

from activation_compare.tracking.settings import TrackingSettings, resolve_tracking_uri


def test_default_store_is_resolved_against_the_project_not_the_cwd(tmp_path, monkeypatch):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = TrackingSettings.from_config({}, project, environ={})
    assert settings.enabled
    assert settings.tracking_uri == f"sqlite:///{project.resolve().as_posix()}/mlflow.db"
    assert settings.artifact_location == (project / "mlartifacts").resolve().as_uri()
    assert settings.experiment_name == "activation-compare"
    assert settings.connect_timeout_s == 20


def test_conf_values_and_environment_overrides(tmp_path):
    conf = {
        "tracking_uri": "sqlite:///runs/store.db?timeout=30",
        "experiment_name": "mine",
        "artifact_location": "art",
        "enabled": True,
        "log_models": False,
        "connect_timeout_s": 5,
    }
    settings = TrackingSettings.from_config(conf, tmp_path, environ={})
    assert settings.tracking_uri == f"sqlite:///{tmp_path.resolve().as_posix()}/runs/store.db?timeout=30"
    assert settings.artifact_location == (tmp_path / "art").resolve().as_uri()
    assert settings.experiment_name == "mine" and settings.log_models is False
    assert settings.connect_timeout_s == 5

    env = {
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
        "MLFLOW_EXPERIMENT_NAME": "from-env",
        "ACTIVATION_COMPARE_MLFLOW_CONNECT_TIMEOUT": "2.5",
    }
    remote = TrackingSettings.from_config(conf, tmp_path, environ=env)
    assert remote.tracking_uri == "http://127.0.0.1:5000"
    assert remote.experiment_name == "from-env"
    assert remote.connect_timeout_s == 2.5
    # A server owns its artifact store: no client-side path is imposed on it.
    assert remote.artifact_location is None
    s3 = TrackingSettings.from_config({**conf, "artifact_location": "s3://bucket/x"}, tmp_path, environ=env)
    assert s3.artifact_location == "s3://bucket/x"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:////abs/mlflow.db", "sqlite:////abs/mlflow.db"),
        ("postgresql://u@db/mlflow", "postgresql://u@db/mlflow"),
        ("https://mlflow.example.org", "https://mlflow.example.org"),
        ("mlruns", "{project}/mlruns"),
    ],
)
def test_resolve_tracking_uri(tmp_path, uri, expected):
    resolved = resolve_tracking_uri(uri, tmp_path)
    if expected.startswith("{project}"):
        assert resolved == (tmp_path / expected.removeprefix("{project}/")).resolve().as_uri()
    else:
        assert resolved == expected


def test_misspelt_config_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="tracking_url"):
        TrackingSettings.from_config({"tracking_url": "x"}, tmp_path, environ={})


@pytest.mark.parametrize(
    ("config", "environ", "message"),
    [
        ({"connect_timeout_s": 0}, {}, r"mlflow.connect_timeout_s must be a number >= 1, got 0"),
        ({}, {"ACTIVATION_COMPARE_MLFLOW_CONNECT_TIMEOUT": "soon"},
         r"ACTIVATION_COMPARE_MLFLOW_CONNECT_TIMEOUT must be a number >= 1, got 'soon'"),
        ({"request_max_retries": -1}, {}, r"mlflow.request_max_retries must be an integer >= 0, got -1"),
        ({"enabled": "maybe"}, {}, r"mlflow.enabled must be true or false, got 'maybe'"),
    ],
)
def test_bad_values_name_the_key_and_the_value(tmp_path, config, environ, message):
    with pytest.raises(ValueError, match=message):
        TrackingSettings.from_config(config, tmp_path, environ=environ)
