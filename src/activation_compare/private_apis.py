"""Private APIs of libraries the project relies on, gathered in one place.

Each has a test in ``tests/test_private_apis.py`` that fails when an upgrade of
the library moves or changes it, so a new lock file shows at once what to fix.

MLflow's tracking-store schema: MLflow creates a new SQLite store's initial
tables and then runs its Alembic migrations (``mlflow.store.db.utils.
_initialize_tables``); the project runs the same two steps itself, on its own
connection inside one SQLite transaction (``tracking/sqlite_schema.py``), so
that no other process can see or leave a half-migrated store.

MLflow's serving: the project's pyfunc loader loads the Keras flavour the way
MLflow's own loader does, and marks the served signature so that the scoring
server hands requests over unparsed (``tracking/serving.py``).

Kedro's hook manager: a Dask worker builds one with the project's hooks only
(``runner/worker.py``).

Kedro's project pipelines: a second session in one process re-reads the
registry (``hooks/project.py``). Kedro's ``Node`` fields: a node with bound
arguments pickles itself from them (``pipelines/binding.py``). Kedro's
versioned datasets: where a version lives and whether it is there, their
version and protocol (``datasets/atomic.py``, ``runner/worker.py``); the
project's own datasets subclass ``AbstractVersionedDataset`` and override its
``_get_save_path`` / read ``_get_load_path`` and ``_filepath`` (Kedro's way to
write a versioned dataset), tested here too.

kedro-datasets' preview types: kedro-viz shows a dataset's preview as an image
when its ``preview`` method returns kedro-datasets' ``ImagePreview``
(``datasets/figure.py``).

Keras' ``keras.wrappers`` and ``keras.visualization`` modules, and its IPython
import: ``import keras`` imports them, and with them scikit-learn, matplotlib
and IPython (most of a second, before any model is built); the project puts
stand-ins in their place that load them on first use (``__init__.py``, the
start-up in docs/speed.md).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from pathlib import Path
from typing import Any


def mlflow_alembic_config(url: str) -> Any:
    """The Alembic ``Config`` of MLflow's tracking-store migrations, for the database ``url``."""
    from mlflow.store.db.utils import _get_alembic_config

    return _get_alembic_config(url)


def mlflow_schema_head() -> str:
    """The Alembic revision of the installed MLflow's tracking-store schema."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(mlflow_alembic_config("")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"MLflow's schema migrations have {len(heads)} heads: {heads}")
    return heads[0]


def mlflow_migrate_schema(connection: Any, revision: str = "heads") -> None:
    """Create MLflow's initial tables where missing and migrate the schema to ``revision``.

    ``connection``: a SQLAlchemy connection. MLflow's Alembic environment opens
    its own connection from ``connection.engine``, so the engine must hand out
    this very connection (a ``StaticPool``) for both steps to share one
    transaction.
    """
    from alembic import command
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    InitialBase.metadata.create_all(connection)
    config = mlflow_alembic_config(str(connection.engine.url))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def mlflow_load_keras_pyfunc(path: str) -> Any:
    """MLflow's Keras flavour loaded as its pyfunc loader does (``mlflow.keras.load._load_pyfunc``)."""
    from mlflow.keras.load import _load_pyfunc

    return _load_pyfunc(path)


def mlflow_pass_requests_unparsed(signature: Any) -> Any:
    """Mark ``signature`` as one from type hints: MLflow's scoring server then hands the
    model a request as sent, without casting it to the signature's dtype first."""
    signature._is_signature_from_type_hint = True
    return signature


def kedro_hook_manager(hooks: Any = ()) -> Any:
    """A new Kedro hook manager with ``hooks`` registered (and no plugin hooks)."""
    from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks

    manager = _create_hook_manager()
    _register_hooks(manager, hooks)
    return manager


def kedro_pipelines_module(project_pipelines: Any) -> str | None:
    """The module Kedro's ``kedro.framework.project.pipelines`` was configured with (the registry)."""
    return project_pipelines._pipelines_module


# The fields of a Kedro ``Node`` that ``Node(...)`` takes as arguments, by the attribute that holds each.
_NODE_FIELDS = {
    "inputs": "_inputs", "outputs": "_outputs", "name": "_name", "namespace": "_namespace",
    "tags": "_tags", "confirms": "_confirms", "preview_fn": "_preview_fn",
}


def kedro_node_fields(node: Any) -> dict[str, Any]:
    """The arguments that make ``node`` again with ``Node(func=..., **fields)`` (all but its function)."""
    return {argument: getattr(node, attribute) for argument, attribute in _NODE_FIELDS.items()}


def kedro_dataset_version(dataset: Any) -> Any:
    """A versioned dataset's ``Version`` (load, save); None for a dataset without versions."""
    return getattr(dataset, "_version", None)


def kedro_dataset_protocol(dataset: Any) -> str:
    """The fsspec protocol of a file dataset (``file`` for a local path or one that has none)."""
    return getattr(dataset, "_protocol", "file")


def kedro_versioned_path(dataset: Any, version: str) -> Any:
    """Where ``version`` of a versioned dataset lives: ``<filepath>/<version>/<file name>``."""
    return dataset._get_versioned_path(version)


def kedro_version_exists(dataset: Any, version: str) -> bool:
    """Whether a versioned dataset holds ``version`` (on its own filesystem)."""
    return bool(dataset._exists_function(str(kedro_versioned_path(dataset, version))))


def kedro_viz_image_preview(encoded: str) -> Any:
    """A base64-encoded image as kedro-viz previews it (kedro-datasets' ``ImagePreview``)."""
    from kedro_datasets._typing import ImagePreview

    return ImagePreview(encoded)


# What ``import keras`` (Keras 3) imports for features the project never uses, by the
# library each pulls in: its scikit-learn wrappers (``from keras import wrappers`` in
# ``keras/__init__.py`` and ``keras/_tf_keras/keras/__init__.py``), its image-plotting
# helpers (the same for ``visualization``, and ``keras/src/__init__.py``), and IPython,
# which ``keras/src/saving/file_editor.py`` imports for notebook display. Packages all.
KERAS_DEFERRED_MODULES = {
    "keras.wrappers": "scikit-learn",
    "keras._tf_keras.keras.wrappers": "scikit-learn",
    "keras.visualization": "matplotlib",
    "keras._tf_keras.keras.visualization": "matplotlib",
    "keras.src.visualization": "matplotlib",
    "IPython": "IPython",
}


class _LoadedOnFirstUse(types.ModuleType):
    """A package module whose own ``__init__.py`` runs when one of its names is first read.

    Unlike ``importlib.util.LazyLoader``, reading its module attributes
    (``__spec__``, ``__file__``: what the import system and ``inspect`` read of
    every module in ``sys.modules``) or probing it for what tools look for on
    any object does not load it; any other name (``__version__`` included) does.
    """

    # Looked up on modules by tools that scan objects, and defined by none of these modules.
    _PROBES = frozenset({"__cached__", "__builtins__", "__warningregistry__", "__wrapped__", "__origin__",
                         "__signature__", "__test__", "__func__", "__self__", "__objclass__"})

    def __init__(self, spec: Any) -> None:
        super().__init__(spec.name)
        self.__file__ = spec.origin
        self.__path__ = list(spec.submodule_search_locations or [])
        self.__package__ = spec.name
        self.__loader__ = spec.loader
        self.__spec__ = spec
        self.__dict__["_deferred"] = True
        # Threads that read a name while another loads the module wait for it, as
        # they would at a real import (a Kedro manager process unpickles figures
        # in several threads at once, and each asks matplotlib about IPython).
        self.__dict__["_deferred_lock"] = threading.RLock()

    def _load(self) -> None:
        with self.__dict__["_deferred_lock"]:
            if not self.__dict__.pop("_deferred", False):
                return  # loaded, or being loaded by this very thread
            try:
                self.__spec__.loader.exec_module(self)
            except BaseException:
                # As a failed import does: the next import of the name tries afresh.
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                raise

    def __getattr__(self, name: str) -> Any:  # only for names the module does not have (yet)
        if name in self._PROBES or "_deferred_lock" not in self.__dict__:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        self._load()
        # The module as loaded: its names, and its own module-level __getattr__ if it has one.
        return types.ModuleType.__getattribute__(self, name)

    def __dir__(self) -> list[str]:
        self._load()
        return list(self.__dict__)


def _package_spec(name: str) -> Any:
    """The spec of package ``name`` (dotted), found without importing it or its parents; None if absent."""
    top, *rest = name.split(".")
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    for location in (found.submodule_search_locations or []) if found is not None else []:
        init = Path(location, *rest, "__init__.py")
        if init.is_file():
            return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    return None


def defer_keras_imports() -> list[str]:
    """Let ``import keras`` skip scikit-learn, matplotlib and IPython: what needs them loads on first use.

    Puts a stand-in (:class:`_LoadedOnFirstUse`) in ``sys.modules`` for each of
    :data:`KERAS_DEFERRED_MODULES` not imported yet, before Keras is: ``import
    keras`` binds the stand-ins without reading them. ``keras.wrappers.SKLearnClassifier``,
    ``keras.visualization.plot_image_gallery`` and IPython itself still work: the
    first name read from one runs the real module (and its imports) then.
    Returns the names deferred (none once Keras is imported).
    """
    if "keras" in sys.modules:
        return []
    deferred = []
    for name in KERAS_DEFERRED_MODULES:
        if name in sys.modules:
            continue
        spec = _package_spec(name)
        if spec is not None:
            sys.modules[name] = _LoadedOnFirstUse(spec)
            deferred.append(name)
    return deferred
