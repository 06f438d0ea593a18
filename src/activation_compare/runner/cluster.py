"""Which Dask cluster a run uses, and whether its workers share the run's storage and tracking.

The cluster comes from Dask's own configuration: ``DASK_SCHEDULER_ADDRESS``
or ``scheduler-address`` in a Dask config file (``~/.config/dask/*.yaml``)
names a running scheduler; without one, the run starts a ``LocalCluster``
of one single-thread worker per core and closes it at the end.

Before anything runs on a cluster the run did not start, every worker must
see the run's files (the driver writes a marker file in each output folder
and every worker looks for it at the same path) and, when a worker runs on
another host, MLflow must be a tracking server that every host reaches (the
workers log to the store the driver's tracking settings name: they travel
with each task in the catalog).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil

from activation_compare.errors import UserError

logger = logging.getLogger(__name__)

# Dask's config key logging.distributed, as an environment variable.
_WORKER_LOG_LEVEL = "DASK_LOGGING__DISTRIBUTED"

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
# Keys of a dataset's description (AbstractDataset._describe) that hold a path.
_PATH_KEYS = ("filepath", "path")


class ClusterSetupError(UserError, RuntimeError):
    """The cluster cannot run this project as configured; the message says what to configure."""


@dataclass(frozen=True)
class WorkerInfo:
    """What the driver knows about one worker before the run."""

    address: str
    host: str


def scheduler_address(explicit: str | None = None) -> str | None:
    """The scheduler to connect to: the runner's argument, else Dask's configuration, else None."""
    if explicit:
        return explicit
    import dask

    return dask.config.get("scheduler-address", None)


def local_cluster_size(cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for a LocalCluster: one single-thread worker per core."""
    if cores is None:
        # The cores this process may use (a container or `taskset` may allow fewer than exist).
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cores or 1), 1


@contextlib.contextmanager
def connect(address: str | None, n_workers: int | None = None) -> Iterator[tuple[Any, bool]]:
    """A Dask client, and whether this run started (and owns) its cluster."""
    import dask
    from distributed import Client, LocalCluster

    address = scheduler_address(address)
    if address:
        logger.info("Dask: connecting to the scheduler at %s", address)
        try:
            client = Client(address, timeout=dask.config.get("distributed.comm.timeouts.connect"))
        except OSError as exc:
            raise ClusterSetupError(
                f"cannot reach the Dask scheduler at {address!r} (from DASK_SCHEDULER_ADDRESS, "
                f"Dask's config or --runner-params address=…): {exc}. Start it with "
                "`dask scheduler`, or unset the address to run on a LocalCluster."
            ) from exc
        with client:
            yield client, False
        return
    workers, threads = local_cluster_size()
    workers = n_workers or workers
    logger.info("Dask: starting a LocalCluster of %d workers × %d thread", workers, threads)
    with _quiet_dask_logs(), LocalCluster(
        n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=None
    ) as cluster, Client(cluster) as client:
        # The run's own workers log to this terminal: only their warnings, as here.
        client.run(_only_dask_warnings)
        yield client, True


def _only_dask_warnings() -> None:
    logging.getLogger("distributed").setLevel(logging.WARNING)


@contextlib.contextmanager
def _quiet_dask_logs() -> Iterator[None]:
    """Dask's own INFO lines (workers starting and stopping) are noise when the run owns the cluster.

    Here, and in the worker processes the LocalCluster starts: they read Dask's
    logging levels from the environment they inherit, when they import Dask,
    before any task could set them (a user's own setting wins).
    """
    dask_logger = logging.getLogger("distributed")
    previous = dask_logger.level
    dask_logger.setLevel(logging.WARNING)
    set_here = _WORKER_LOG_LEVEL not in os.environ
    if set_here:
        os.environ[_WORKER_LOG_LEVEL] = "warning"
    try:
        yield
    finally:
        dask_logger.setLevel(previous)
        if set_here:
            os.environ.pop(_WORKER_LOG_LEVEL, None)


def workers_of(client: Any) -> list[WorkerInfo]:
    """Every worker of the cluster."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return [WorkerInfo(address, str(worker.get("host", ""))) for address, worker in info.items()]


def local_hosts() -> set[str]:
    """Names and addresses of the driver's own host."""
    hosts = {"localhost", socket.gethostname(), socket.getfqdn()}
    for addresses in psutil.net_if_addrs().values():
        hosts.update(a.address.split("%")[0] for a in addresses)
    return hosts


def is_local_tracking_uri(uri: str) -> bool:
    """True for an MLflow store only one host can use: a SQLite file, a file store, a path."""
    if uri.split(":", 1)[0] in ("databricks", "databricks-uc"):  # MLflow's names for a remote service
        return False
    return urlparse(uri).scheme.lower() in ("", "file", "sqlite")


def tracking_problems(workers: Iterable[WorkerInfo], tracking_uri: str | None, hosts: set[str]) -> list[str]:
    """Why MLflow tracking cannot work with these workers (empty when it can, or when untracked)."""
    remote = [w for w in workers if w.host not in hosts]
    if not remote or tracking_uri is None or not is_local_tracking_uri(tracking_uri):
        return []
    return [
        f"MLflow tracks to {tracking_uri}, a store on this host, but worker {remote[0].address} runs on "
        f"host {remote[0].host}: start `mlflow server` where every host reaches it and set "
        f"{TRACKING_URI_VARIABLE}=http://<server>:5000 (or tracking_uri in conf/<env>/mlflow.yml)"
    ]


def local_folders(datasets: Mapping[str, Any]) -> list[Path]:
    """The existing folders that hold the run's local files, outermost ones only."""
    folders: set[Path] = set()
    for dataset in datasets.values():
        try:
            description = dataset._describe()
        except Exception:  # noqa: BLE001 - a dataset that cannot describe itself has no path to check
            continue
        for key in _PATH_KEYS:
            value = description.get(key)
            protocol = str(description.get("protocol") or "file")
            if value is None or protocol not in ("file", "local"):
                continue
            path = Path(str(value)).absolute()
            while not path.is_dir() and path != path.parent:
                path = path.parent
            folders.add(path)
    outermost = {f for f in folders if not any(other in f.parents for other in folders)}
    return sorted(outermost)


def storage_problems(client: Any, folders: Iterable[Path]) -> list[str]:
    """Folders some worker does not see at the same path (by a marker file the driver writes)."""
    token = uuid.uuid4().hex
    markers = [folder / f".activation-compare-visible-{token}" for folder in folders]
    written = []
    try:
        for marker in markers:
            marker.write_text(token)
            written.append(marker)
        seen = client.run(_markers_seen, [str(m) for m in markers], token)
    finally:
        for marker in written:
            marker.unlink(missing_ok=True)
    problems = []
    for address, found in sorted(seen.items()):
        for marker, ok in zip(markers, found, strict=True):
            if not ok:
                problems.append(
                    f"worker {address} does not see the folder {marker.parent} that this run "
                    "writes to: put the data folder on storage every worker mounts at the same path "
                    "(globals paths.inputs and paths.outputs, conf/<env>/globals.yml), or an object "
                    "store URL (s3://…) that every worker can reach"
                )
    return problems


def _markers_seen(markers: list[str], token: str) -> list[bool]:
    """Runs on each worker: which of the driver's marker files it can read."""
    seen = []
    for marker in markers:
        try:
            seen.append(Path(marker).read_text() == token)
        except OSError:
            seen.append(False)
    return seen


def check_cluster(client: Any, datasets: Mapping[str, Any], tracking_uri: str | None) -> list[WorkerInfo]:
    """Refuse a cluster whose workers would not share this run's files or MLflow store.

    Returns the workers. Raises :class:`ClusterSetupError` naming every problem.
    """
    workers = workers_of(client)
    if not workers:
        raise ClusterSetupError(
            "the Dask scheduler has no workers: start at least one with "
            "`dask worker <scheduler address> --nthreads 1` in the project's environment"
        )
    problems = tracking_problems(workers, tracking_uri, local_hosts())
    problems += storage_problems(client, local_folders(datasets))
    if problems:
        raise ClusterSetupError(
            "this run cannot use the Dask cluster as configured; nothing was trained:\n  - "
            + "\n  - ".join(problems)
        )
    return workers
