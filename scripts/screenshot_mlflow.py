#!/usr/bin/env python
"""Screenshot MLflow's runs, comparison view, logged model and registered model of the newest ``compare`` run.

Needs Chromium from the OS (no browser download)::

    sudo apt-get update && sudo apt-get install -y chromium

Then, from the project root, after ``kedro run --pipeline=compare``::

    uv run python scripts/screenshot_mlflow.py                # docs/images/mlflow_*.png
    uv run python scripts/screenshot_mlflow.py --env smoke    # the smoke experiment

What it does:

1. Finds the tracking store and experiment the way the project's tracking hook
   does (``conf/base/mlflow.yml``, then ``conf/<env>/mlflow.yml``;
   ``MLFLOW_TRACKING_URI``/``MLFLOW_EXPERIMENT_NAME`` win).
2. For an SQLite store, copies the database (SQLite's online backup, so a run
   that is writing meanwhile is fine) and starts ``mlflow server`` on
   127.0.0.1 on the copy: the project's store is only ever read. An
   ``http(s)://`` tracking URI is used as it is, with no server started.
3. Picks the newest finished parent run of the ``compare`` pipeline (``--run-id`` to
   choose another, ``--include-running`` to allow one still training) and its
   child runs, one per model (``<activation>-seed<N>``).
4. In headless Chromium (which resolves no host but 127.0.0.1), opens the
   experiment's runs table with the parent run expanded
   (``docs/images/mlflow_runs.png``), then the link the run logged: the
   comparison's saved chart view (``activation_compare.tracking.views``:
   its models grouped by activation, accuracy charts), enlarges the charts
   and takes ``docs/images/mlflow_compare.png``. No filtering by hand: what
   the second picture shows is what a user gets from the link.
5. Opens the logged model of the last model run (``rrelu-seed0``; the
   experiment's Models tab): its metrics, params and registered version
   (``docs/images/mlflow_logged_model.png``); then its registered model in the
   Model Registry, with its versions and the ``best`` alias
   (``docs/images/mlflow_registered_model.png``).
6. Saves every picture in 128 colours (a third of the size; 1400 px wide).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _headless import (
    Browser,
    background,
    executable,
    free_port,
    log_tail,
    project_root,
    wait_for_http,
)

PARENT_RUN_NAME = "compare"
# MLflow's UI settings in localStorage: the classic "model training" UI, no assistant panel.
UI_SETTINGS = {
    "mlflow.workflowType_v1": json.dumps("machine_learning"),
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "databricks-dark-mode-pref": "light",
}


# --- where the runs are ---------------------------------------------------------------


def tracking_config(project: Path, env: str | None) -> dict[str, Any]:
    """conf/base/mlflow.yml updated by conf/<env>/mlflow.yml (as Kedro merges them)."""
    import yaml

    config: dict[str, Any] = {}
    for folder in ("base", env or "local"):
        path = project / "conf" / folder / "mlflow.yml"
        if path.is_file():
            config.update(yaml.safe_load(path.read_text()) or {})
    return config


def resolve_uri(uri: str, project: Path) -> str:
    """``sqlite:///mlflow.db`` is relative to the project root (as in activation_compare.tracking)."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :].partition("?")[0]
        if path and not path.startswith("/"):
            return f"sqlite:///{(project / path).resolve().as_posix()}"
    return uri


def copy_sqlite(uri: str, destination: Path) -> str:
    """Copy an SQLite store with SQLite's backup API (consistent even while a run writes)."""
    source = Path(uri[len("sqlite:///") :].partition("?")[0])
    if not source.is_file():
        sys.exit(f"No MLflow store at {source}: run `kedro run --pipeline=compare` first.")
    reader = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=60)
    writer = sqlite3.connect(destination)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()
    return f"sqlite:///{destination.as_posix()}"


def find_runs(
    uri: str, experiment_name: str, run_id: str | None, include_running: bool
) -> tuple[Any, Any, list[Any]]:
    """The experiment, the parent ``compare`` run and its children (oldest first)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        sys.exit(f"No experiment {experiment_name!r} at {uri}: run `kedro run --pipeline=compare` first.")
    if run_id:
        candidates = [client.get_run(run_id)]
    else:
        statuses = {"FINISHED", "RUNNING"} if include_running else {"FINISHED"}
        candidates = [
            run
            for run in client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`kedro.pipeline` = '{PARENT_RUN_NAME}'",
                order_by=["attributes.start_time DESC"],
                max_results=1000,
            )
            if run.info.status in statuses
        ]
    for parent in candidates:
        if "mlflow.parentRunId" in parent.data.tags:
            continue
        children = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
            order_by=["attributes.start_time ASC"],
        )
        if children:
            return experiment, parent, children
    sys.exit(
        f"No finished '{PARENT_RUN_NAME}' run with model runs in experiment {experiment_name!r}: "
        "run `kedro run --pipeline=compare` first (or pass --include-running / --run-id)."
    )


# --- the browser ----------------------------------------------------------------------


def _js(value: Any) -> str:
    return json.dumps(value)


def shoot(base_url: str, experiment: Any, parent: Any, children: list[Any], args: argparse.Namespace) -> list[Path]:
    """Two screenshots: the runs table (the parent expanded), and the comparison's saved chart view."""
    from activation_compare.tracking import views

    parent_id = parent.info.run_id
    names = [c.info.run_name for c in children]
    settings = "".join(f"localStorage.setItem({_js(k)}, {_js(v)});" for k, v in UI_SETTINGS.items())
    table_query = urllib.parse.urlencode({"workflowType": "machine_learning", "compareRunsMode": "TABLE"})
    table_url = f"{base_url}/#/experiments/{experiment.experiment_id}/runs?{table_query}"
    # The link the run logged: what a user opens.
    view_url = views.view_url(base_url, experiment.experiment_id, parent_id)
    row = f'[row-id="{parent_id}"]'
    out = []
    with Browser(args.width, args.height) as browser:
        browser.send("Page.addScriptToEvaluateOnNewDocument", source=settings)
        browser.navigate(table_url)
        expand = f"{row} button[data-component-id*=runnamecellrenderer]"
        browser.wait_until(f"!!document.querySelector({_js(expand)})", 180, "the parent run's row")
        browser.evaluate(f"document.querySelector({_js(expand)}).click()")
        browser.wait_until(
            " && ".join(f"!!document.querySelector('[row-id=\"{c.info.run_id}\"]')" for c in children),
            60, "the child runs' rows",
        )
        browser.settle(2)
        out.append(browser.screenshot(args.out.with_name("mlflow_runs.png")))

        browser.navigate("about:blank")
        browser.navigate(view_url)
        browser.wait_until(
            "document.querySelectorAll('[data-testid=draggable-card-resize-handle]').length > 0",
            180, "the saved view's charts",
        )
        _enlarge_charts(browser, args.chart_height)
        # Every chart names every activation (its group) in its legend.
        activations = sorted({c.data.params.get("activation") or n.rsplit("-seed", 1)[0] for c, n in zip(children, names)})
        legends_ready = (
            "(() => { const t = document.querySelector('[data-testid=draggable-chart-cards-grid]')"
            "?.innerText || ''; return " + _js(activations) + ".every(n => t.includes(n)); })()"
        )
        browser.wait_until(legends_ready, 120, "the charts' legends")
        browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=5, y=args.height - 5)
        browser.settle(3)
        titles = browser.evaluate(
            "Array.from(document.querySelectorAll('[data-testid=draggable-chart-cards-grid] > *'))"
            ".map(c => (c.innerText || '').split('\\n')[0])"
        )
        out.append(browser.screenshot(args.out))
        out += _shoot_models(browser, base_url, experiment, children, args)
    print(f"view: {view_url}\ncharts: {titles}")
    return out


def _body_has(texts: list[str]) -> str:
    return "(() => { const t = document.body?.innerText || ''; return " + _js(texts) + ".every(n => t.includes(n)); })()"


def _shoot_models(browser: Browser, base_url: str, experiment: Any, children: list[Any], args: argparse.Namespace) -> list[Path]:
    """The logged model of the last model run (its metrics, params, registered version), and its registered model."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=args.served)
    child = children[-1]  # e.g. rrelu-seed0: the last activation's first model
    models = [
        m for m in client.search_logged_models(experiment_ids=[experiment.experiment_id])
        if m.source_run_id == child.info.run_id
    ]
    versions = client.search_model_versions(f"run_id = '{child.info.run_id}'")
    if not models or not versions:
        print(f"{child.info.run_name}: no logged model or registered version; skipping the model pages", file=sys.stderr)
        return []
    model, version = models[0], versions[0]
    out = []
    browser.navigate("about:blank")
    browser.navigate(f"{base_url}/#/experiments/{experiment.experiment_id}/models/{model.model_id}")
    # The overview: its metrics (test_accuracy), params (activation) and registered version.
    browser.wait_until(_body_has([model.name, "test_accuracy", "activation", version.name]), 180, "the logged model's page")
    browser.settle(3)
    out.append(browser.screenshot(args.out.with_name("mlflow_logged_model.png")))

    browser.navigate("about:blank")
    browser.navigate(f"{base_url}/#/models/{urllib.parse.quote(version.name)}")
    browser.wait_until(_body_has([version.name, f"Version {version.version}", "best"]), 180, "the registered model's versions")
    browser.settle(3)
    out.append(browser.screenshot(args.out.with_name("mlflow_registered_model.png")))
    print(f"logged model: {model.name} ({model.model_id}); registered: {version.name} version {version.version}")
    return out


def _enlarge_charts(browser: Browser, height: int) -> None:
    """Drag the first chart's corner to half the grid's width: MLflow sizes the others alike."""
    handle = browser.evaluate(
        "(() => { const r = document.querySelector('[data-testid=draggable-card-resize-handle]')"
        ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    grid = browser.evaluate(
        "(() => { const r = document.querySelector('[data-testid=draggable-chart-cards-grid]')"
        ".getBoundingClientRect(); return [r.x, r.y, r.width]; })()"
    )
    x, y = handle
    target_x, target_y = grid[0] + grid[2] / 2 - 10, grid[1] + height
    browser.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
    browser.send("Input.dispatchMouseEvent", type="mousePressed", x=x, y=y, button="left", clickCount=1)
    for step in range(1, 13):
        browser.send(
            "Input.dispatchMouseEvent",
            type="mouseMoved",
            x=x + (target_x - x) * step / 12,
            y=y + (target_y - y) * step / 12,
            button="left",
            buttons=1,
        )
        time.sleep(0.05)
    browser.send(
        "Input.dispatchMouseEvent", type="mouseReleased", x=target_x, y=target_y, button="left", clickCount=1
    )
    browser.settle(2)


def _optimize(path: Path) -> None:
    """A UI screenshot in 128 colours, undithered: a third of the size, no visible change."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="the Kedro project (default: this repository)")
    parser.add_argument("--env", default=os.environ.get("KEDRO_ENV"), help="Kedro environment")
    parser.add_argument("--tracking-uri", help="default: conf/<env>/mlflow.yml or $MLFLOW_TRACKING_URI")
    parser.add_argument("--experiment", help="default: conf/<env>/mlflow.yml or $MLFLOW_EXPERIMENT_NAME")
    parser.add_argument("--run-id", help="the parent run (default: the newest finished 'compare' run)")
    parser.add_argument("--include-running", action="store_true", help="allow a run still in progress")
    parser.add_argument(
        "--out", help="default: <project>/docs/images/mlflow_compare.png (and mlflow_runs.png beside it)"
    )
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--chart-height", type=int, default=480, help="height of each chart, pixels")
    args = parser.parse_args(argv)

    project = project_root(args.project)
    args.out = Path(args.out or project / "docs" / "images" / "mlflow_compare.png")
    config = tracking_config(project, args.env)
    uri = resolve_uri(
        args.tracking_uri
        or os.environ.get("MLFLOW_TRACKING_URI")
        or config.get("tracking_uri")
        or "sqlite:///mlflow.db",
        project,
    )
    experiment_name = (
        args.experiment
        or os.environ.get("MLFLOW_EXPERIMENT_NAME")
        or config.get("experiment_name")
        or "activation-compare"
    )
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "1")

    with tempfile.TemporaryDirectory(prefix="mlflow-screenshot-") as tmp:
        workdir = Path(tmp)
        served = copy_sqlite(uri, workdir / "mlflow.db") if uri.startswith("sqlite:///") else uri
        experiment, parent, children = find_runs(served, experiment_name, args.run_id, args.include_running)
        args.served = served
        print(
            f"experiment {experiment_name!r} ({experiment.experiment_id}), parent run "
            f"{parent.info.run_id} ({parent.info.status}), models: "
            f"{[c.info.run_name for c in children]}",
            flush=True,
        )
        if not served.startswith("sqlite:///"):
            out = shoot(served.rstrip("/"), experiment, parent, children, args)
        else:
            port = free_port()
            log = workdir / "mlflow-server.log"
            environ = {
                **os.environ,
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner or workers
                "MLFLOW_DISABLE_TELEMETRY": "true",
                "DO_NOT_TRACK": "1",
            }
            command = [
                executable("mlflow"), "server",
                "--backend-store-uri", served,
                "--host", "127.0.0.1",
                "--port", str(port),
                "--workers", "1",
            ]  # fmt: skip
            # cwd: anything the server would create (./mlartifacts) goes to the temp dir.
            with background(command, cwd=workdir, env=environ, log=log) as server:
                base = f"http://127.0.0.1:{port}"
                try:
                    wait_for_http(base + "/health", 180, server)
                    out = shoot(base, experiment, parent, children, args)
                except Exception:
                    print(log_tail(log), file=sys.stderr)
                    raise
    for path in out:
        _optimize(path)
    print("wrote " + ", ".join(map(str, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
