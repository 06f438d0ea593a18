"""Running the project's pipelines on a Dask cluster: one task per trained model.

``kedro run --pipeline=compare --runner=activation_compare.runner.DaskRunner``
(README, "Scale out").
"""

from .dask_runner import DaskRunner, SchedulerLostError
from .cluster import ClusterSetupError

__all__ = ["ClusterSetupError", "DaskRunner", "SchedulerLostError"]
