"""Quick answers: building the pipelines imports neither TensorFlow, Keras nor MLflow.

Kedro imports ``settings.py`` and the pipeline registry for every command
(``kedro registry list``, ``kedro run --help``, a refused parameter), so a
TensorFlow import there would make each of them wait for it (tens of seconds).
The checks run in a fresh interpreter: this test process may have imported
anything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import KEDRO, PROJECT_ROOT, copy_project

HEAVY = ("tensorflow", "keras", "mlflow")

# Builds every registered pipeline of each environment, and the rigorous protocol's,
# then resolves every node's annotations as Kedro does to validate `params:` inputs.
BUILD_EVERY_PIPELINE = """
import json, os, sys, typing
from kedro.framework.project import configure_project, settings
configure_project("activation_compare")  # as every kedro command does: settings.py, the registry
import activation_compare.pipeline_registry as registry
from activation_compare.identity import ComparePlan
from activation_compare.params import validate_parameters

def pipelines(env, runtime_params=None):
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source="conf", env=env, runtime_params=runtime_params, **settings.CONFIG_LOADER_ARGS
    )
    plan = ComparePlan.from_params(validate_parameters(loader["parameters"]))
    return registry.create_pipelines(plan)

built = [registry.register_pipelines()]
built += [pipelines(env) for env in ("smoke", "paper")]
built += [pipelines("smoke", {"compare": {"protocol": "rigorous"}})]
unresolved = []
nodes = 0
for registered in built:
    for pipeline in registered.values():
        for node in pipeline.nodes:
            nodes += 1
            try:
                typing.get_type_hints(node.func)
            except Exception as error:
                unresolved.append(f"{node.name}: {error!r}")
print(json.dumps({
    "loaded": [name for name in %r if name in sys.modules],
    "nodes": nodes,
    "unresolved": unresolved,
}))
""" % (HEAVY,)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_building_every_pipeline_loads_no_tensorflow_keras_or_mlflow() -> None:
    done = _python(BUILD_EVERY_PIPELINE)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["nodes"] > 0
    assert result["loaded"] == [], f"imported while building the pipelines: {result['loaded']}"
    # Kedro's parameter validation reads every node's annotations; a name it cannot
    # resolve would silently hand that node a plain dict instead of its pydantic model.
    assert result["unresolved"] == []


# What a `kedro run` driver does before its first node: Kedro creates every dataset
# of the pipeline (its warm-up before any runner starts).
CREATE_EVERY_DATASET = """
import json, sys
from pathlib import Path
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

bootstrap_project(Path.cwd())
with KedroSession.create(project_path=Path.cwd(), env="smoke") as session:
    catalog = session.load_context().catalog
    names = pipelines["compare"].datasets()
    kinds = {type(catalog.get(name, fallback_to_runtime_pattern=True)).__name__ for name in names}
print(json.dumps({"loaded": [m for m in ("tensorflow", "keras") if m in sys.modules], "kinds": sorted(kinds),
                  "later": [m for m in ("matplotlib", "sklearn") if m in sys.modules]}))
"""


def test_the_driver_creates_every_dataset_without_tensorflow(tmp_path) -> None:
    """ParallelRunner forks its workers from the driver after Kedro has created every dataset.

    A fork of a process running TensorFlow's threads can die in TensorFlow's
    locks, so nothing the driver creates may import it (the model files'
    dataset imports Keras only to load or save).
    """
    project = copy_project(tmp_path / "project")
    done = subprocess.run([sys.executable, "-c", CREATE_EVERY_DATASET], cwd=project, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "AtomicTensorFlowModelDataset" in result["kinds"]  # the model files are among them
    assert result["loaded"] == [], f"imported while creating the datasets: {result['loaded']}"
    # Nor what only figures and scores need: a run builds every dataset before its
    # first node, and these imports would delay its first training step (docs/speed.md).
    assert "AtomicMatplotlibDataset" in result["kinds"]
    assert result["later"] == [], f"imported while creating the datasets: {result['later']}"


def _seconds(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600, check=False)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-2000:]
    return elapsed


@pytest.mark.slow
def test_kedro_registry_list_answers_well_before_tensorflow_would_have_loaded() -> None:
    """`kedro registry list` against `python -c "import tensorflow"` on the same machine, now.

    A ratio, not seconds, so a slower or busier machine does not fail it: the
    fastest of two runs each, interleaved so that load drift hits both alike.
    """
    env_note = os.environ.get("KEDRO_ENV")
    assert env_note in (None, ""), "run without KEDRO_ENV: the default environment is timed"
    registry, tensorflow = [], []
    for _ in range(2):
        registry.append(_seconds([KEDRO, "registry", "list"]))
        tensorflow.append(_seconds([sys.executable, "-c", "import tensorflow"]))
    ratio = min(registry) / min(tensorflow)
    assert ratio < 0.5, f"kedro registry list {min(registry):.1f} s, import tensorflow {min(tensorflow):.1f} s"
