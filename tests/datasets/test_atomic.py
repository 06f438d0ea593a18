import json

import pandas as pd
import pytest
from kedro.io import DatasetError

from activation_compare.datasets.atomic import AtomicCSVDataset, AtomicJSONDataset, AtomicTextDataset


def test_save_writes_the_final_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "reports" / "summary.json"
    AtomicJSONDataset(filepath=str(target)).save({"accuracy": 0.7})
    assert json.loads(target.read_text()) == {"accuracy": 0.7}
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_a_failed_save_keeps_the_previous_file_whole(tmp_path):
    target = tmp_path / "summary.json"
    dataset = AtomicJSONDataset(filepath=str(target))
    dataset.save({"accuracy": 0.7})
    with pytest.raises(DatasetError):
        dataset.save({"accuracy": object()})  # not JSON-serialisable: fails mid-write
    assert json.loads(target.read_text()) == {"accuracy": 0.7}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_csv_and_text_round_trip(tmp_path):
    table = AtomicCSVDataset(filepath=str(tmp_path / "t.csv"), save_args={"index": False})
    table.save(pd.DataFrame({"activation": ["relu"], "test_accuracy": [0.69]}))
    assert table.load()["activation"].tolist() == ["relu"]
    text = AtomicTextDataset(filepath=str(tmp_path / "t.md"))
    text.save("# report\n")
    assert text.load() == "# report\n"


def test_a_versioned_dataset_loads_its_own_runs_version_not_a_newer_one(tmp_path):
    """Two runs save the same versioned file; each reads back what it saved itself."""
    import pickle

    from kedro.io.core import Version

    target = str(tmp_path / "report.json")
    ours = AtomicJSONDataset(filepath=target, version=Version(None, "2026-01-01T00.00.00.000Z"))
    newer = AtomicJSONDataset(filepath=target, version=Version(None, "2026-01-01T00.00.01.000Z"))
    ours.save({"run": "ours"})
    newer.save({"run": "newer"})  # a concurrent run, a moment later
    assert ours.load() == {"run": "ours"}
    # The version travels with the dataset to ParallelRunner's worker processes.
    assert pickle.loads(pickle.dumps(ours)).load() == {"run": "ours"}
    # Before this run saved anything (or with no save version), Kedro's latest.
    unsaved = AtomicJSONDataset(filepath=target, version=Version(None, "2026-01-01T00.00.02.000Z"))
    assert unsaved.load() == {"run": "newer"}
    pinned = AtomicJSONDataset(filepath=target, version=Version("2026-01-01T00.00.00.000Z", None))
    assert pinned.load() == {"run": "ours"}
    assert sorted(p.name for p in (tmp_path / "report.json").iterdir()) == [
        "2026-01-01T00.00.00.000Z", "2026-01-01T00.00.01.000Z"
    ]


@pytest.mark.slow
def test_a_model_with_rrelu_loads_in_a_process_that_never_imported_the_layer(tmp_path):
    # As in a ParallelRunner or Dask worker: the evaluate node's process loads the
    # trained model before anything there imported activation_compare.layers.
    import subprocess
    import sys

    import keras

    from activation_compare.datasets.atomic import AtomicTensorFlowModelDataset
    from activation_compare.layers import RReLU

    path = tmp_path / "rrelu.keras"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), RReLU(name="act")])
    AtomicTensorFlowModelDataset(filepath=str(path)).save(model)
    script = (
        "import sys\n"
        "from activation_compare.datasets.atomic import AtomicTensorFlowModelDataset as D\n"
        "assert 'activation_compare.layers' not in sys.modules\n"
        f"model = D(filepath={str(path)!r}).load()\n"
        "print(type(model.get_layer('act')).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "RReLU"


def test_a_full_disk_during_a_model_save_leaves_no_version_folder(tmp_path):
    """ENOSPC while the .keras file is copied into its version folder (issue 22, item 9):
    one StorageError naming the file, and neither a partial file nor an empty
    ``<file>.keras/<run id>/`` folder is left for a version that was never saved."""
    import errno

    import keras
    from kedro.io.core import Version

    from activation_compare.datasets.atomic import AtomicTensorFlowModelDataset
    from activation_compare.storage import StorageError

    models = tmp_path / "06_models"
    models.mkdir()
    target = models / "relu_seed0.keras"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    earlier = AtomicTensorFlowModelDataset(filepath=str(target), version=Version(None, "run-1"))
    earlier.save(model)

    dataset = AtomicTensorFlowModelDataset(filepath=str(target), version=Version(None, "run-2"))
    real_put = dataset._fs.put

    def disk_fills_up(local, remote, *args, **kwargs):
        with open(remote, "wb") as partial:  # the copy starts, then the disk is full
            partial.write(b"PK\x03\x04")
        raise OSError(errno.ENOSPC, "No space left on device", remote)

    dataset._fs.put = disk_fills_up
    with pytest.raises(StorageError, match=r"No space left on device \(ENOSPC\)") as raised:
        dataset.save(model)
    dataset._fs.put = real_put
    assert str(target / "run-2" / "relu_seed0.keras") in str(raised.value)
    assert sorted(p.name for p in target.iterdir()) == ["run-1"]
    assert [p.name for p in (target / "run-1").iterdir()] == ["relu_seed0.keras"]
