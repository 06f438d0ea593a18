"""What a Dask worker does with one unit: run its nodes with the project's hooks.

Everything the worker needs travels with the task (:class:`UnitTask`): the
nodes, the dataset objects they read and write (paths already resolved by
the driver's catalog, versions included), the Kedro run id and the project's
package name. The worker builds its own catalog and hook manager from them,
so nothing depends on state left in the worker process by an earlier task or
another run.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

from kedro.io import AbstractDataset, DataCatalog
from kedro.pipeline.node import Node
from kedro.runner.task import Task

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


def worker_identity() -> str:
    """The Dask worker's address inside a worker, else ``host:pid``."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):  # ValueError: not running in a Dask worker
        return f"{socket.gethostname()}:{os.getpid()}"


def worker_threads() -> int:
    """How many tasks this Dask worker runs at once (its ``--nthreads``); 1 outside a worker."""
    try:
        from distributed import get_worker

        return max(1, get_worker().state.nthreads)
    except (ImportError, ValueError):
        return 1


def run_unit(task: UnitTask, inputs: dict[str, Any], *after: Any) -> UnitResult:
    """Run the unit's nodes in order on this worker; ``after`` only orders the task.

    Args:
        task: the unit and everything it needs.
        inputs: values of the in-memory datasets it reads, made by other units.
        after: results of units that wrote persisted datasets this one reads.
    """
    hook_manager = _project_hooks(task.package_name)
    _share_cores_with_tensorflow(worker_threads())
    catalog = DataCatalog(datasets=dict(task.datasets))
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


def _project_hooks(package_name: str | None) -> Any:
    """A hook manager with the project's hooks (``settings.HOOKS``), as Kedro's own runners make one."""
    from kedro.framework import project
    from kedro.framework.hooks.manager import (
        _create_hook_manager,
        _register_hooks,
        _register_hooks_entry_points,
    )

    if package_name is None:
        return _create_hook_manager()
    # A worker started with `dask worker` has never imported the project's
    # settings; configuring twice with the same package is harmless.
    if project.PACKAGE_NAME != package_name:
        project.configure_project(package_name)
    hook_manager = _create_hook_manager()
    _register_hooks(hook_manager, project.settings.HOOKS)
    _register_hooks_entry_points(hook_manager, project.settings.DISABLE_HOOKS_FOR_PLUGINS)
    return hook_manager


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
