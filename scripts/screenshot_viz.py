#!/usr/bin/env python
"""Screenshot Kedro-Viz's view of the ``compare`` pipeline into ``docs/images/``.

Needs Chromium from the OS (no browser download)::

    sudo apt-get update && sudo apt-get install -y chromium

Then, from the project root::

    uv run python scripts/screenshot_viz.py                 # base/local config
    uv run python scripts/screenshot_viz.py --env paper     # another environment

What it does: ``kedro viz build`` (the same API responses ``kedro viz run``
serves) in a throwaway copy of the project's configuration, so nothing is
written into the project; the static site is served by ``python -m
http.server`` on 127.0.0.1; headless Chromium opens it, driven over the
DevTools protocol, and takes:

* ``kedro_viz_compare.png``: the ``compare`` pipeline, one collapsed block per
  activation namespace;
* ``kedro_viz_compare_expanded.png``: the same with every namespace expanded;
* ``kedro_viz_node.png``: one node selected (``--node``), its source and
  docstring in the code panel.

Offline: Kedro-Viz's build makes no network call, and the browser resolves no
host but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _headless import (
    Browser,
    background,
    executable,
    free_port,
    project_root,
    wait_for_http,
)

# Kedro-Viz keeps its UI settings in localStorage["KedroViz"]; set before the app starts.
UI_SETTINGS = {
    "showFeatureHints": False,  # no "what's new" pop-ups over the graph
    "isPrettyName": False,  # node names as written in the pipeline
    "visible": {
        "code": False,
        "graph": True,
        "miniMap": False,
        "sidebar": True,
        "slicing": True,
        "traceback": False,
    },
    "flags": {"sizewarning": False},
}
GRAPH_READY = "document.querySelectorAll('.pipeline-node').length > 3"
NO_NETWORK = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost",
    "DO_NOT_TRACK": "1",
    "KEDRO_DISABLE_TELEMETRY": "1",
}


def copy_for_build(project: Path, destination: Path) -> Path:
    """What ``kedro viz build`` reads: project metadata, configuration, dataset stats.

    The package itself is imported from the environment (an editable install of src/).
    """
    destination.mkdir(parents=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (project / name).is_file():
            shutil.copy2(project / name, destination / name)
    shutil.copytree(project / "conf", destination / "conf")
    (destination / "src").mkdir()
    if (project / ".viz").is_dir():  # dataset sizes recorded by the last `kedro run`
        shutil.copytree(project / ".viz", destination / ".viz")
    return destination


def build(project: Path, env: str | None, workdir: Path) -> Path:
    """Run ``kedro viz build`` in a copy of ``project``; return the static site's folder."""
    copy = copy_for_build(project, workdir / "project")
    environ = {**os.environ, **NO_NETWORK}
    if env:
        environ["KEDRO_ENV"] = env  # `kedro viz build` has no --env; Kedro reads KEDRO_ENV
    print(f"kedro viz build (env {environ.get('KEDRO_ENV') or 'local'}) ...", flush=True)
    result = subprocess.run(
        [executable("kedro"), "viz", "build"],
        cwd=copy,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    site = copy / "build"
    # `kedro viz build` prints its errors and still exits 0.
    if result.returncode != 0 or not (site / "api" / "main").is_file():
        sys.exit(f"kedro viz build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return site


def node_id(site: Path, pipeline: str, full_name: str) -> str:
    data = json.loads((site / "api" / "pipelines" / pipeline).read_text())
    for node in data["nodes"]:
        if node.get("full_name") == full_name or (node["type"] == "task" and node["name"] == full_name):
            return node["id"]
    names = sorted(n.get("full_name", n["name"]) for n in data["nodes"] if n["type"] == "task")
    sys.exit(f"no node {full_name!r} in pipeline {pipeline!r}; nodes: {names}")


def shoot(site: Path, args: argparse.Namespace) -> list[Path]:
    available = json.loads((site / "api" / "main").read_text())["pipelines"]
    if args.pipeline not in {p["id"] for p in available}:
        sys.exit(f"no pipeline {args.pipeline!r}; Kedro-Viz has {[p['id'] for p in available]}")
    selected = node_id(site, args.pipeline, args.node) if args.node else None
    has_code = False
    if selected:
        metadata = json.loads((site / "api" / "nodes" / selected).read_text())
        has_code = bool(metadata.get("code"))
        if not has_code:
            print(
                f"warning: Kedro-Viz has no source for {args.node} (not a plain function), "
                "so its code panel will be empty",
                file=sys.stderr,
            )
    settings = {**UI_SETTINGS, "theme": args.theme}
    out = Path(args.out_dir)
    port = free_port()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)]
    written: list[Path] = []
    with background(server) as process:
        base = f"http://127.0.0.1:{port}/"
        wait_for_http(base, 30, process)
        with Browser(args.width, args.height) as browser:
            browser.send(
                "Page.addScriptToEvaluateOnNewDocument",
                source=f"localStorage.setItem('KedroViz', {json.dumps(json.dumps(settings))});",
            )
            shots = [
                ("kedro_viz_compare.png", f"pid={args.pipeline}&expandAllPipelines=false", False),
                ("kedro_viz_compare_expanded.png", f"pid={args.pipeline}&expandAllPipelines=true", False),
            ]
            if selected:  # expanded, so that a node inside a namespace is on the graph
                query = f"pid={args.pipeline}&expandAllPipelines=true&sid={selected}"
                shots.append(("kedro_viz_node.png", query, has_code))
            for name, query, show_code in shots:
                browser.navigate(base + "?" + query)
                browser.wait_until(GRAPH_READY, timeout=120, what="the Kedro-Viz graph")
                browser.settle(3)  # the layout animates into place
                if "sid=" in query:
                    browser.wait_until(
                        "!!document.querySelector('.pipeline-metadata__title')", 30, "the node panel"
                    )
                if show_code:
                    browser.wait_until(
                        "!!document.querySelector('#pipeline-toggle-input-code')", 30, "Show Code"
                    )
                    browser.evaluate("document.querySelector('#pipeline-toggle-input-code').click()")
                    browser.wait_until("!!document.querySelector('.pipeline-metadata-code')", 30, "the code")
                    browser.settle(2)
                written.append(browser.screenshot(out / name))
                print(f"wrote {out / name}", flush=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", help="the Kedro project (default: this repository)")
    parser.add_argument("--env", default=os.environ.get("KEDRO_ENV"), help="Kedro environment")
    parser.add_argument("--pipeline", default="compare")
    parser.add_argument(
        "--node",
        default="compare_activations_node",
        help="node to select for kedro_viz_node.png ('' to skip)",
    )
    parser.add_argument("--out-dir", default=None, help="default: <project>/docs/images")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1200)
    args = parser.parse_args(argv)
    project = project_root(args.project)
    args.out_dir = args.out_dir or str(project / "docs" / "images")
    with tempfile.TemporaryDirectory(prefix="kedro-viz-build-") as tmp:
        site = build(project, args.env, Path(tmp))
        shoot(site, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
