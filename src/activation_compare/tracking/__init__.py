"""MLflow tracking of Kedro runs: one parent run per ``kedro run``, one child run per model.

One module per job, so each reads in one sitting:

- :mod:`.settings`: ``conf/<env>/mlflow.yml``, environment overrides, URI resolution;
- :mod:`.store`: the client, the experiment, the SQLite setup lock and busy
  retries, the bounded start-up check of a tracking server;
- :mod:`.runs`: the parent/child run tree, run names and tags;
- :mod:`.params`: what a run records as params (the run's, a model's, the data's sizes);
- :mod:`.resume`: continuing a model's interrupted run, back-filling epochs;
- :mod:`.artifacts`: the model (Keras flavour), figures, history, report, comparison;
- :mod:`.datasets`: the train, validation and test sets as MLflow datasets;
- :mod:`.serving`: the served model's loader and its input contract (pixels 0-255);
- :mod:`.registry`: registered models, one version per trained model, the ``best`` aliases;
- :mod:`.signals`: Ctrl-C / SIGTERM / exit end the runs KILLED;
- :mod:`.context`: a tracked run as any process recovers it from its catalog and MLflow;
- :mod:`.tracker`: the run tree driven by Kedro's hook calls: what each node's outputs become.

The Kedro hook :mod:`activation_compare.hooks.tracking` forwards Kedro's calls to :mod:`.tracker`.

This package is the only place that knows about MLflow, and MLflow is
imported only once a tracked pipeline starts; nodes stay pure.
"""

from activation_compare.tracking.settings import (
    CATALOG_ENTRY,
    TrackedPipeline,
    TrackingSettings,
    resolve_tracking_uri,
)

__all__ = ["CATALOG_ENTRY", "TrackedPipeline", "TrackingSettings", "resolve_tracking_uri"]
