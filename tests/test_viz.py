"""Kedro-Viz sees what ``kedro viz run`` should show: the pipelines, one block per activation, docstrings.

One ``kedro viz build`` (the real CLI, in a subprocess) runs in a throwaway
project copy, smoke environment. It writes the same API responses that
``kedro viz run`` serves (``build/api/main``, ``build/api/pipelines/<name>``,
``build/api/nodes/<id>``) and exits: no server, no browser, no network (the
proxy variables point at a closed port, so an accidental request fails at once
instead of waiting). The tests read those JSON files.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import copy_project, kedro_cli

PIPELINES = {"__default__", "compare", "data_ingestion", "data_processing", "modelling"}
NAMESPACES = ("relu", "rrelu")  # conf/base/parameters_compare.yml, smoke keeps them
SEED = 0  # conf/base/parameters_modelling.yml: training.seeds = [0]
# Per namespace: node name -> (module under activation_compare.pipelines, function).
MODEL_NODES = {
    f"build_model_seed{SEED}_node": ("modelling/nodes.py", "build_model"),
    f"train_model_seed{SEED}_node": ("modelling/nodes.py", "train_model"),
    f"evaluate_model_seed{SEED}_node": ("modelling/nodes.py", "evaluate_model"),
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
            task = tasks[f"{namespace}.{node}"]
            assert task["modular_pipelines"] == [namespace]
            assert task["name"] == node  # shown without the namespace prefix
            assert task["id"] in inside


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
        *[(f"{ns}.{node}", where) for ns in NAMESPACES for node, where in MODEL_NODES.items()],
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
