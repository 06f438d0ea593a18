"""Every Kedro hook of the project, registered in ``settings.py``.

- :mod:`.project`: validates the run's parameters once (the pipelines are built
  from them) and checks, before the run, what would otherwise fail late
  (unwritable or leftover outputs, a batch larger than the data);
- :mod:`.progress`: one log line per epoch, and what each model will do;
- :mod:`.summary`: the run's last lines, its verdict and its report's paths;
- :mod:`.tracking`: the thin adapter from Kedro's hook calls to
  :mod:`activation_compare.tracking` (MLflow).

Hooks hold no state between runs that a worker process would need: what a node
hook needs comes from its catalog and MLflow.
"""

from activation_compare.hooks.progress import ProgressHooks
from activation_compare.hooks.project import (
    ProjectHooks,
    UnversionedOutputError,
    check_no_unversioned_leftovers,
    output_folders,
)
from activation_compare.hooks.summary import RunSummaryHook
from activation_compare.hooks.tracking import MlflowTrackingHook

__all__ = [
    "MlflowTrackingHook",
    "ProgressHooks",
    "ProjectHooks",
    "RunSummaryHook",
    "UnversionedOutputError",
    "check_no_unversioned_leftovers",
    "output_folders",
]
