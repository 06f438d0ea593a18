"""``DaskRunner``: a Kedro runner that trains the models of a run on a Dask cluster.

``kedro run --pipeline=compare --runner=activation_compare.runner.DaskRunner``

Each model is one Dask task (:mod:`.units`); shared steps run once, as tasks
of their own. The driver (the ``kedro run`` process) runs the pipeline hooks
(the MLflow parent run), submits a unit as soon as the units it reads from
have finished, and waits; workers run the node hooks (the model's MLflow child
run, per-epoch metrics, checkpoints) in their own processes
(:mod:`.worker`). The cluster comes from Dask's configuration or is a
LocalCluster (:mod:`.cluster`).

Faults: a worker that dies mid-training loses only its task; Dask runs it
again on another worker, where the model resumes from its last checkpoint.
If the scheduler goes away the run fails with :class:`SchedulerLostError`,
and the checkpoints stay for a rerun. Ctrl-C cancels the run's tasks and
restarts the workers that were running them (Dask cannot stop a running
task any other way), so no model goes on training for a run that has ended.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from kedro.pipeline import Pipeline
from kedro.runner import AbstractRunner

from activation_compare.errors import UserError
from activation_compare.identity import ComparePlan
from activation_compare.params import validate_parameters
from activation_compare.tracking import CATALOG_ENTRY

from .cluster import check_cluster, connect
from .units import Unit, producers, split_into_units
from .worker import UnitResult, UnitTask, prepare_worker, run_unit

logger = logging.getLogger(__name__)

# Loggers whose records the workers send to the driver's log.
_FORWARDED_LOGGERS = ("activation_compare", "kedro")


class SchedulerLostError(UserError, RuntimeError):
    """The run lost its Dask scheduler; what finished is saved and checkpoints are kept."""


class RunnerParamsError(UserError, ValueError):
    """``--runner-params`` the DaskRunner cannot use (refused before anything runs)."""


# scheme://host:port or host:port (Dask adds tcp://), e.g. tcp://10.0.0.1:8786.
_ADDRESS = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s/:\[\]]+):\d{1,5}/?$"
)


def check_runner_params(address: Any, n_workers: Any) -> None:
    """Refuse a worker count that is not a whole number >= 1, or an address without a port."""
    problems = []
    if n_workers is not None and (
        isinstance(n_workers, bool)
        or not isinstance(n_workers, (int, str))
        or not str(n_workers).strip().isdigit()
        or int(n_workers) < 1
    ):
        problems.append(
            f"  - n_workers = {n_workers!r}: expected a whole number of at least 1 (the "
            "LocalCluster's worker processes), e.g. --runner-params n_workers=2"
        )
    if address is not None and not (isinstance(address, str) and _ADDRESS.match(address)):
        problems.append(
            f"  - address = {address!r}: expected a Dask scheduler address, "
            "[scheme://]host:port, e.g. --runner-params address=tcp://127.0.0.1:8786"
        )
    if problems:
        raise RunnerParamsError(
            f"Invalid --runner-params for the DaskRunner ({len(problems)}):\n"
            + "\n".join(problems)
        )


class DaskRunner(AbstractRunner):
    """Run a Kedro pipeline on a Dask cluster, one task per trained model.

    Args:
        address: the scheduler to use (``tcp://host:8786``); by default
            Dask's configuration (``DASK_SCHEDULER_ADDRESS``), else a
            LocalCluster of one single-thread worker per core.
        n_workers: workers of the LocalCluster (ignored with a scheduler).
        is_async: load and save a node's datasets in threads (as Kedro's runners).

    Example: ``kedro run --runner=activation_compare.runner.DaskRunner
    --runner-params address=tcp://127.0.0.1:8786``.
    """

    def __init__(
        self, address: str | None = None, n_workers: int | None = None, is_async: bool = False
    ) -> None:
        super().__init__(is_async=is_async)
        check_runner_params(address, n_workers)
        self._address = address
        self._n_workers = int(n_workers) if n_workers is not None else None

    def _get_executor(self, max_workers: int) -> None:
        """Dask is the executor; Kedro's executor loop is not used."""
        return None

    def _run(
        self,
        pipeline: Pipeline,
        catalog: Any,
        hook_manager: Any = None,
        run_id: str | None = None,
    ) -> None:
        # Read now: configure_project sets it after this module is imported.
        from kedro.framework.project import PACKAGE_NAME

        units = split_into_units(pipeline, _plan(catalog))
        datasets = {
            name: catalog.get(name, fallback_to_runtime_pattern=True) for name in pipeline.datasets()
        }
        in_memory = {name for name, ds in datasets.items() if getattr(ds, "_EPHEMERAL", False)}
        run_wide = _run_wide_entries(catalog, set(datasets))
        tasks = {
            unit.name: UnitTask(
                name=unit.name,
                nodes=unit.nodes,
                datasets={
                    **run_wide,
                    **{ds: datasets[ds] for n in unit.nodes for ds in (*n.inputs, *n.outputs)},
                },
                returns=tuple(sorted(unit.outputs & in_memory)),
                run_id=run_id,
                package_name=PACKAGE_NAME,
                is_async=self._is_async,
            )
            for unit in units
        }
        with connect(self._address, self._n_workers) as (client, owned):
            if not owned:
                check_cluster(client, datasets, _tracking_uri(catalog))
                # Workers of a LocalCluster already write to this terminal.
                for name in _FORWARDED_LOGGERS:
                    client.forward_logging(name, level=logging.INFO)
            # TensorFlow takes seconds to import: every worker imports the
            # pipeline's code at once, before its first task would stall on it.
            client.run(prepare_worker, sorted({n.func.__module__ for n in pipeline.nodes}))
            results = _Schedule(client, units, tasks, run_id, owned).run()
        for name in pipeline.outputs() & in_memory:
            catalog.save(name, results[name])


def _run_wide_entries(catalog: Any, node_datasets: set[str]) -> dict[str, Any]:
    """Values the session put in the catalog for the whole run (parameters, tracking settings).

    Node hooks on a worker read them from the catalog they are handed, as they
    do with Kedro's own runners.
    """
    entries = {}
    for name in catalog.keys():
        if name in node_datasets:
            continue
        dataset = catalog.get(name)
        if getattr(dataset, "_EPHEMERAL", False) and catalog.exists(name):
            entries[name] = dataset
    return entries


def _tracking_uri(catalog: Any) -> str | None:
    """The MLflow store this run's hooks log to; None when the run is not tracked."""
    if CATALOG_ENTRY not in catalog.keys():
        return None
    return catalog.load(CATALOG_ENTRY).settings.tracking_uri


def _plan(catalog: Any) -> ComparePlan:
    """The run's models, from the run's parameters (none when the catalog has no project parameters)."""
    if "parameters" not in catalog:
        return ComparePlan(())
    return ComparePlan.from_params(validate_parameters(catalog.load("parameters")))


def _output(result: UnitResult, name: str) -> Any:
    """One in-memory output of a finished unit (a task of its own, on the unit's worker)."""
    return result.outputs[name]


class _Schedule:
    """Submits each unit once the units it reads from have finished, and collects the results."""

    def __init__(
        self, client: Any, units: list[Unit], tasks: dict[str, UnitTask], run_id: str | None, owned: bool
    ) -> None:
        self.client = client
        self.units = {unit.name: unit for unit in units}
        self.tasks = tasks
        self.run_id = run_id or "run"
        self.owned = owned
        made_by = producers(units)
        self.needs = {
            unit.name: {made_by[ds] for ds in unit.inputs if ds in made_by} for unit in units
        }
        # Readers left per in-memory output, so a value leaves the workers' memory when read.
        self.readers = Counter(ds for unit in units for ds in unit.inputs if ds in made_by)
        self.readers_total = Counter(self.readers)
        self.spread: set[str] = set()
        self.values: dict[str, Any] = {}  # dataset -> Dask future of its value
        self.running: dict[Any, str] = {}

    def run(self) -> dict[str, Any]:
        """Run every unit; the values of in-memory outputs nobody read (the pipeline's outputs)."""
        from distributed import as_completed

        waiting = dict(self.units)
        done: set[str] = set()
        completed = as_completed()
        try:
            while True:
                for name in [n for n in waiting if self.needs[n] <= done]:
                    completed.add(self._submit(waiting.pop(name)))
                if not self.running:
                    break
                future = next(completed)
                name = self.running.pop(future)
                result = self._result(future, name)
                done.add(name)
                self._collect(future, self.units[name])
                logger.info(
                    "Completed %s on %s (%d of %d units)", name, result.worker, len(done), len(self.units)
                )
        except KeyboardInterrupt:
            self._cancel()
            raise
        except BaseException:
            self._cancel(restart=False)
            raise
        return {ds: future.result() for ds, future in self.values.items()}

    def _submit(self, unit: Unit) -> Any:
        # Persisted inputs are on storage already: a unit is submitted only once
        # the units it reads from have finished, so only in-memory values are passed.
        inputs = {ds: self.values[ds] for ds in unit.inputs if ds in self.values}
        self._spread(inputs)
        future = self.client.submit(
            run_unit, self.tasks[unit.name], inputs, key=f"{unit.name}-{self.run_id}", pure=False
        )
        self.running[future] = unit.name
        return future

    def _spread(self, names: Any) -> None:
        """Copy in-memory inputs read by several units to every worker, once, before they start.

        Otherwise Dask would queue every model on the one worker that holds the
        data rather than send it once to each of the others.
        """
        for ds in names:
            if ds in self.spread or self.readers_total[ds] < 2:
                continue
            self.spread.add(ds)
            workers = len(self.client.scheduler_info(n_workers=-1)["workers"])
            if workers > 1:
                self.client.replicate([self.values[ds]], n=workers)

    def _collect(self, future: Any, unit: Unit) -> None:
        for ds in self.tasks[unit.name].returns:
            self.values[ds] = self.client.submit(_output, future, ds, key=f"{ds}-{self.run_id}")
        for ds in unit.inputs:
            if ds in self.readers:
                self.readers[ds] -= 1
                if self.readers[ds] == 0 and ds in self.values:
                    del self.values[ds]  # released on the workers

    def _result(self, future: Any, name: str) -> UnitResult:
        from distributed.client import FutureCancelledError

        try:
            return future.result()
        except (FutureCancelledError, OSError) as exc:
            # Dask cancels every future of a client that lost its scheduler.
            raise SchedulerLostError(self._lost(name)) from exc

    def _lost(self, name: str) -> str:
        return (
            f"lost the Dask scheduler while {name} ran (address {self.client.scheduler.address}): "
            "the models finished so far are saved and every model's checkpoint is kept; start the "
            "scheduler and its workers again and rerun the same command to resume"
        )

    def _cancel(self, restart: bool = True) -> None:
        """Cancel every task of this run; on Ctrl-C also stop the workers running its models."""
        running = list(self.running)
        if not running or self.client.status != "running":
            return
        busy = self._processing_workers(running) if restart and not self.owned else set()
        self.client.cancel(running + list(self.values.values()), force=True)
        logger.warning("Cancelled %d Dask tasks of this run", len(running))
        if busy:
            # A LocalCluster of this run is closed (its workers end) when the run ends.
            logger.warning("Restarting Dask workers %s to stop their training", sorted(busy))
            self.client.restart_workers(sorted(busy), raise_for_error=False)

    def _processing_workers(self, futures: list[Any]) -> set[str]:
        keys = {future.key for future in futures}
        try:
            processing = self.client.processing()
        except Exception:  # noqa: BLE001 - best effort while stopping
            return set()
        return {worker for worker, tasks in processing.items() if keys & set(tasks)}

