"""Which cluster a run uses, and the refusals before anything trains."""

from __future__ import annotations

from pathlib import Path

import dask
import distributed  # noqa: F401 - registers Dask's distributed defaults before config.set
import pytest

from activation_compare.runner.cluster import (
    ClusterSetupError,
    WorkerInfo,
    connect,
    is_local_tracking_uri,
    local_cluster_size,
    local_folders,
    scheduler_address,
    storage_problems,
    tracking_problems,
    _markers_seen,
)


def test_the_scheduler_comes_from_the_argument_then_dask_config():
    with dask.config.set({"scheduler-address": "tcp://10.0.0.1:8786"}):
        assert scheduler_address() == "tcp://10.0.0.1:8786"
        assert scheduler_address("tcp://127.0.0.1:9999") == "tcp://127.0.0.1:9999"
    with dask.config.set({"scheduler-address": None}):
        assert scheduler_address() is None


def test_a_local_cluster_has_one_single_thread_worker_per_core():
    assert local_cluster_size(8) == (8, 1)
    assert local_cluster_size(1) == (1, 1)


def test_an_unreachable_scheduler_says_what_to_start():
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterSetupError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'.*dask scheduler"):
            with connect("tcp://127.0.0.1:9"):
                pass


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("sqlite:///mlflow.db", True),
        ("sqlite:////abs/mlflow.db", True),
        ("file:///tmp/mlruns", True),
        ("/tmp/mlruns", True),
        ("http://127.0.0.1:5000", False),
        ("https://tracking.example", False),
        ("databricks", False),
    ],
)
def test_local_tracking_stores(uri, local):
    assert is_local_tracking_uri(uri) is local


def test_workers_on_other_hosts_need_a_tracking_server():
    here = {"127.0.0.1", "node0"}
    workers = [WorkerInfo("tcp://127.0.0.1:1", "127.0.0.1"), WorkerInfo("tcp://10.0.0.7:2", "10.0.0.7")]

    (problem,) = tracking_problems(workers, "sqlite:////home/me/p/mlflow.db", here)
    assert "sqlite:////home/me/p/mlflow.db" in problem
    assert "tcp://10.0.0.7:2" in problem and "MLFLOW_TRACKING_URI=http://" in problem
    assert tracking_problems(workers, "http://node0:5000", here) == []
    assert tracking_problems(workers, None, here) == []  # not tracked
    assert tracking_problems(workers[:1], "sqlite:///mlflow.db", here) == []  # all on this host


class _Dataset:
    def __init__(self, **description):
        self.description = description

    def _describe(self):
        return self.description


def test_local_folders_are_the_outermost_existing_ones(tmp_path: Path):
    (tmp_path / "data" / "06_models").mkdir(parents=True)
    datasets = {
        "model": _Dataset(filepath=tmp_path / "data" / "06_models" / "m.keras", protocol="file"),
        "state": _Dataset(path=str(tmp_path / "data" / "06_models" / "checkpoints" / "m")),
        "report": _Dataset(filepath=tmp_path / "data" / "not_yet" / "r.json", protocol="file"),
        "remote": _Dataset(filepath="bucket/x.csv", protocol="s3"),
        "memory": _Dataset(data="<numpy array>"),
    }

    assert local_folders(datasets) == [tmp_path / "data"]


class _Workers:
    """Stands in for a Dask client whose second worker mounts the data somewhere else."""

    def __init__(self, elsewhere: Path):
        self.elsewhere = elsewhere

    def run(self, func, markers, token):
        moved = [str(self.elsewhere / Path(m).name) for m in markers]
        return {"tcp://127.0.0.1:1": func(markers, token), "tcp://10.0.0.7:2": func(moved, token)}


def test_a_worker_that_does_not_see_the_data_folder_is_named(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()

    (problem,) = storage_problems(_Workers(tmp_path / "other"), [tmp_path / "data"])

    assert "worker tcp://10.0.0.7:2 does not see the folder" in problem
    assert str(tmp_path / "data") in problem and "paths.outputs" in problem
    assert list((tmp_path / "data").iterdir()) == []  # the marker is removed


def test_markers_are_read_back_by_content(tmp_path: Path):
    marker = tmp_path / "m"
    marker.write_text("token")

    assert _markers_seen([str(marker), str(tmp_path / "missing")], "token") == [True, False]
    assert _markers_seen([str(marker)], "other") == [False]
