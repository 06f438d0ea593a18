"""The benchmark's code on tiny sizes: it runs, interleaves and reports (no timing is asserted)."""

from __future__ import annotations

import json

import numpy as np

from activation_compare import benchmark
from activation_compare.datasets import CIFAR10_CLASSES, Cifar10BinaryDataset
from activation_compare.datasets._download import file_md5
from activation_compare.datasets.types import LabelledImages


def test_synthetic_archive_has_the_official_layout(tmp_path):
    rng = np.random.default_rng(0)
    train = LabelledImages(rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 10))
    test = LabelledImages(rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 3))
    archive = tmp_path / "cifar-10-binary.tar.gz"
    benchmark.write_binary_archive(archive, train, test, CIFAR10_CLASSES)
    loaded = Cifar10BinaryDataset(
        archive_path=str(archive), md5=file_md5(archive), size=archive.stat().st_size
    ).load()
    assert np.array_equal(loaded.train.images, train.images)
    assert np.array_equal(loaded.train.labels, train.labels)
    assert np.array_equal(loaded.test.images, test.images)
    assert loaded.class_names == CIFAR10_CLASSES


def test_summary_leaves_the_first_epoch_out():
    runs = [[{"epoch_time_s": 9.0, "val_accuracy": 0.1, "loss": 2.0},
             {"epoch_time_s": 2.0, "val_accuracy": 0.2, "loss": 1.5},
             {"epoch_time_s": 4.0, "val_accuracy": 0.3, "loss": 1.0}]]
    summary = benchmark._summary(runs)
    assert summary["first_epoch_s"] == 9.0
    assert summary["epoch_s_median"] == 3.0
    assert (summary["epoch_s_min"], summary["epoch_s_max"]) == (2.0, 4.0)
    assert summary["final_val_accuracy"] == 0.3


def test_machine_description_names_the_cpu_features():
    machine = benchmark.machine_description()
    assert machine["logical_cpus"] >= 1
    assert set(machine["cpu_flags"]) >= {"avx2", "fma", "avx512f"}


def test_interleaved_training_on_tiny_data(tmp_path, capsys):
    out = tmp_path / "results.json"
    code = benchmark.main([
        "--data", "", "--train-size", "200", "--test-size", "100", "--epochs", "2",
        "--sections", "training", "--variants", "original_rrelu,project_relu",
        "--out", str(out),
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["training"]) == {"original_rrelu", "project_relu"}
    for result in report["training"].values():
        (run,) = result["runs"]
        assert [row["epoch"] for row in run] == [0, 1]
        assert result["epoch_s_median"] > 0
        assert result["tf"]["tensorflow"]
        assert result["max_rss_mb"] > 0
    assert "synthetic" in report["data_source"]
    assert "machine" in report
    printed = capsys.readouterr().out
    assert "Per-epoch seconds" in printed and str(out) in printed
