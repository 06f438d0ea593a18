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
