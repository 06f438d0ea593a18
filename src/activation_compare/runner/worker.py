"""What a Dask worker does with one unit: run its nodes with the project's hooks.

Everything the worker needs travels with the task (:class:`UnitTask`): the
nodes, the dataset objects they read and write (paths already resolved by
the driver's catalog, versions included), the Kedro run id and the project's
package name. The worker builds its own catalog and hook manager from them,
so nothing depends on state left in the worker process by an earlier task or
another run.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from kedro.framework import project
from kedro.io import AbstractDataset, DataCatalog
from kedro.pipeline.node import Node
from kedro.runner.task import Task

from activation_compare.private_apis import kedro_dataset_version, kedro_hook_manager, kedro_version_exists

# The one answer to "which worker runs this": a run's tags name it the same way.
from activation_compare.tracking.runs import worker_identity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitTask:
    """One unit, ready to ship to a worker (see :mod:`activation_compare.runner.units`)."""

    name: str
    nodes: tuple[Node, ...]
    datasets: dict[str, AbstractDataset]
    # Datasets other units or the driver need back from memory (not persisted).
    returns: tuple[str, ...]
    run_id: str | None
    # The Kedro project whose hooks run on the worker; None outside a project (no hooks).
    package_name: str | None
    is_async: bool = False


@dataclass(frozen=True)
class UnitResult:
    """What a finished unit sends back: its in-memory outputs and where it ran."""

    name: str
    outputs: dict[str, Any]
    worker: str


def worker_threads() -> int:
    """How many tasks this Dask worker runs at once (its ``--nthreads``); 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):
        return 1


def prepare_worker(modules: list[str], dask_worker: Any = None) -> None:
    """Runs on every worker before the first task: size TensorFlow's pools, import the node code.

    ``dask_worker`` is the worker itself (``Client.run`` passes it by that name).
    """
    _share_cores_with_tensorflow(dask_worker.state.nthreads if dask_worker is not None else worker_threads())
    for module in modules:
        importlib.import_module(module)


def run_unit(task: UnitTask, inputs: dict[str, Any]) -> UnitResult:
    """Run the unit's nodes in order on this worker.

    Args:
        task: the unit and everything it needs.
        inputs: values of the in-memory datasets it reads, made by other units.
    """
    hook_manager = _project_hooks(task.package_name)
    _share_cores_with_tensorflow(worker_threads())
    catalog = DataCatalog(datasets=_writable_once(task.datasets))
    for name, value in inputs.items():
        catalog.save(name, value)
    where = worker_identity()
    logger.info("Running %s on Dask worker %s", task.name, where)
    for node in task.nodes:
        Task(
            node=node,
            catalog=catalog,
            hook_manager=hook_manager,
            is_async=task.is_async,
            run_id=task.run_id,
        ).execute()
    return UnitResult(task.name, {name: catalog.load(name) for name in task.returns}, where)


class _SavedEarlier(AbstractDataset):
    """A dataset this run has already written: loads it, and leaves it as it is on save.

    Dask runs a finished unit again when a worker that held its in-memory
    outputs dies and another unit still needs them. Its nodes are
    deterministic, so their outputs are the same; the files the first
    execution wrote stay the run's record (a versioned dataset could not be
    written twice anyway).
    """

    def __init__(self, dataset: AbstractDataset) -> None:
        self._dataset = dataset

    def _load(self) -> Any:
        return self._dataset.load()

    def _save(self, data: Any) -> None:
        logger.info("Keeping %s as this run first wrote it", self._dataset)

    def _describe(self) -> dict[str, Any]:
        return {"written_earlier_in_this_run": self._dataset._describe()}


def _writable_once(datasets: dict[str, AbstractDataset]) -> dict[str, AbstractDataset]:
    """The unit's datasets, with those this run has already written kept as they are."""
    return {
        name: _SavedEarlier(dataset) if _written_in_this_run(dataset) else dataset
        for name, dataset in datasets.items()
    }


def _written_in_this_run(dataset: AbstractDataset) -> bool:
    """True when a versioned dataset already holds the version this run saves."""
    version = kedro_dataset_version(dataset)
    if version is None or version.save is None:
        return False
    try:
        return kedro_version_exists(dataset, version.save)
    except Exception:  # noqa: BLE001 - a dataset that cannot say is written normally
        return False


def _project_hooks(package_name: str | None) -> Any:
    """A hook manager with the project's own hooks (``settings.HOOKS``) and no plugin hooks.

    Plugins' hooks (kedro-viz's dataset statistics, telemetry) belong to the
    driver, where Kedro calls their pipeline hooks; on a worker they would
    only warn that their run never started.
    """
    if package_name is None:
        return kedro_hook_manager()
    # A worker started with `dask worker` has never imported the project's
    # settings; configuring twice with the same package is harmless.
    if project.PACKAGE_NAME != package_name:
        project.configure_project(package_name)
    return kedro_hook_manager(project.settings.HOOKS)


def _share_cores_with_tensorflow(threads: int) -> None:
    """Give TensorFlow's thread pools the worker's share of the cores, once per process.

    A worker with ``--nthreads N`` trains with N intra-op threads (one pool,
    shared by the up to N models it runs at once) and one inter-op thread, so
    one single-thread worker per core never oversubscribes the machine; left
    alone, TensorFlow would size its pools for every core in every worker.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        # TensorFlow reads these when it starts its runtime, after a node imports it.
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        return
    if tf.config.threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TensorFlow fixes its pools when it runs its first op: a worker that
        # ran TensorFlow before this project's first task keeps its pools.
        logger.warning(
            "TensorFlow on worker %s had already started; it keeps its thread pools instead of %d threads",
            worker_identity(),
            threads,
        )
