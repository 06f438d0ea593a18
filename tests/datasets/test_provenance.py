"""RunProvenanceDataset: the environment and outputs it is given, the checkout's commit, one date per dataset."""

from __future__ import annotations

import subprocess

import pytest
from kedro.io import DatasetError

from activation_compare.datasets.provenance import RunProvenanceDataset


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repository(path) -> str:
    """A git checkout at ``path`` with one commit of file.txt; returns that commit."""
    _git(path, "init", "-q")
    (path / "file.txt").write_text("one\n")
    _git(path, "add", "file.txt")
    _git(path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()


def test_a_checkout_gives_its_commit_and_says_when_files_changed(tmp_path):
    head = _repository(tmp_path)

    dataset = RunProvenanceDataset(environment="smoke", outputs="data/smoke", project_path=str(tmp_path))
    loaded = dataset.load()
    assert loaded["environment"] == "smoke" and loaded["outputs"] == "data/smoke"
    assert loaded["git_commit"] == head and loaded["git_local_changes"] is False
    assert loaded["date"].endswith(" UTC")

    (tmp_path / "file.txt").write_text("two\n")
    changed = RunProvenanceDataset(environment="smoke", outputs="data/smoke", project_path=str(tmp_path)).load()
    assert changed["git_local_changes"] is True
    # One date per dataset, whatever the clock says by the next load; the load average is read anew.
    again = dataset.load()
    assert again.pop("load_average") is not None and loaded.pop("load_average") is not None
    assert again == loaded


def test_the_commit_is_the_one_checked_out_when_the_run_started(tmp_path):
    first = _repository(tmp_path)
    dataset = RunProvenanceDataset(environment="default", outputs="data", project_path=str(tmp_path))
    (tmp_path / "file.txt").write_text("two\n")  # committed while the run trains
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two")
    loaded = dataset.load()
    assert loaded["git_commit"] == first and loaded["git_local_changes"] is False


def test_outside_git_there_is_no_commit(tmp_path):
    loaded = RunProvenanceDataset(environment="default", outputs="data", project_path=str(tmp_path)).load()
    assert loaded["git_commit"] is None and loaded["git_local_changes"] is None


def test_it_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="read-only"):
        RunProvenanceDataset(environment="default", outputs="data", project_path=str(tmp_path)).save({})


def test_the_cpu_is_named_with_whether_it_computes_bfloat16_natively(tmp_path):
    from activation_compare.datasets.provenance import cpu_description

    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\n"
        "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz\nflags\t\t: fpu\n"
    )
    assert cpu_description(info) == {"model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz",
                                     "avx512_bf16": True, "amx_bf16": True, "bfloat16": True}
    info.write_text("model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu avx2 fma\n")
    assert cpu_description(info)["bfloat16"] is False
    assert cpu_description(tmp_path / "missing")["bfloat16"] is None
    from activation_compare.datasets.provenance import RunProvenanceDataset

    assert set(RunProvenanceDataset(environment="smoke", outputs="data/smoke").load()["cpu"]) == {
        "model", "avx512_bf16", "amx_bf16", "bfloat16"}
