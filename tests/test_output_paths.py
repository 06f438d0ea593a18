"""Output and checkpoint paths on object storage are refused before the run (issue 22, item 8).

The project writes outputs through local paths, locks checkpoint folders with
``flock`` and moves files into place with ``os.replace``: a ``s3://`` path would
become a local folder named ``s3:`` or fail deep inside a save.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from activation_compare.hooks.project import NonLocalStorageError, check_local_paths
from conftest import kedro_cli


@pytest.mark.parametrize("url", ["s3://bucket/runs", "gs://bucket/runs", "abfs://container/runs"])
def test_a_url_as_paths_outputs_is_refused(url: str) -> None:
    with pytest.raises(NonLocalStorageError) as info:
        check_local_paths({"paths": {"inputs": "data", "outputs": url}}, "cloud")
    message = str(info.value)
    assert f"paths.outputs={url!r}" in message and "conf/cloud/globals.yml" in message
    assert "shared filesystem" in message and "not" in message and "supported" in message
    check_local_paths({"paths": {"inputs": "data", "outputs": "/mnt/shared/runs"}})  # accepted


def _refused_before_the_run(  # type: ignore[no-untyped-def]
    project: Path, result, url: str
) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert url in output and "shared filesystem" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    # Nothing ran: no local folder named after the URL, no model trained.
    local_urls = [path for path in project.rglob("*") if path.name.endswith(":")]
    assert not local_urls
    assert not list(project.rglob("*.keras"))


def test_kedro_run_refuses_s3_paths_outputs(project_copy: Path) -> None:
    url = "s3://bucket/activation-compare"
    (project_copy / "conf" / "smoke" / "globals.yml").write_text(
        "data:\n  source: synthetic\n  path: null\n"
        f"paths:\n  outputs: {url}\nenvironment: smoke\n"
    )
    result = kedro_cli(project_copy, "run", "--env", "smoke", "--pipeline=compare", timeout=300)
    _refused_before_the_run(project_copy, result, url)
    assert "paths.outputs" in result.stdout + result.stderr


def test_kedro_run_refuses_a_catalog_output_on_object_storage(project_copy: Path) -> None:
    url = "gs://bucket/smoke/05_model_input/validation_info.json"
    (project_copy / "conf" / "smoke" / "catalog.yml").write_text(
        "validation_info:\n"
        "  type: activation_compare.datasets.atomic.AtomicJSONDataset\n"
        f"  filepath: {url}\n"
        "  versioned: true\n"
    )
    result = kedro_cli(project_copy, "run", "--env", "smoke", "--pipeline=compare", timeout=300)
    _refused_before_the_run(project_copy, result, url)
    assert "validation_info" in result.stdout + result.stderr
