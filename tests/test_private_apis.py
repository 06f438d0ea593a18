"""Each private API of a library that the project uses (``activation_compare.private_apis``), tested.

A failure here after a lock-file change names the private API that moved.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy

from activation_compare.private_apis import mlflow_alembic_config, mlflow_migrate_schema, mlflow_schema_head


def test_mlflow_alembic_config_points_at_mlflows_migrations():
    from alembic.script import ScriptDirectory

    config = mlflow_alembic_config("sqlite:///x.db")
    assert config.get_main_option("sqlalchemy.url") == "sqlite:///x.db"
    assert ScriptDirectory.from_config(config).get_revision(mlflow_schema_head()) is not None


def test_mlflow_schema_head_is_mlflows_own():
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert mlflow_schema_head() == _get_latest_schema_revision()


def test_mlflow_migrate_schema_makes_a_store_mlflow_opens_and_stops_at_a_revision(tmp_path):
    from mlflow import MlflowClient

    path = tmp_path / "mlflow.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        mlflow_migrate_schema(connection, "3da73c924c2f")
    engine.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("3da73c924c2f",)]
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        mlflow_migrate_schema(connection)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [(mlflow_schema_head(),)]
    # MLflow finds nothing to create or migrate: it would otherwise log "Creating initial MLflow database tables".
    assert [e.name for e in MlflowClient(f"sqlite:///{path}").search_experiments()] == ["Default"]


def test_mlflow_load_keras_pyfunc_loads_a_keras_flavour(tmp_path):
    import keras
    import mlflow.keras
    import numpy as np

    from activation_compare.private_apis import mlflow_load_keras_pyfunc

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    mlflow.keras.save_model(model, str(tmp_path / "model"))
    loaded = mlflow_load_keras_pyfunc(str(tmp_path / "model"))
    raw = loaded.get_raw_model()
    x = np.ones((1, 2), dtype="float32")
    np.testing.assert_allclose(raw.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mlflow_pass_requests_unparsed_reaches_the_scoring_server_through_the_mlmodel_file():
    import numpy as np
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    from activation_compare.private_apis import mlflow_pass_requests_unparsed

    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, 2))]))
    assert not Model(signature=signature)._is_signature_from_type_hint()
    assert mlflow_pass_requests_unparsed(signature) is signature
    # The scoring server reads the flag from the model's metadata, as the MLmodel file restores it.
    restored = Model.from_dict(Model(signature=signature).to_dict())
    assert restored._is_signature_from_type_hint()


def test_kedro_hook_manager_calls_the_hooks_it_was_given():
    from kedro.framework.hooks import hook_impl

    from activation_compare.private_apis import kedro_hook_manager

    calls = []

    class Hook:
        @hook_impl
        def after_catalog_created(self, catalog):
            calls.append(catalog)

    manager = kedro_hook_manager((Hook(),))
    manager.hook.after_catalog_created(
        catalog="c", conf_catalog={}, conf_creds={}, parameters={}, save_version="v", load_versions={}
    )
    assert calls == ["c"]
    assert not kedro_hook_manager().get_plugins()


def test_kedro_pipelines_module_is_the_module_the_project_configured():
    from kedro.framework.project import _ProjectPipelines

    from activation_compare.private_apis import kedro_pipelines_module

    pipelines = _ProjectPipelines()
    pipelines.configure("activation_compare.pipeline_registry")
    assert kedro_pipelines_module(pipelines) == "activation_compare.pipeline_registry"


def test_kedro_node_fields_make_the_same_node_again():
    from kedro.pipeline import Node

    from activation_compare.private_apis import kedro_node_fields

    def add(a, b):
        return a + b

    node = Node(add, ["a", "params:b"], "c", name="add_node", tags=["x", "y"], namespace="ns", confirms="a")
    fields = kedro_node_fields(node)
    again = Node(func=add, **fields)
    assert again == node and again.tags == node.tags and again.namespace == "ns"
    assert (again.inputs, again.outputs, again.confirms) == (node.inputs, node.outputs, node.confirms)
    import inspect

    # Every field Node(...) takes but its function is carried (a new one would be lost).
    assert set(inspect.signature(Node).parameters) - {"func"} == set(fields)


def test_kedro_versioned_dataset_paths_versions_and_protocol(tmp_path):
    from kedro.io import Version
    from kedro_datasets.text import TextDataset

    from activation_compare.private_apis import (
        kedro_dataset_protocol,
        kedro_dataset_version,
        kedro_version_exists,
        kedro_versioned_path,
    )

    dataset = TextDataset(filepath=str(tmp_path / "out.txt"), version=Version(None, "run-1"))
    assert kedro_dataset_version(dataset) == Version(None, "run-1")
    assert kedro_dataset_protocol(dataset) == "file"
    assert str(kedro_versioned_path(dataset, "run-1")) == f"{tmp_path.as_posix()}/out.txt/run-1/out.txt"
    assert not kedro_version_exists(dataset, "run-1")
    dataset.save("x")
    assert kedro_version_exists(dataset, "run-1")
    assert kedro_dataset_version(TextDataset(filepath=str(tmp_path / "plain.txt"))) is None


def test_kedro_versioned_dataset_members_the_projects_datasets_build_on(tmp_path):
    """AbstractVersionedDataset's _get_load_path/_get_save_path/_filepath: what datasets/ override and read."""
    from pathlib import PurePosixPath

    from kedro.io import Version
    from kedro_datasets.text import TextDataset

    dataset = TextDataset(filepath=str(tmp_path / "out.txt"), version=Version(None, "run-1"))
    assert dataset._filepath == PurePosixPath(tmp_path / "out.txt")
    assert str(dataset._get_save_path()).endswith("out.txt/run-1/out.txt")
    dataset.save("x")
    assert str(dataset._get_load_path()).endswith("out.txt/run-1/out.txt")


def test_kedro_viz_image_preview_is_the_type_kedro_viz_shows_as_an_image(tmp_path):
    import inspect

    from kedro_datasets._typing import ImagePreview

    from activation_compare.datasets.figure import FigureDataset
    from activation_compare.private_apis import kedro_viz_image_preview

    assert kedro_viz_image_preview("aGk=") == "aGk="
    assert ImagePreview.__name__ == "ImagePreview"
    # kedro-viz reads the name of the preview method's return annotation.
    annotation = inspect.signature(FigureDataset.preview).return_annotation
    assert getattr(annotation, "__name__", str(annotation)) == "ImagePreview"


# In a fresh interpreter: this test process has imported Keras and the rest already.
KERAS_WITHOUT_ITS_EXTRAS = """
import inspect, json, sys
import activation_compare
import keras
import tensorflow as tf
LATER = ("sklearn", "matplotlib", "IPython")
after_import = [name for name in LATER if type(sys.modules.get(name)).__name__ == "module"]
inspect.getmodule(json.dumps)  # reads __file__ of every module in sys.modules
after_scan = [name for name in LATER if type(sys.modules.get(name)).__name__ == "module"]
from keras.wrappers import *  # noqa: F403
from sklearn.base import BaseEstimator
import IPython
version = IPython.__version__  # a dunder that the real module defines: it loads it
from IPython import get_ipython
print(json.dumps({
    "after_import": after_import,
    "after_scan": after_scan,
    "names": sorted(n for n in dir(keras.wrappers) if n.startswith("SKLearn")),
    "estimator": issubclass(SKLearnClassifier, BaseEstimator),  # noqa: F405
    "same_in_tf_keras": tf.keras.wrappers.SKLearnRegressor is keras.wrappers.SKLearnRegressor,
    "plots": keras.visualization.plot_image_gallery.__module__,
    "plots_with": "matplotlib.pyplot" in sys.modules,
    "ipython": [int(version.split(".")[0]) >= 8, get_ipython() is None, sys.modules["IPython"] is IPython],
}))
"""


def test_defer_keras_imports_keeps_sklearn_matplotlib_and_ipython_out_of_import_keras_and_keras_whole():
    import json
    import subprocess
    import sys

    from activation_compare.private_apis import KERAS_DEFERRED_MODULES, defer_keras_imports

    assert defer_keras_imports() == []  # Keras is imported in this process: nothing to do
    done = subprocess.run([sys.executable, "-c", KERAS_WITHOUT_ITS_EXTRAS], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["after_import"] == [], f"import keras imported these; deferred: {list(KERAS_DEFERRED_MODULES)}"
    assert result["after_scan"] == []
    # Each deferred module works when used.
    assert result["names"] == ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
    assert result["estimator"] is True
    assert result["same_in_tf_keras"] is True
    assert result["plots"] == "keras.src.visualization.plot_image_gallery"
    assert result["plots_with"] is True
    assert result["ipython"] == [True, True, True]


def test_a_deferred_module_read_by_several_threads_at_once_loads_once_and_answers_each(tmp_path, monkeypatch):
    """A Kedro manager process unpickled figures in threads, each asking matplotlib about IPython:
    a thread that read a name while another loaded the module got an AttributeError."""
    import importlib.util
    import sys
    import threading

    from activation_compare.private_apis import _LoadedOnFirstUse

    package = tmp_path / "slow_to_load"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import time\nLOADS = globals().get('LOADS', 0) + 1\ntime.sleep(0.5)\nversion_info = (8, 30)\n"
    )
    spec = importlib.util.spec_from_file_location("slow_to_load", package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    stand_in = _LoadedOnFirstUse(spec)
    monkeypatch.setitem(sys.modules, "slow_to_load", stand_in)
    answers, errors = [], []

    def read() -> None:
        try:
            answers.append(sys.modules["slow_to_load"].version_info)
        except AttributeError as error:
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert answers == [(8, 30)] * 4
    assert stand_in.LOADS == 1
    with __import__("pytest").raises(AttributeError, match="no attribute 'missing'"):
        stand_in.missing  # noqa: B018 - a name the loaded module lacks
