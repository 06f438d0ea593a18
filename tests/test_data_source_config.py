"""One source of truth for where the data comes from (issue 22, item 7).

``data.source``, ``data.path`` and ``data.max_images`` are read by the
parameters (MLflow params, provenance, figures) and by the catalog's
``raw_images`` (which loads the data). The catalog cannot read parameters, so
both read ``globals.yml`` and ``--params``; a value put in a parameters file
alone would make the run load one source and report another. Such a run is
refused before anything starts, naming the file and where the value belongs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from activation_compare import settings
from activation_compare.hooks.project import DataSourceSplitError, check_data_source_agrees
from conftest import PROJECT_ROOT, kedro_cli


def _loader(conf: Path, env: str | None, runtime_params: dict | None = None) -> OmegaConfigLoader:
    return OmegaConfigLoader(
        str(conf), env=env, runtime_params=runtime_params, **settings.CONFIG_LOADER_ARGS
    )


@pytest.mark.parametrize("env", [None, "smoke", "paper"])
def test_the_shipped_environments_agree(env: str | None) -> None:
    check_data_source_agrees(_loader(PROJECT_ROOT / "conf", env))


def test_params_on_the_command_line_reach_both(project_copy: Path) -> None:
    """--params overrides the parameters and the catalog alike: nothing to refuse."""
    (project_copy / "conf" / "local" / "parameters.yml").write_text("data:\n  source: cifar10\n")
    loader = _loader(project_copy / "conf", None, {"data": {"source": "synthetic"}})
    check_data_source_agrees(loader)


def test_a_value_in_globals_reaches_both(project_copy: Path) -> None:
    (project_copy / "conf" / "local" / "globals.yml").write_text("data:\n  source: synthetic\n")
    loader = _loader(project_copy / "conf", None)
    assert loader["parameters"]["data"]["source"] == "synthetic"
    assert loader["catalog"]["raw_images"]["source"] == "synthetic"
    check_data_source_agrees(loader)


def test_max_images_in_a_base_parameters_file_is_refused(project_copy: Path) -> None:
    path = project_copy / "conf" / "base" / "parameters_data.yml"
    path.write_text(path.read_text().replace("${globals:data.max_images}", "50"))
    names_the_file = r"data\.max_images = 50 is set in conf/base/parameters_data\.yml"
    with pytest.raises(DataSourceSplitError, match=names_the_file):
        check_data_source_agrees(_loader(project_copy / "conf", "smoke"))


CASES = {
    # The issue's case: the parameters say synthetic, the catalog would read CIFAR-10.
    "source in the default environment": (
        (),
        "local/parameters.yml",
        "data:\n  source: synthetic\n",
        "data.source = 'synthetic' is set in conf/local/parameters.yml",
        "Set it in conf/local/globals.yml instead (data: {source: synthetic})",
    ),
    "path in the smoke environment": (
        ("--env", "smoke"),
        "smoke/parameters_data.yml",
        "data:\n  path: images\n",
        "data.path = 'images' is set in conf/smoke/parameters_data.yml",
        "or pass --params data.path=images",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_data_value_only_the_parameters_read_is_refused(project_copy: Path, case: str) -> None:
    args, relative, content, names_the_file, says_where = CASES[case]
    (project_copy / "conf" / relative).write_text(content)
    result = kedro_cli(project_copy, "run", *args, "--pipeline", "data_ingestion", timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert names_the_file in output, output[-3000:]
    assert says_where in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert len(output.strip().splitlines()) <= 6, output[-3000:]
    # Refused before anything started: no download, no cache, no run in the store.
    assert not any(p.is_file() for p in (project_copy / "data").rglob("*")), output[-3000:]
