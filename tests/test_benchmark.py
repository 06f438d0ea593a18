"""The benchmark machinery on tiny synthetic data: it runs, takes turns and reports (no timing asserted).

The TF 2.15 environment of the original code is not built here (600 MB); the
seed code's worker protocol is exercised with its Keras 3 port, and with the
original stack only when that environment already exists.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from activation_compare.datasets import CIFAR10_CLASSES, Cifar10BinaryDataset
from activation_compare.datasets._download import file_md5
from activation_compare.datasets.types import LabelledImages
from benchmarks import baseline_env, cpu, data, limits, report
from benchmarks.interleave import summary


def test_synthetic_archive_has_the_official_layout(tmp_path):
    rng = np.random.default_rng(0)
    train = LabelledImages(rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 10))
    test = LabelledImages(rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 3))
    archive = tmp_path / "cifar-10-binary.tar.gz"
    data.write_binary_archive(archive, train, test, CIFAR10_CLASSES)
    loaded = Cifar10BinaryDataset(archive_path=str(archive), md5=file_md5(archive), size=archive.stat().st_size).load()
    assert np.array_equal(loaded.train.images, train.images)
    assert np.array_equal(loaded.test.labels, test.labels)
    assert loaded.class_names == CIFAR10_CLASSES


def test_images_are_the_pipelines_stratified_subsample(tmp_path):
    out = data.prepare_images(None, tmp_path / "cache", 200, 50, tmp_path / "images.npz")
    with np.load(out) as arrays:
        assert arrays["x_train"].shape == (200, 32, 32, 3) and arrays["x_train"].dtype == np.uint8
        assert np.bincount(arrays["y_train"]).tolist() == [20] * 10
        assert arrays["x_test"].shape == (50, 32, 32, 3)


def test_summary_leaves_the_first_epoch_out():
    runs = [[{"epoch_time_s": 9.0, "wall_s": 9.5, "val_accuracy": 0.1},
             {"epoch_time_s": 2.0, "wall_s": 2.5, "val_accuracy": 0.2},
             {"epoch_time_s": 4.0, "wall_s": 4.1, "val_accuracy": 0.3}]]
    result = summary(runs)
    assert (result["first_epoch_s"], result["epoch_s_median"]) == (9.0, 3.0)
    assert (result["epoch_s_min"], result["epoch_s_max"]) == (2.0, 4.0)
    assert result["wall_s_median"] == pytest.approx(3.3)
    assert result["val_accuracy_per_epoch"] == [[0.1, 0.2, 0.3]]
    assert report.overheads({"kedro_relu": {"runs": runs}})["kedro_relu"]["median_s"] == pytest.approx(0.3)


def test_targets_say_met_only_when_every_figure_is_within():
    rows = {
        "original_relu": {"epoch_s_median": 10.0, "epoch_s_min": 9.0},
        "kedro_relu": {"epoch_s_median": 7.0, "epoch_s_min": 6.0, "wall_s_median": 8.5, "wall_s_min": 7.0},
    }
    (target,) = report.targets(rows)
    assert target["ratio"] == "kedro_relu / original_relu"
    assert target["medians"] == pytest.approx(0.7) and target["wall_medians"] == pytest.approx(0.85)
    assert target["met"] is False  # the wall epoch (0.85) misses 0.8


def test_model_arithmetic_is_counted_per_layer():
    # Forward multiply-adds: conv1 777,600 + conv2 3,115,008 + dense 16,000.
    assert limits.FORWARD_FLOPS == 2 * 3_908_608
    assert limits.epoch_flops(10, 0) == 10 * limits.TRAIN_FLOPS
    assert limits.TRAIN_FLOPS < 3 * limits.FORWARD_FLOPS


def test_unknown_variant_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        cpu.parse_args(["--variants", "project_relu,orignal_relu"])
    err = capsys.readouterr().err
    assert "--variants orignal_relu: unknown" in err and "original_relu" in err


def test_project_and_kedro_rows_may_name_their_precision(capsys):
    assert cpu._row("kedro_relu_float32") == ("kedro_relu", "float32")
    assert cpu._row("project_rrelu_bfloat16") == ("project_rrelu", "bfloat16")
    assert cpu._row("kedro_rrelu") == ("kedro_rrelu", None)
    assert cpu._row("original_relu_float32") == ("original_relu_float32", None)  # its stack's own
    cpu.parse_args(["--variants", "kedro_relu_float32,project_rrelu_bfloat16"])
    with pytest.raises(SystemExit):
        cpu.parse_args(["--variants", "kedro_relu_fp8"])
    assert "--variants kedro_relu_fp8: unknown" in capsys.readouterr().err


@pytest.mark.slow
def test_interleaved_workers_on_tiny_data(tmp_path, capsys):
    """Real worker processes: the seed code's Keras 3 port, the node and a real kedro run."""
    variants = ["port_rrelu", "project_relu", "kedro_relu", "kedro_rrelu_bfloat16"]
    if (baseline_env.DEFAULT_DIR / baseline_env.MARKER).is_file():
        variants.append("original_relu")  # the TF 2.15 stack, when it is already built
    out = tmp_path / "results.json"
    code = cpu.main([
        "--data", "", "--train-size", "200", "--test-size", "100", "--epochs", "2",
        "--variants", ",".join(variants), "--out", str(out),
    ])
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result["training"]) == set(variants)
    for name, row in result["training"].items():
        (run,) = row["runs"]
        assert len(run) == 2, name
        assert row["epoch_s_median"] > 0 and row["max_rss_mb"] > 0
        assert len(row["val_accuracy_per_epoch"][0]) == 2
    assert result["training"]["kedro_relu"]["wall_s_median"] > 0
    assert "kedro_relu" in result["overheads"]
    assert result["limits"]["matmul_float32_gflops"] > 0
    assert result["throughput"]["project_relu"]["of_matmul_peak"] > 0
    printed = capsys.readouterr().out
    assert "Validation accuracy per epoch" in printed and str(out) in printed


@pytest.mark.slow
def test_rrelu_parts_prices_every_part(tmp_path, capsys):
    from benchmarks import rrelu_parts

    out = tmp_path / "parts.json"
    assert rrelu_parts.main(["--steps", "1", "--rounds", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["step_ms"]) == {"relu", "layer", "no_draw", "draw"}
    assert set(result["validation_epoch_ms"]) == {"relu", "rrelu_leaky_relu", "rrelu_where"}
    assert all(row["min_ms"] > 0 for section in ("step_ms", "validation_epoch_ms") for row in result[section].values())
    assert "fastest" in capsys.readouterr().out



@pytest.mark.slow
def test_dask_scaling_times_real_runs_on_one_and_two_workers(tmp_path, capsys):
    from benchmarks import dask_scaling

    out = tmp_path / "scaling.json"
    assert dask_scaling.main(["--data", "", "--train-size", "200", "--test-size", "100", "--epochs", "1",
                              "--seeds", "0", "--workers", "1,2", "--rounds", "1", "--sequential",
                              "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["wall_s"]) == {"1", "2", "sequential"}
    assert all(len(t) == 1 and t[0] > 0 for t in result["wall_s"].values())
    assert len(result["speedup_vs_first"]["2"]) == 1 and result["efficiency_median"]["2"] > 0
    assert all(len(t) == 1 and t[0] > 0 for t in result["models_span_s"].values())
    assert result["models_efficiency_median"]["2"] > 0
    assert "round 1: 2 worker(s)" in capsys.readouterr().out
