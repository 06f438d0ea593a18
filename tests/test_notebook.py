"""notebooks/compare_activations.ipynb runs top to bottom on a smoke ``compare`` run, so it cannot rot.

A module-wide fixture runs ``kedro run --env smoke --pipeline=compare`` with two
seeds (so the notebook's mean ± s.d. bands and confidence intervals are
exercised) in a throwaway project copy; its MLflow store is the copy's
``mlflow.db``. The notebook is copied into the copy's ``notebooks/`` folder and
executed there with nbclient, on a kernel spec written for the running
interpreter (ipykernel; nothing is downloaded or installed globally).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import PROJECT_ROOT, copy_project, kedro_cli, run_output, test_env
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK = PROJECT_ROOT / "notebooks" / "compare_activations.ipynb"
KERNEL = "activation-compare-tests"
SEEDS = (0, 1)


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory):
    """A kernel spec for this interpreter in a private JUPYTER_PATH; the variables the kernel gets."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, display_name=KERNEL, prefix=str(prefix))
    return {
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        # No Jupyter state in the developer's home directory.
        "JUPYTER_DATA_DIR": str(prefix / "data"),
        "JUPYTER_RUNTIME_DIR": str(prefix / "runtime"),
        "IPYTHONDIR": str(prefix / "ipython"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project copy where a smoke ``compare`` ran (two seeds), tracked in its own mlflow.db."""
    project = copy_project(tmp_path_factory.mktemp("notebook") / "project")
    seeds = " ".join(str(s) for s in SEEDS)
    result = kedro_cli(
        project, "run", "--env", "smoke", "--pipeline=compare", "--params", f"training.seeds={seeds}"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert (project / "mlflow.db").is_file()
    return project


def _execute(workdir: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Execute a copy of the notebook with ``workdir`` as its folder; return it with outputs."""
    for name in ("ACTIVATION_COMPARE_PROJECT", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "KEDRO_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / NOTEBOOK.name
    shutil.copy2(NOTEBOOK, target)
    notebook = nbformat.read(target, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name=KERNEL,
        timeout=600,
        startup_timeout=120,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    return notebook


def _figures(notebook: nbformat.NotebookNode) -> list[str]:
    """The texts drawn on each figure, as the notebook writes them into the PNG's "Description"."""
    from PIL import Image

    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if "image/png" in output.get("data", {}):
                image = Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))
                texts.append(image.info.get("Description", ""))
    return texts


def _text(notebook: nbformat.NotebookNode) -> str:
    """Every text output (streams, text/plain, text/markdown, errors) of the executed notebook."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts += [data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html")]
            parts += output.get("traceback", [])
    return "\n".join(parts)


def test_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "clear the notebook's outputs"


@pytest.mark.slow
def test_notebook_runs_on_the_latest_smoke_run(
    smoke_project: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **kernel_env,
        # The project is found as the parent of notebooks/ (no ACTIVATION_COMPARE_PROJECT).
        "KEDRO_ENV": "smoke",
        "MLFLOW_TRACKING_URI": f"sqlite:///{(smoke_project / 'mlflow.db').as_posix()}",
    }
    notebook = _execute(smoke_project / "notebooks", env, monkeypatch)
    text = _text(notebook)

    assert f"Project: {smoke_project.resolve()}" in text
    assert "4 models: activations ['relu', 'rrelu'], seeds [0, 1], 2 epochs" in text
    # The statistical verdict, with its interval, from comparison_summary.json.
    summary = json.loads(run_output(smoke_project / "data" / "smoke" / "08_reporting" / "comparison_summary.json").read_text())
    verdict = summary["comparisons"]["rrelu"]["verdict"]
    assert "95% CI [" in verdict and verdict in text
    assert "rrelu − relu: 95% CI [" in text and " pts over 2 seeds" in text
    # The pipeline's figures (overlay, a confusion matrix per model, the overlay from
    # MLflow's metrics), each with the run's provenance footer and the SYNTHETIC DATA mark.
    figures = _figures(notebook)
    assert len(figures) == 1 + 4 + 1
    for drawn in figures:
        assert "SYNTHETIC DATA — not CIFAR-10" in drawn
        assert "data: synthetic · environment: smoke" in drawn and "run's seeds 0,1" in drawn
    assert "Train (dashed) and validation (solid) accuracy per activation" in figures[0]
    assert "Confusion matrix: rrelu (seed 1)" in "\n".join(figures[1:5])
    assert figures[5].count("MLflow: ") == 1
    # MLflow: the newest parent run and its four children, matching the files.
    assert "MLflow: parent run " in text and "4 model runs" in text
    assert "The MLflow run matches the files read above." in text
    for name in ("relu-seed0", "relu-seed1", "rrelu-seed0", "rrelu-seed1"):
        assert name in text
    # Where the numbers come from, said before any of them.
    assert "SYNTHETIC DATA — not CIFAR-10" in text
    assert "Provenance: data synthetic; environment smoke; 2 epochs; seeds [0, 1]" in text


@pytest.mark.slow
def test_without_kedro_env_the_notebook_reads_the_environment_of_the_newest_comparison(
    smoke_project: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the smoke environment has run here: the default environment's data/ has no comparison.
    env = {**kernel_env, "MLFLOW_TRACKING_URI": f"sqlite:///{(smoke_project / 'mlflow.db').as_posix()}"}
    text = _text(_execute(smoke_project / "notebooks", env, monkeypatch))
    assert "Kedro environment: smoke (its comparison is the newest)" in text
    assert "4 models: activations ['relu', 'rrelu'], seeds [0, 1], 2 epochs" in text
    assert "The MLflow run matches the files read above." in text


@pytest.mark.slow
def test_readmes_command_leaves_an_html_page_to_open(smoke_project: Path, kernel_env: dict[str, str]) -> None:
    """README, "Look at the results": `jupyter nbconvert --to html --execute notebooks/compare_activations.ipynb`."""
    notebooks = smoke_project / "notebooks"
    notebooks.mkdir(exist_ok=True)
    shutil.copy2(NOTEBOOK, notebooks / NOTEBOOK.name)
    env = test_env(**kernel_env, MLFLOW_TRACKING_URI=f"sqlite:///{(smoke_project / 'mlflow.db').as_posix()}")
    jupyter = str(Path(sys.executable).with_name("jupyter"))
    done = subprocess.run(
        [jupyter, "nbconvert", "--to", "html", "--execute", f"--ExecutePreprocessor.kernel_name={KERNEL}",
         "notebooks/compare_activations.ipynb"],
        cwd=smoke_project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    page = (notebooks / "compare_activations.html").read_text(encoding="utf-8")
    summary = json.loads(run_output(smoke_project / "data" / "smoke" / "08_reporting" / "comparison_summary.json").read_text())
    assert summary["comparisons"]["rrelu"]["verdict"] in page
    assert page.count("data:image/png;base64") >= 3  # the figures are in the page itself


@pytest.mark.slow
def test_notebook_says_to_run_the_pipeline_first(
    tmp_path: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = copy_project(tmp_path / "empty")
    env = {**kernel_env, "ACTIVATION_COMPARE_PROJECT": str(empty), "KEDRO_ENV": "smoke"}
    with pytest.raises(CellExecutionError) as error:
        _execute(tmp_path / "elsewhere", env, monkeypatch)
    # Kedro's rich tracebacks replace IPython's, so read the exception itself.
    assert error.value.ename == "NoCompareRunYet", f"{error.value.ename}: {error.value.evalue}"
    assert "run `kedro run --pipeline=compare` first" in error.value.evalue
    assert str(empty) in error.value.evalue
    assert not (empty / "mlflow.db").exists()  # reading never creates a store


@pytest.mark.slow
def test_project_root_from_env_must_be_a_project(
    tmp_path: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**kernel_env, "ACTIVATION_COMPARE_PROJECT": str(tmp_path / "nowhere")}
    with pytest.raises(CellExecutionError) as error:
        _execute(tmp_path / "notebooks", env, monkeypatch)
    assert error.value.ename == "FileNotFoundError"
    assert "is not a Kedro project" in error.value.evalue


@pytest.mark.slow
def test_with_one_seed_the_notebook_says_why_there_is_no_interval(
    tmp_path: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = copy_project(tmp_path / "project")
    result = kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare", "--params", "training.seeds=0")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    env = {**kernel_env, "KEDRO_ENV": "smoke", "MLFLOW_TRACKING_URI": f"sqlite:///{(project / 'mlflow.db').as_posix()}"}
    notebook = _execute(project / "notebooks", env, monkeypatch)
    text = _text(notebook)
    assert "2 models: activations ['relu', 'rrelu'], seeds [0], 2 epochs" in text
    assert "one seed: no interval; run several seeds" in text  # in the verdict table, not None
    assert 'rrelu: one seed: no interval; run several seeds, e.g. `kedro run --pipeline=compare --params "training.seeds=0 1 2 3 4"`.' in text
    plain = [  # Kedro's IPython extension colours reprs: without the colours
        re.sub(r"\x1b\[[0-9;]*m", "", output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    ]
    tables = [table for table in plain if "seeds (pairs)" in table]
    assert len(tables) == 1 and "None" not in tables[0]
    figures = _figures(notebook)
    assert len(figures) == 1 + 2 + 1
    assert all("SYNTHETIC DATA — not CIFAR-10" in drawn and "run's seeds 0 ·" in drawn for drawn in figures)
