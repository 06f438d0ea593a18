"""DaskRunner on a real LocalCluster (worker processes), with a pipeline of plain functions."""

from __future__ import annotations

import operator
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset

from activation_compare.identity import TRAIN_SET, ComparePlan, Role, Step
from activation_compare.runner import DaskRunner

pytestmark = pytest.mark.slow  # starts Dask worker processes

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The project's own parameters (relu and rrelu, seed 0): the runner finds the models in them.
PARAMETERS = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")["parameters"]
PLAN = ComparePlan.of(PARAMETERS["compare"]["activations"], PARAMETERS["training"]["seeds"])


def _pipeline() -> Pipeline:
    nodes = [Node(sorted, "raw", TRAIN_SET, name="prepare_node")]
    for key in PLAN.models:
        untrained, model = key.dataset(Role.UNTRAINED_MODEL), key.dataset(Role.MODEL)
        nodes += [
            Node(list, TRAIN_SET, untrained, name=key.node(Step.BUILD)),
            Node(sum, untrained, model, name=key.node(Step.TRAIN)),
            Node(operator.neg, model, key.dataset(Role.REPORT), name=key.node(Step.EVALUATE)),
        ]
    reports = PLAN.datasets(Role.REPORT)
    nodes.append(Node(operator.add, reports[:2], "total", name="compare_node"))
    return Pipeline(nodes)


def _catalog(tmp_path: Path) -> DataCatalog:
    return DataCatalog(
        datasets={
            "parameters": MemoryDataset(PARAMETERS),
            "raw": MemoryDataset([3, 1, 2]),
            # Reports cross from the model tasks to the comparison through storage.
            **{name: JSONDataset(filepath=str(tmp_path / f"{name}.json")) for name in PLAN.datasets(Role.REPORT)},
        }
    )


def test_models_run_as_tasks_and_results_come_back(tmp_path: Path, caplog):
    catalog = _catalog(tmp_path)

    with caplog.at_level("INFO", logger="activation_compare.runner"):
        DaskRunner(n_workers=2).run(_pipeline(), catalog)

    assert [JSONDataset(filepath=str(tmp_path / f"{n}.json")).load() for n in PLAN.datasets(Role.REPORT)] == [-6, -6]
    assert catalog.load("total") == -12  # an in-memory pipeline output comes back to the driver
    completed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Completed")]
    assert len(completed) == 2 + len(PLAN.models)  # one task per model, one per shared node
    assert any(m.startswith(f"Completed {PLAN.models[0].name} on tcp://") for m in completed)


def test_a_failing_node_fails_the_run_with_its_own_error(tmp_path: Path):
    catalog = _catalog(tmp_path)
    catalog["raw"] = [3, "one", 2]  # sorted() cannot order a str among ints

    with pytest.raises(TypeError, match="'<' not supported"):
        DaskRunner(n_workers=1).run(_pipeline(), catalog)
