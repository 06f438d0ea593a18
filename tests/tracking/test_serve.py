"""The served model's contract, and, after a real smoke ``compare``, ``mlflow models serve`` of ``@best``.

Also activations beyond the built-in five, end to end: GELU, SiLU and Mish by
their Keras names and a user's own layer (a package the test writes,
``tests/custom_layer.py``) in a smoke ``compare`` through the real ``kedro`` CLI,
and the custom-layer model served with its own bundled code: each serving check
first moves the package away, so the model can only load with the code bundled in it.

The contract (``tracking.serving``): uint8 pixel values 0-255, shape
(N, 32, 32, 3), declared by the signature and input example; each image's
answer is its class name and the probabilities by class name; anything else is
refused with HTTP 400 and a one-line reason. The registered RReLU model is
served by MLflow's own CLI (``--env-manager local``) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import stop_process_group, test_env
from custom_layer import custom_entry, write_layer_package

SMOKE_RRELU = "activation-compare-smoke-rrelu"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def test_the_pyfunc_model_takes_pixels_0_to_255_and_answers_class_names(scratch_store, tmp_path):
    """In-process: signature, input example, x/255 by the pipeline's own function, refusals; Keras flavour unchanged."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    from activation_compare.datasets.types import LabelledImages
    from activation_compare.identity import ModelKey
    from activation_compare.params import ModelParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling.nodes import build_model
    from activation_compare.tracking import TrackingSettings, artifacts, runs
    from activation_compare.tracking.store import open_store

    key = ModelKey("rrelu", 0)
    model = build_model({"type": "rrelu", "lower": 0.125, "upper": 1 / 3}, ModelParams(), key=key)
    store = open_store(TrackingSettings(tracking_uri=scratch_store, experiment_name="serve-contract",
                                        artifact_location=(tmp_path / "artifacts").as_uri()))
    run = runs.create_run(store, key.run_name, key.run_tags(), {})
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    inputs = normalize_images(LabelledImages(pixels, np.zeros(4, dtype=np.int64))).images  # as the pipeline
    model_id = artifacts.log_model(store, run, key, model, inputs, 2, list(CLASSES))
    local = mlflow.artifacts.download_artifacts(store.client.get_logged_model(model_id).artifact_location,
                                                dst_path=str(tmp_path / "model"))

    meta = Model.load(local)
    (spec,) = meta.get_input_schema().inputs
    assert spec.type == np.dtype(np.uint8) and spec.shape == (-1, 32, 32, 3)
    example = np.asarray(meta.load_input_example(local))
    assert example.shape == (2, 32, 32, 3) and np.array_equal(example, pixels[:2])

    served = mlflow.pyfunc.load_model(local)
    answers = served.predict(pixels)
    expected = model.predict(inputs, verbose=0)  # the Keras model on x/255, as in training
    assert [a["class"] for a in answers] == [CLASSES[i] for i in expected.argmax(axis=1)]
    for answer, row in zip(answers, expected):
        assert list(answer["probabilities"]) == list(CLASSES)
        assert list(answer["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-6)
    # The same pixels as integral floats (JSON 12.0) are the same request.
    assert served.predict(pixels.astype(np.float64)) == answers
    # The Keras flavour keeps taking x/255 floats.
    keras_flavour = mlflow.keras.load_model(local)
    assert np.allclose(keras_flavour.predict(inputs, verbose=0), expected, atol=1e-6)

    # Through MLflow's scoring server code (what `mlflow models serve` runs per request): the JSON
    # reaches the model as sent (1.5 is not cast to 1), and a refusal keeps its one-line reason.
    from mlflow.pyfunc import scoring_server

    schema = served.metadata.get_input_schema()
    response = scoring_server.invocations(json.dumps({"inputs": pixels.tolist()}), "application/json", served, schema)
    assert response.status == 200 and json.loads(response.response)["predictions"] == answers
    with pytest.raises(MlflowException) as raised:
        scoring_server.invocations(json.dumps({"inputs": (pixels + 0.5).tolist()}), "application/json", served, schema)
    assert raised.value.get_http_status_code() == 400
    assert json.loads(raised.value.serialize_as_json())["message"] == (
        "pixel values must be integers 0-255; got non-integer values (95.5, 130.5, 194.5)")

    refused = {
        "non-integer": pixels.astype(np.float64) + 0.5,
        "out of range": pixels.astype(np.int64) + 200,
        "NaN": np.full((1, 32, 32, 3), np.nan),
        "infinite": np.full((1, 32, 32, 3), np.inf),
        "shape": pixels[:, :16],
        "no images": np.zeros((0, 32, 32, 3), dtype=np.uint8),
    }
    for what, data in refused.items():
        with pytest.raises(MlflowException) as raised:
            served.predict(data)
        assert raised.value.get_http_status_code() == 400, what
        assert "\n" not in raised.value.message and len(raised.value.message) < 200, (what, raised.value.message)


def _serve(tracking, uri: str, model_uri: str, port: int, log_path):
    env = test_env(MLFLOW_TRACKING_URI=uri, MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    # The server runs `uvicorn` from PATH, as `uv run` or an activated .venv provides it.
    env["PATH"] = f"{tracking.BIN}{os.pathsep}{env.get('PATH', '')}"
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
    # The version and the logged model name each other.
    (output,) = rrelu.outputs.model_outputs
    assert best.tags["model_id"] == output.model_id
    logged = client.get_logged_model(output.model_id)
    assert logged.name == "rrelu-seed0"
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": SMOKE_RRELU, "version": str(best.version)}]

    # A rerun reuses the finished models (no training): no new version.
    again = tracking.kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare")
    assert again.returncode == 0, again.stderr[-4000:]
    assert "not registered again" in again.stdout + again.stderr
    for name in (SMOKE_RRELU, "activation-compare-smoke-relu"):
        assert [v.version for v in client.search_model_versions() if v.name == name] == [1], name
    assert client.get_model_version_by_alias(SMOKE_RRELU, "best").run_id == rrelu.info.run_id

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    server = _serve(tracking, uri, f"models:/{SMOKE_RRELU}@best", port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(server, url, log)
        pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        status, answer = _post(url, {"inputs": pixels.tolist()})
        assert status == 200, answer
        predictions = answer["predictions"]
        nan = pixels[:1].astype(float)
        nan[0, 0, 0, 0] = float("nan")
        refusals = {
            "NaN": _post(url, {"inputs": nan.tolist()}),
            "shape": _post(url, {"inputs": pixels[:, :, :, :1].tolist()}),
            "non-integer": _post(url, {"inputs": (pixels[:1] + 0.5).tolist()}),
            "out of range": _post(url, {"inputs": (pixels[:1].astype(int) + 300).tolist()}),
        }
    finally:
        stop_process_group(server)
    assert len(predictions) == 3
    for prediction in predictions:
        assert list(prediction["probabilities"]) == list(CLASSES)
        assert prediction["class"] == max(prediction["probabilities"], key=prediction["probabilities"].get)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    for what, (status, body) in refusals.items():
        assert status == 400, (what, body)
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "\n" not in body["message"] and len(body["message"]) < 200, (what, body["message"][:500])
    assert "NaN" in refusals["NaN"][1]["message"]
    assert "(3, 32, 32, 1)" in refusals["shape"][1]["message"]


def _post(url: str, payload) -> tuple[int, dict]:
    """POST ``payload`` as JSON (NaN written as JSON's NaN, as Python's json does) to /invocations."""
    request = urllib.request.Request(
        url + "/invocations", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# Loads the logged model in a fresh interpreter that has never seen the user's package.
_LOAD_AND_PREDICT = """
import json, sys
import numpy as np
import mlflow
pixels = np.asarray(json.loads(sys.stdin.read()), dtype=np.uint8)
print(json.dumps(mlflow.pyfunc.load_model(sys.argv[1]).predict(pixels)))
"""


def test_a_logged_custom_layer_model_bundles_the_layers_package_and_loads_without_it(scratch_store, tmp_path):
    import mlflow

    from activation_compare.identity import ModelKey
    from activation_compare.params import ModelParams
    from activation_compare.pipelines.modelling.nodes import build_model
    from activation_compare.tracking import TrackingSettings, artifacts, runs
    from activation_compare.tracking.store import open_store

    user_code = tmp_path / "user_code"
    package = write_layer_package(user_code, "userlayers_serve")
    sys.path.insert(0, str(user_code))
    try:
        key = ModelKey("swish", 0)
        model = build_model(custom_entry("userlayers_serve", beta=1.5), ModelParams(precision="float32"), key=key)
        store = open_store(TrackingSettings(tracking_uri=scratch_store, experiment_name="serve-custom-layer",
                                            artifact_location=(tmp_path / "artifacts").as_uri()))
        run = runs.create_run(store, key.run_name, key.run_tags(), {})
        pixels = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        model_id = artifacts.log_model(store, run, key, model, pixels, 2, list(CLASSES))
        expected = model.predict(pixels.astype(np.float32) / 255.0, verbose=0)
    finally:
        sys.path.remove(str(user_code))
    local = mlflow.artifacts.download_artifacts(store.client.get_logged_model(model_id).artifact_location,
                                                dst_path=str(tmp_path / "model"))
    bundled = Path(local, "code", "userlayers_serve")
    assert sorted(p.name for p in bundled.iterdir()) == ["__init__.py", "layers.py", "scale.py"]
    assert (bundled / "layers.py").read_text() == (package / "layers.py").read_text()

    package.rename(tmp_path / "moved_away")  # only the bundled copy is left
    done = subprocess.run([sys.executable, "-c", _LOAD_AND_PREDICT, local], input=json.dumps(pixels.tolist()),
                          capture_output=True, text=True, cwd=tmp_path, env=test_env(), timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    assert [a["class"] for a in answers] == [CLASSES[i] for i in expected.argmax(axis=1)]
    for answer, row in zip(answers, expected):
        assert list(answer["probabilities"].values()) == pytest.approx(row.tolist(), abs=1e-6)


SMOKE_ACTIVATIONS = """\
activations:
  relu:
    type: relu
  gelu:
    type: keras
    name: gelu
  silu:
    type: keras
    name: silu
  mish:
    type: keras
    name: mish
  swish:
    type: custom
    layer: userlayers_smoke.layers:Swish
    beta: 1.5
"""


@pytest.mark.slow
def test_gelu_silu_mish_and_a_custom_layer_in_a_smoke_compare_and_the_custom_model_served(tmp_path, tracking):
    from mlflow import MlflowClient

    project = tracking.copy_project(tmp_path / "project")
    write_layer_package(project / "src", "userlayers_smoke")
    (project / "conf" / "smoke" / "parameters_activations.yml").write_text(SMOKE_ACTIVATIONS)
    compared = ["relu", "gelu", "silu", "mish", "swish"]
    result = tracking.kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare",
                                "--params", f"compare.activations={' '.join(compared)}")
    assert result.returncode == 0, result.stderr[-4000:]
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(uri)
    parent, children = tracking.split_tree(tracking.runs_of(client))
    assert sorted(c.info.run_name for c in children) == sorted(f"{name}-seed0" for name in compared)
    by_name = {c.info.run_name: c for c in children}
    assert by_name["gelu-seed0"].data.params["activation.name"] == "gelu"
    swish = by_name["swish-seed0"]
    assert swish.data.params["activation.layer"] == "userlayers_smoke.layers:Swish"
    assert swish.data.params["activation.beta"] == "1.5"
    for name in compared:
        assert 0.0 <= by_name[f"{name}-seed0"].data.metrics["test_accuracy"] <= 1.0, name

    # A layer that is not there is refused before anything trains, in one line.
    broken = tracking.kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare",
                                "--params", "compare.activations=relu swish,activations.swish.layer=userlayers_smoke.layers:Swsh")
    assert broken.returncode != 0
    assert ("activations.swish.layer='userlayers_smoke.layers:Swsh' cannot be found: 'userlayers_smoke.layers' has "
            "no attribute 'Swsh'; did you mean 'Swish'?") in broken.stdout + broken.stderr
    assert "Traceback" not in broken.stdout + broken.stderr

    (project / "src" / "userlayers_smoke").rename(tmp_path / "moved_away")  # only the bundled copy is left
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "serve.log"
    server = _serve(tracking, uri, "models:/activation-compare-smoke-swish@best", port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(server, url, log)
        pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        status, answer = _post(url, {"inputs": pixels.tolist()})
    finally:
        stop_process_group(server)
    assert status == 200, answer
    for prediction in answer["predictions"]:
        assert list(prediction["probabilities"]) == list(CLASSES)
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
