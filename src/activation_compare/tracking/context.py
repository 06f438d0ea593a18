"""A tracked run as one process sees it: recovered from the catalog and MLflow, in any process.

The driver puts the tracking settings in the catalog
(:data:`~activation_compare.tracking.settings.CATALOG_ENTRY`) and tags the
parent run with Kedro's run id; a node hook in a worker thread, a
``ParallelRunner`` process or a Dask worker rebuilds the same view from its own
catalog (settings, parameters, hence the plan) and MLflow (the parent run).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from activation_compare.identity import ComparePlan
from activation_compare.params import ProjectParameters, validate_parameters
from activation_compare.tracking import runs
from activation_compare.tracking.settings import CATALOG_ENTRY, TrackedPipeline
from activation_compare.tracking.store import open_store

if TYPE_CHECKING:
    from activation_compare.tracking.runs import RunRef
    from activation_compare.tracking.store import Store

logger = logging.getLogger(__name__)


@dataclass
class RunContext:
    """One process's view of one tracked Kedro run (found in the catalog and MLflow)."""

    store: Store
    parent: RunRef
    plan: ComparePlan
    parameters: ProjectParameters
    tracked: TrackedPipeline
    pid: int = field(default_factory=os.getpid)


def find_context(catalog: Any, run_id: str) -> RunContext | None:
    """The tracked run ``run_id`` as this process sees it; None if the run is not tracked."""
    if catalog is None or CATALOG_ENTRY not in catalog.keys():
        return None
    tracked = catalog.load(CATALOG_ENTRY)
    parameters, plan = run_parameters(catalog)
    store = open_store(tracked.settings, create=False)
    parent = runs.find_parent(store, run_id)
    if parent is None:
        logger.warning("MLflow: no run tagged kedro.run_id=%s in %s; not tracking here", run_id, store.uri)
        return None
    return RunContext(store, parent, plan, parameters, tracked)


def run_parameters(catalog: Any) -> tuple[ProjectParameters, ComparePlan]:
    """The run's validated parameters and its plan, from the catalog."""
    validated = validate_parameters(catalog.load("parameters"))
    return validated, ComparePlan.from_params(validated)
