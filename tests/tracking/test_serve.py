"""After a real smoke ``compare``: the runs are named and registered, and ``mlflow models serve`` answers.

The registered RReLU model is served by MLflow's own CLI (``--env-manager
local``) on 127.0.0.1 and asked for predictions of CIFAR-shaped images in
MLflow's JSON input format.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import stop_process_group

SMOKE_RRELU = "activation-compare-smoke-rrelu"


def _serve(tracking, uri: str, model_uri: str, port: int, log_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_EXPERIMENT_NAME"}
    env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                # The server runs `uvicorn` from PATH, as `uv run` or an activated .venv provides it.
                "PATH": f"{tracking.BIN}{os.pathsep}{env.get('PATH', '')}"})
    return subprocess.Popen(
        [str(tracking.BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env, cwd=log_path.parent,
        start_new_session=True,
    )


def _wait_ready(process, url: str, log_path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mlflow models serve exited {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"mlflow models serve did not answer in {timeout} s:\n{log_path.read_text()[-4000:]}")


@pytest.mark.slow
def test_a_smoke_compare_registers_its_models_and_the_best_rrelu_is_served(tmp_path, tracking):
    from mlflow import MlflowClient

    project = tracking.copy_project(tmp_path / "project")
    result = tracking.kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare")
    assert result.returncode == 0, result.stderr[-4000:]
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri)

    parent, children = tracking.split_tree(tracking.runs_of(client))
    assert parent.info.run_name == "relu vs rrelu, seed 0, 2 epochs, synthetic"
    assert sorted(c.info.run_name for c in children) == ["relu-seed0", "rrelu-seed0"]
    experiment = client.get_experiment_by_name(tracking.SMOKE_EXPERIMENT)
    view = json.loads(experiment.tags[f"mlflow.sharedViewState.{parent.info.run_id}"])
    assert parent.info.run_id in view["searchFilter"] and view["groupBy"]["groupByKeys"][0]["groupByData"] == "activation"
    assert experiment.tags["mlflow.sharedViewState.latest"] == experiment.tags[f"mlflow.sharedViewState.{parent.info.run_id}"]
    link = (f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
            f"&compareRunsMode=CHART&viewStateShareKey={parent.info.run_id}")
    assert link in result.stdout + result.stderr

    rrelu = next(c for c in children if c.info.run_name == "rrelu-seed0")
    best = client.get_model_version_by_alias(SMOKE_RRELU, "best")
    assert best.run_id == rrelu.info.run_id and best.tags["seed"] == "0"
    assert float(best.tags["test_accuracy"]) == pytest.approx(rrelu.data.metrics["test_accuracy"])
    assert client.get_model_version_by_alias("activation-compare-smoke-relu", "best").tags["kedro.env"] == "smoke"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    server = _serve(tracking, uri, f"models:/{SMOKE_RRELU}@best", port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(server, url, log)
        images = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
        request = urllib.request.Request(
            url + "/invocations",
            data=json.dumps({"inputs": images.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            predictions = np.asarray(json.loads(response.read())["predictions"])
    finally:
        stop_process_group(server)
    assert predictions.shape == (3, 10)
    assert np.allclose(predictions.sum(axis=1), 1.0, atol=1e-5)
    assert (predictions >= 0).all()
