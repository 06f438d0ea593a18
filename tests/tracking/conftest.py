"""Fixtures for the MLflow tracking tests: project copies, smoke runs, an MLflow server.

Every run goes to a throwaway project copy and a throwaway store; the
developer's ``./data``, ``./mlflow.db`` and ``MLFLOW_TRACKING_URI`` are never
touched. Helpers are handed out by the ``tracking`` fixture (test modules
cannot import each other under ``--import-mode=importlib``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SMOKE_EXPERIMENT = "activation-compare-smoke"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s")
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
for _key, _value in QUIET_ENV.items():
    os.environ.setdefault(_key, _value)


# --- project copies and runs ------------------------------------------------------


def copy_project(destination: Path) -> Path:
    """A runnable copy of the project: config and an empty data tree (the code is installed)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (PROJECT_ROOT / name).exists():
            shutil.copy2(PROJECT_ROOT / name, destination / name)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir(exist_ok=True)
    # Kedro checks that the source folder exists; the package itself is installed.
    (destination / "src").mkdir(exist_ok=True)
    for layer in sorted((PROJECT_ROOT / "data").iterdir()):
        if layer.is_dir():
            (destination / "data" / layer.name).mkdir(parents=True, exist_ok=True)
    return destination


def kedro_cli(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600):
    """The real ``kedro`` command in ``project``, without the developer's MLflow settings."""
    run_env = {
        k: v for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "KEDRO_ENV")
    }
    run_env.update(QUIET_ENV)
    run_env.update(env or {})
    return subprocess.run(
        [str(BIN / "kedro"), *args],
        cwd=project, env=run_env, capture_output=True, text=True, timeout=timeout,
    )


def run_session(
    project: Path, runtime_params: dict[str, Any] | None = None, pipeline: str = "compare"
) -> str:
    """One in-process ``KedroSession`` run in the smoke env; returns its session id.

    The session id (Kedro's run id, tag ``kedro.run_id``) is stored on the
    exception as ``session_id`` when the run raises.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime_params) as session:
        try:
            session.run(pipeline_names=[pipeline])
        except BaseException as exc:
            exc.session_id = session.session_id
            raise
        return session.session_id


# --- querying the store -------------------------------------------------------------


def runs_of(client, session_id: str | None = None, experiment: str = SMOKE_EXPERIMENT) -> list:
    """Every run of the experiment (of one Kedro run when ``session_id`` is given)."""
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in the store"
    flt = f"tags.`kedro.run_id` = '{session_id}'" if session_id else ""
    from mlflow.entities import ViewType

    return list(client.search_runs([exp.experiment_id], filter_string=flt, run_view_type=ViewType.ALL, max_results=1000))


def split_tree(runs: list) -> tuple[Any, list]:
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, [(r.info.run_name, r.data.tags.get("mlflow.parentRunId")) for r in runs]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(children) == len(runs) - 1, "runs with a foreign parent"
    return parents[0], children


def steps(client, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def artifact_files(client, run_id: str, path: str | None = None) -> dict[str, int]:
    """Every artifact file of a run (recursively) and its size."""
    found: dict[str, int] = {}
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found.update(artifact_files(client, run_id, info.path))
        else:
            found[info.path] = info.file_size
    return found


@contextlib.contextmanager
def global_tracking_uri(uri: str):
    """``mlflow.pyfunc.load_model('runs:/...')`` resolves runs through the global tracking URI."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    previous = getattr(utils, "_tracking_uri", None)  # None: MLflow's default resolution
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def assert_model_run(client, run, *, activation: str, seed: int, epochs: int, env: str = "smoke") -> None:
    """One trained model's run: identity, params, live metric steps, final metrics, artifacts."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert run.info.run_name == f"{activation}-seed{seed}"
    assert run.info.status == "FINISHED"
    assert tags["activation"] == activation and tags["seed"] == str(seed)
    assert tags["kedro.env"] == env and tags["kedro.pipeline"] == "compare"
    assert tags["kedro.run_id"]
    # The project copy is not a git repository: no commit tag rather than a wrong one.
    assert "mlflow.source.git.commit" not in tags

    assert params["activation"] == activation and params["seed"] == str(seed)
    assert params["activation.type"] == activation
    if activation == "rrelu":
        assert float(params["activation.lower"]) == pytest.approx(0.125)
        assert float(params["activation.upper"]) == pytest.approx(1 / 3)
    expected = {
        "model.architecture": "seed_cnn",
        "model.parameter_count": "42442",
        "training.epochs": str(epochs),
        "training.batch_size": "100",
        "training.optimizer": "adam",
        "training.learning_rate": "0.001",
        "data.source": "synthetic",
        "data.train_size": "600",
        "data.validation_size": "200",
        "data.test_size": "200",
        "data.validation_mode": "test_set",
    }
    assert {k: params.get(k) for k in expected} == expected
    assert params["tensorflow_version"] and params["keras_version"]

    for key in EPOCH_METRICS:
        assert steps(client, run.info.run_id, key) == list(range(epochs)), key
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    for name in CIFAR10_CLASSES:
        assert 0.0 <= metrics[f"test_accuracy_{name}"] <= 1.0

    files = artifact_files(client, run.info.run_id)
    for path in ("figures/accuracy_curves.png", "figures/confusion_matrix.png", "history.csv", "report.json"):
        assert files.get(path, 0) > 0, (path, files)

    outputs = run.outputs.model_outputs if run.outputs else []
    assert len(outputs) == 1, outputs
    model = client.get_logged_model(outputs[0].model_id)
    assert model.name == "model" and model.source_run_id == run.info.run_id
    assert str(model.status).endswith("READY")


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


# --- a real MLflow server ------------------------------------------------------------


class MlflowServer:
    """``mlflow server`` on 127.0.0.1, SQLite backend, proxied artifacts in a temp folder.

    Started when created, waited for on first use of :attr:`url` (so its start
    overlaps other work); always stopped (its whole process group).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / "artifacts"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(root / "server.log", "w")  # noqa: SIM115
        env = {**os.environ, **QUIET_ENV, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        env.pop("MLFLOW_TRACKING_URI", None)
        self.process = subprocess.Popen(
            [
                str(BIN / "mlflow"), "server",
                "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
                "--artifacts-destination", str(self.artifacts),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            ],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        self._ready = False

    @property
    def url(self) -> str:
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while not self._ready:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {(self.root / 'server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    self._ready = response.status == 200
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("mlflow server did not become healthy in 180 s") from None
                time.sleep(0.5)
        return url

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def scratch_store(tmp_path_factory) -> str:
    """One SQLite store shared by the in-process tests (each reads only its own Kedro run).

    Creating a store runs MLflow's schema migrations (seconds); once is enough.
    """
    return f"sqlite:///{tmp_path_factory.mktemp('scratch-store') / 'mlflow.db'}"


@pytest.fixture(scope="session")
def tracking():
    """The helpers above, for the test modules."""
    return SimpleNamespace(
        PROJECT_ROOT=PROJECT_ROOT,
        SMOKE_EXPERIMENT=SMOKE_EXPERIMENT,
        EPOCH_METRICS=EPOCH_METRICS,
        copy_project=copy_project,
        kedro_cli=kedro_cli,
        run_session=run_session,
        runs_of=runs_of,
        split_tree=split_tree,
        steps=steps,
        artifact_files=artifact_files,
        global_tracking_uri=global_tracking_uri,
        assert_model_run=assert_model_run,
        file_digests=file_digests,
    )
