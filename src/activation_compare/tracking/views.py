"""What MLflow's UI opens on: the experiment declared as model training, and a saved chart view per comparison.

MLflow 3's UI starts in its GenAI layout; which layout it shows comes from
the ``workflowType`` URL parameter (or the user's last choice, kept by the
browser), and older 3.x UIs read the experiment tag ``mlflow.experimentKind``.
Its runs page nests child runs under their collapsed parent, and its charts
draw only visible rows, so the model runs' curves need clicks to appear.

MLflow's UI can restore a saved view: an experiment tag
``mlflow.sharedViewState.<key>`` holds the view (search filter, grouping,
chart filter) and the URL parameter ``viewStateShareKey=<key>`` opens it (the
UI's own "Share" button works this way). Every ``compare`` run saves one view
of its models, grouped by activation (one mean curve per activation, min-max
band over seeds), charts filtered to accuracy, under two keys: the parent run's
id, and ``latest`` (moved to the newest comparison in that experiment). The
run logs the link (:func:`view_url`).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from typing import Any

from activation_compare.identity import TAG_MODEL
from activation_compare.tracking.runs import TAG_PARENT_RUN_ID
from activation_compare.tracking.store import Store

logger = logging.getLogger(__name__)

SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
LATEST = "latest"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# The address of ``mlflow ui`` / ``mlflow server`` started with their defaults.
DEFAULT_UI = "http://127.0.0.1:5000"
# The charts a comparison opens on (MLflow's chart search: a regular expression).
CHARTS = "^(val_)?accuracy$"
_DESCRIPTION = (
    "One parent run per `kedro run` of `compare`, named for what it compares, and one child run "
    "per trained model (`<activation>-seed<N>`). Each run logs a link to its comparison "
    "(this experiment's runs page, chart view, models grouped by activation); "
    f"`?viewStateShareKey={LATEST}` opens the newest."
)


def comparison_view(parent_run_id: str) -> dict[str, Any]:
    """The UI state of one comparison: its models only, grouped by activation, accuracy charts."""
    return {
        "searchFilter": f"tags.`{TAG_PARENT_RUN_ID}` = '{parent_run_id}' AND tags.`{TAG_MODEL}` LIKE '%'",
        "orderByKey": "attributes.start_time",
        "orderByAsc": True,
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "param", "groupByData": "activation"}]},
        "useGroupedValuesInCharts": True,
        "runsHiddenMode": "SHOW_ALL",
        "hideEmptyCharts": True,
        "chartsSearchFilter": CHARTS,
    }


def view_url(base_url: str, experiment_id: str, key: str) -> str:
    """The link that opens a saved view: runs page, chart mode, MLflow's model-training layout."""
    query = urllib.parse.urlencode(
        {"workflowType": "machine_learning", "compareRunsMode": "CHART", "viewStateShareKey": key}
    )
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{query}"


def ui_base_url(tracking_uri: str) -> str:
    """Where the UI of ``tracking_uri`` is: the server itself, or ``mlflow ui``'s default address."""
    return tracking_uri if tracking_uri.startswith(("http://", "https://")) else DEFAULT_UI


def share_comparison(store: Store, parent_run_id: str) -> str | None:
    """Declare the experiment as model training, save the comparison's view; the link, or None. Never raises."""
    try:
        view = json.dumps(comparison_view(parent_run_id), separators=(",", ":"))
        client, experiment_id = store.client, store.experiment_id
        existing = client.get_experiment(experiment_id).tags
        # A kind or description the user chose in the UI is theirs.
        for tag, value in ((EXPERIMENT_KIND_TAG, MODEL_TRAINING), ("mlflow.note.content", _DESCRIPTION)):
            if tag not in existing:
                client.set_experiment_tag(experiment_id, tag, value)
        for key in (parent_run_id, LATEST):
            client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG_PREFIX + key, view)
    except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
        logger.warning("MLflow: could not save the comparison's chart view: %s", exc)
        return None
    return view_url(ui_base_url(store.uri), store.experiment_id, parent_run_id)
