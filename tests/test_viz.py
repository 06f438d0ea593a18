"""Kedro-Viz sees what ``kedro viz run`` should show: the pipelines, one block per activation, docstrings.

One ``kedro viz build`` (the real CLI, in a subprocess) runs in a throwaway
project copy, smoke environment; one ``kedro viz run --env paper
--include-hooks`` (README, "Look at the results") saves its API responses and is
stopped. It writes the same API responses that
``kedro viz run`` serves (``build/api/main``, ``build/api/pipelines/<name>``,
``build/api/nodes/<id>``) and exits: no server, no browser, no network (the
proxy variables point at a closed port, so an accidental request fails at once
instead of waiting). The tests read those JSON files.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import KEDRO, copy_project, kedro_cli, test_env

# Real CLIs in subprocesses (README, Tests).
pytestmark = pytest.mark.slow

PIPELINES = {"__default__", "compare", "data_ingestion", "data_processing", "modelling"}
NAMESPACES = ("relu", "rrelu")  # conf/base/parameters_compare.yml, smoke keeps them
SEED = 0  # conf/base/parameters_modelling.yml: training.seeds = [0]
# The label kedro-viz shows for a model's node (its name inside the namespace, which
# names the activation too) -> (module under activation_compare.pipelines, function).
MODEL_NODES = {
    "build_model_{namespace}_seed%d_node" % SEED: ("modelling/nodes.py", "build_model"),
    "train_model_{namespace}_seed%d_node" % SEED: ("modelling/nodes.py", "train_model"),
    "evaluate_model_{namespace}_seed%d_node" % SEED: ("modelling/nodes.py", "evaluate_model"),
    "plot_model_figures_{namespace}_seed%d_node" % SEED: ("reporting/figures.py", "plot_model_figures"),
}
COMPARE_NODE = "compare_activations_node"

# Anything that tries the network fails at once (port 9: discard, nothing listens).
OFFLINE = {
    "KEDRO_ENV": "smoke",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
    "BROWSER": "false",  # webbrowser.open would run `false`, never a real browser
}


@pytest.fixture(scope="module")
def viz_api(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``build/api`` of ``kedro viz build`` in a smoke project copy."""
    project = copy_project(tmp_path_factory.mktemp("viz") / "project")
    result = kedro_cli(project, "viz", "build", timeout=300, env=OFFLINE)
    api = project / "build" / "api"
    # `kedro viz build` reports its own failures on stdout and still exits 0.
    assert result.returncode == 0 and (api / "main").is_file(), (
        f"kedro viz build failed (exit {result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    assert "Success" in result.stdout, result.stdout[-4000:]
    return api


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _pipeline(api: Path, name: str) -> dict[str, Any]:
    path = api / "pipelines" / name
    assert path.is_file(), f"kedro-viz has no pipeline {name!r}"
    return _read(path)


def _tasks(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task nodes by their full (namespaced) name."""
    return {n["full_name"]: n for n in pipeline["nodes"] if n["type"] == "task"}


def _docstring(relative: str, function: str) -> str:
    """First line of a node function's docstring, read from source (no TensorFlow import)."""
    spec = importlib.util.find_spec("activation_compare.pipelines")
    assert spec is not None and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations))) / relative
    for item in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(item, ast.FunctionDef) and item.name == function:
            doc = ast.get_docstring(item)
            assert doc, f"{function} in {relative} has no docstring"
            return doc.splitlines()[0]
    raise AssertionError(f"no function {function} in {source}")


def test_all_registered_pipelines_are_listed(viz_api: Path) -> None:
    main = _read(viz_api / "main")
    assert {p["id"] for p in main["pipelines"]} >= PIPELINES
    for name in PIPELINES:
        assert _pipeline(viz_api, name)["selected_pipeline"] == name


@pytest.mark.parametrize("pipeline", ["compare", "modelling"])
def test_one_collapsible_block_per_activation(viz_api: Path, pipeline: str) -> None:
    data = _pipeline(viz_api, pipeline)
    blocks = {n["id"]: n for n in data["nodes"] if n["type"] == "modularPipeline"}
    assert set(blocks) == set(NAMESPACES)
    assert set(data["modular_pipelines"]) == {"__root__", *NAMESPACES}
    root_children = {c["id"] for c in data["modular_pipelines"]["__root__"]["children"]}
    tasks = _tasks(data)
    for namespace in NAMESPACES:
        assert blocks[namespace]["name"] == namespace  # the block's label
        assert namespace in root_children  # collapsed, it is one node of the top level
        inside = {c["id"] for c in data["modular_pipelines"][namespace]["children"]}
        for node in MODEL_NODES:
            label = node.format(namespace=namespace)
            task = tasks[f"{namespace}.{label}"]
            assert task["modular_pipelines"] == [namespace]
            assert task["name"] == label  # the label: without the namespace prefix, with the activation
            assert task["id"] in inside
    # No two nodes look the same in the graph.
    labels = [task["name"] for task in tasks.values()]
    assert len(labels) == len(set(labels))


def test_data_pipelines_have_no_blocks(viz_api: Path) -> None:
    for name in ("data_ingestion", "data_processing"):
        data = _pipeline(viz_api, name)
        assert set(data["modular_pipelines"]) == {"__root__"}
        assert not any(n["type"] == "modularPipeline" for n in data["nodes"])
    ingestion = _tasks(_pipeline(viz_api, "data_ingestion"))
    assert set(ingestion) == {"select_splits_node"}
    processing = _tasks(_pipeline(viz_api, "data_processing"))
    assert {"select_splits_node", "normalize_train_node", "split_validation_node"} <= set(processing)


def test_compare_node_collects_every_report(viz_api: Path) -> None:
    data = _pipeline(viz_api, "compare")
    tasks = _tasks(data)
    compare = tasks[COMPARE_NODE]
    assert compare["modular_pipelines"] in (None, [])  # top level, outside the blocks
    names = {n["id"]: n.get("full_name") or n["name"] for n in data["nodes"]}
    into_compare = {names[e["source"]] for e in data["edges"] if e["target"] == compare["id"]}
    assert {f"{ns}.report_seed{SEED}" for ns in NAMESPACES} <= into_compare
    out_of_compare = {names[e["target"]] for e in data["edges"] if e["source"] == compare["id"]}
    assert {"comparison_table", "comparison_summary", "comparison_curves"} <= out_of_compare
    # The comparison is not part of `modelling`.
    assert COMPARE_NODE not in _tasks(_pipeline(viz_api, "modelling"))


@pytest.mark.parametrize(
    "node, source",
    [
        *[(f"{ns}.{node.format(namespace=ns)}", where) for ns in NAMESPACES for node, where in MODEL_NODES.items()],
        (COMPARE_NODE, ("reporting/nodes.py", "compare_activations")),
    ],
)
def test_node_panel_shows_the_docstring(viz_api: Path, node: str, source: tuple[str, str]) -> None:
    """Kedro-Viz shows a node's source (docstring included) only for plain functions."""
    task = _tasks(_pipeline(viz_api, "compare"))[node]
    metadata = _read(viz_api / "nodes" / task["id"])
    code = metadata.get("code") or ""
    assert _docstring(*source) in code, (
        f"kedro-viz shows no source/docstring for {node}: its func must be a plain "
        f"function (functools.wraps), not a functools.partial. Metadata: "
        f"{ {k: v for k, v in metadata.items() if k != 'parameters'} }"
    )
    assert metadata["run_command"] == f"kedro run --to-nodes='{node}'"


def _free_port() -> int:
    """A free port below 49152 (kedro-viz refuses the ephemeral range the OS would pick)."""
    for port in random.sample(range(20000, 49000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 49000")


def test_kedro_viz_run_with_env_and_hooks_shows_that_environments_activations(tmp_path: Path) -> None:
    """README's command: `kedro viz run --env paper --include-hooks` shows the paper's activations.

    The pipeline's shape comes from the run's parameters, which the project hook
    reads (README, Design decisions); kedro-viz runs hooks only when asked to.
    """
    project = copy_project(tmp_path / "project")
    paper = yaml.safe_load((project / "conf" / "paper" / "parameters.yml").read_text())
    expected = set(paper["compare"]["activations"])
    assert len(expected) == 5
    saved = tmp_path / "viz"
    env = test_env(**OFFLINE)
    del env["KEDRO_ENV"]  # the environment comes from --env alone
    log = tmp_path / "viz.log"
    with log.open("w") as output:
        viz = subprocess.Popen(
            [KEDRO, "viz", "run", "--env", "paper", "--include-hooks", "--no-browser",
             "--host", "127.0.0.1", "--port", str(_free_port()), "--save-file", str(saved)],
            cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,  # its server process too is stopped below
        )
    compare = saved / "api" / "pipelines" / "compare"
    try:
        # The API responses are saved before the server starts serving them.
        deadline = time.monotonic() + 300
        while not compare.is_file() and viz.poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(2)  # let the file be written completely
    finally:
        if viz.poll() is None:
            os.killpg(viz.pid, signal.SIGTERM)
        viz.wait(timeout=60)
    assert compare.is_file(), f"no API responses saved:\n{log.read_text()[-3000:]}"
    data = _read(compare)
    blocks = {n["id"] for n in data["nodes"] if n["type"] == "modularPipeline"}
    assert blocks == expected
