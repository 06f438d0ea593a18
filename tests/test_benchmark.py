"""The benchmark machinery on tiny synthetic data: it runs, takes turns and reports (no timing asserted).

The TF 2.15 environment of the original code is not built here (600 MB); the
seed code's worker protocol is exercised with its Keras 3 port, and with the
original stack only when that environment already exists.
"""

from __future__ import annotations

import json
import math
import os
import time

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


def test_steadiness_is_the_worst_runs_slowest_epoch_over_its_median():
    steady = [{"epoch_time_s": t, "wall_s": t + 0.1, "cpu_s": 2 * t, "steal_s": 0.0} for t in (9.0, 2.0, 2.0, 2.4)]
    bimodal = [{"epoch_time_s": t, "wall_s": t, "cpu_s": t, "steal_s": s}
               for t, s in ((9.0, 0.0), (2.0, 0.0), (4.6, 1.0), (2.0, 0.0))]
    result = report.steadiness({"kedro_relu": {"runs": [steady]}, "kedro_rrelu": {"runs": [steady, bimodal]}})
    # The first epoch (tracing) is left out: 2.4 / 2.0 in the steady run.
    assert result["kedro_relu"]["epoch_time_s"] == pytest.approx(1.2) and result["kedro_relu"]["met"]
    assert result["kedro_relu"]["cpu_per_wall"] == [2.0, 2.0, 2.0]
    # The worst run counts: 4.6 / 2.0, one epoch of it with the host's steal.
    assert result["kedro_rrelu"]["epoch_time_s"] == pytest.approx(2.3) and not result["kedro_rrelu"]["met"]
    assert result["kedro_rrelu"]["stolen_epochs"] == 1


def test_bfloat16_levers_are_measured_against_the_bfloat16_row():
    assert report.lever_base("lever_bf16_rrelu_steps_50") == "lever_bf16_rrelu"
    assert report.lever_base("lever_bf16_relu_one_interop_thread") == "lever_bf16_relu"
    assert report.lever_base("lever_bf16_relu") == "lever_base_relu"  # bfloat16 itself, against float32
    assert report.lever_base("lever_rrelu_no_draw") == "lever_base_rrelu"
    assert report.lever_base("lever_base_relu") is None
    assert all(report.lever_base(name) in (*cpu.LEVERS, None) for name in cpu.LEVERS)


def test_a_workers_cpu_seconds_and_the_hosts_steal_are_read():
    from benchmarks.interleave import host_steal_s, process_cpu_s

    before = process_cpu_s(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert process_cpu_s(os.getpid()) - before >= 0.2
    assert host_steal_s() >= 0  # not NaN: /proc/stat is read
    assert math.isnan(process_cpu_s(2**22 + 1))  # no such process


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
        assert all(epoch["cpu_s"] > 0 and epoch["steal_s"] >= 0 for epoch in run), name
    assert set(result["steadiness"]) == set(variants)
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


def test_startup_reads_first_imports_and_renders_the_phases():
    from benchmarks import startup

    stderr = "\n".join([
        "import time: self [us] | cumulative | imported package",
        "import time:       120 |    3200000 |   tensorflow",
        "import time:        50 |       800 |     tensorflow",  # a later, nested mention: not the first import
        "import time:       300 |     830000 | mlflow",
        "some other line",
    ])
    assert startup.import_times(stderr) == {"tensorflow": 3.2, "mlflow": 0.83}
    marks = {"spawn": 0.0, "context_created": 0.8, "catalog_created": 1.2, "pipeline_start": 1.8, "first_node": 3.5,
             "first_build_end": 8.0, "first_train_node": 8.3, "first_step_start": 8.5, "first_step_end": 9.9,
             "process_end": 20.0}
    rounds = [{"round": 0, "import_tensorflow_s": 5.0, "marks_s": {**marks, "first_step_start": 9.0}},
              {"round": 1, "import_tensorflow_s": 5.0, "marks_s": marks}]
    table = startup.render({"rounds": rounds, "imports_s": {"tensorflow": 3.2}})
    assert "| **first train step starts** | 8.50 | 9.00 |" in table  # later rounds; the first round apart
    assert "/ `import tensorflow`: 1.70 (step starts), 1.98 (first call ends)" in table
    assert "tensorflow 3.20 s" in table


@pytest.mark.slow
def test_startup_marks_every_phase_of_a_real_kedro_run(tmp_path):
    """One `kedro run --env smoke` through the startup worker: Kedro's CLI with the marks, in order."""
    from benchmarks import startup
    from benchmarks.project_copy import copy_project

    marks, _ = startup.smoke_run(copy_project(tmp_path / "project"), seed=3)
    order = [end for _, _, end in startup.PHASES]
    assert all(name in marks for name in order), marks
    assert [marks[name] for name in order] == sorted(marks[name] for name in order)
    assert marks["first_step_end"] < marks["pipeline_end"] <= marks["process_end"]


@pytest.mark.slow
def test_epoch_probe_reports_what_the_process_did_each_epoch(capsys):
    from benchmarks import epoch_probe

    epoch_probe.main(["--activation", "rrelu", "--images", "1000", "--epochs", "2", "--tensor-slices"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1", "2"]
    for line in lines:
        fields = line.split()
        wall, cpu = float(fields[3]), float(fields[6])
        assert wall > 0 and cpu > 0 and "runq_delay" in line and "io_pressure" in line
    # The sampler process saw the second epoch (the first may end before it starts).
    assert 0 <= float(lines[-1].split()[-1]) <= 1


def test_host_probe_holds_each_core_and_the_slower_one_to_its_median():
    from benchmarks.host_probe import EPOCH_WINDOWS, Window, summarize

    steady = [Window(100, 0.5, 0.5)] * (2 * EPOCH_WINDOWS)
    # CPU 1 does half the work in its third window, at the same CPU seconds.
    uneven = list(steady)
    uneven[2] = Window(50, 0.5, 0.5)
    report = summarize({0: steady, 1: uneven})
    assert report["windows"] == 2 * EPOCH_WINDOWS and report["cpu_over_wall_min"] == 1.0
    assert report["cores"]["0"]["half_second"]["slowest_over_median"] == 1.0
    assert report["cores"]["1"]["half_second"] == {"min": 100.0, "median": 200.0, "max": 200.0, "slowest_over_median": 2.0}
    # Over 3 s the slow window is one of six: groups of 183.3 and 200 products/s, median 191.7.
    three = report["slower_core"]["three_seconds"]
    assert (three["min"], three["median"], three["max"]) == (183.3, 191.7, 200.0)
    assert three["slowest_over_median"] == round((1150 / 6) / (1100 / 6), 3)


def test_host_probe_runs_one_pinned_worker_per_cpu(capsys):
    from benchmarks import host_probe

    host_probe.main(["--seconds", "1.2"])
    table = capsys.readouterr().out
    assert "| slower of the two, each window |" in table
    assert table.count("| CPU ") == len(os.sched_getaffinity(0))
    assert table.splitlines()[-1].endswith("| under 3 s |")


def test_validation_batch_times_both_sizes_and_compares_their_metrics(capsys):
    from benchmarks import validation_batch

    validation_batch.main(["--images", "120", "--repeats", "2", "--batches", "40,120"])
    table = capsys.readouterr().out
    for activation in ("relu", "rrelu"):
        assert f"| {activation} | 40 |" in table and f"| {activation} | 120 |" in table
    # The paired ratio of the first size to itself is 1, and its metrics differ by nothing.
    for activation in ("relu", "rrelu"):
        (first,) = [line for line in table.splitlines() if line.startswith(f"| {activation} | 40 |")]
        assert first.endswith("| 1.00 | 0.0e+00 | 0 |")


def test_startup_renders_a_revision_timed_in_the_same_rounds_beside_this_one():
    from benchmarks import startup

    marks = {"spawn": 0.0, "context_created": 0.8, "catalog_created": 1.2, "pipeline_start": 1.8, "first_node": 3.5,
             "first_build_end": 8.0, "first_train_node": 8.3, "first_step_start": 8.5, "first_step_end": 9.9,
             "process_end": 20.0}
    before = {**marks, "first_build_end": 9.0, "first_train_node": 9.3, "first_step_start": 9.5, "first_step_end": 10.9}
    rounds = [{"round": i, "import_tensorflow_s": 5.0, "marks_s": marks, "against_marks_s": before} for i in range(3)]
    table = startup.render({"rounds": rounds, "against": {"revision": "main~1", "commit": "abc1234"}})
    assert "| at main~1 (abc1234), same rounds | difference |" in table.splitlines()[0]
    assert "| first model built (TensorFlow and Keras imported) | 4.50 | 4.50 | 5.50 | -1.00 |" in table
    assert "| **first train step starts** | 8.50 | 8.50 | 9.50 | -1.00 |" in table
    assert "At main~1 in the same rounds: 1.90 (step starts)." in table


def test_startup_copies_the_project_at_a_git_revision(tmp_path):
    from benchmarks import startup

    project = startup.project_at("HEAD", tmp_path / "project")
    assert (project / "src" / "activation_compare" / "__init__.py").is_file()
    assert (project / "conf" / "base" / "catalog.yml").is_file() and (project / "conf" / "local").is_dir()
    assert (project / "pyproject.toml").is_file()


def test_startup_refuses_a_revision_that_is_not_a_commit(capsys):
    from benchmarks import startup

    with pytest.raises(SystemExit) as exit_:
        startup.main(["--against", "no-such-revision-anywhere", "--rounds", "1"])
    assert exit_.value.code == 2
    assert "--against no-such-revision-anywhere: not a commit" in capsys.readouterr().err
    assert startup._revision("HEAD")  # this checkout's own


@pytest.mark.timeout(60)  # without the last turn, the driver would wait for the worker forever
def test_interleaved_workers_finish_their_runs_one_at_a_time_after_the_last_epoch(tmp_path):
    """The rest of a run (a kedro run's evaluation and figures) gets a turn of its own, in order."""
    import sys
    from pathlib import Path

    from benchmarks.interleave import Variant, run_interleaved

    log = tmp_path / "turns.jsonl"
    env = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    variants = {
        name: Variant("turn_taking_worker", {"name": name, "epochs": 2, "log": str(log)}, sys.executable, env)
        for name in ("a", "b")
    }
    results = run_interleaved(variants, epochs=2, log=lambda _: None)
    turns = [(line["worker"], line["event"]) for line in map(json.loads, log.read_text().splitlines())]
    assert turns == [
        ("a", "epoch 1"), ("b", "epoch 1"), ("b", "epoch 2"), ("a", "epoch 2"),  # the order rotates
        ("a", "rest of the run"), ("b", "rest of the run"),  # then each finishes alone
    ]
    assert [len(results[name]["runs"][0]) for name in ("a", "b")] == [2, 2]
    assert results["a"]["run_wall_s"] == 0.05 and results["b"]["max_rss_mb"] == 1.0


def test_op_profile_sums_ops_by_phase_layer_and_kernel():
    from benchmarks import op_profile

    scope = "while/body/_1/while/cond/then/_{}/while/cond/StatefulPartitionedCall/"
    train, validation = scope.format(151), scope.format(95)
    events = [
        (train + "gradient_tape/seed_cnn_relu_seed0_1/conv2_1/convolution/Conv2DBackpropFilter:_MklNativeConv2DBackpropFilterWithBias", 0.3),
        (train + "gradient_tape/seed_cnn_relu_seed0_1/conv2_1/convolution/Conv2DBackpropFilter:_MklNativeConv2DBackpropFilterWithBias", 0.1),
        (train + "seed_cnn_relu_seed0_1/act1_1/Relu:_MklNativeFusedConv2D", 0.1),
        (validation + "seed_cnn_relu_seed0_1/act1_1/Relu:_MklNativeFusedConv2D", 0.05),
        (train + "adam/Sqrt:Sqrt", 0.01),
        (train + "adam_3/Sqrt:Sqrt", 0.01),  # a later optimizer of the same process
        (train + "compile_loss/sparse_categorical_crossentropy/Mul:Mul", 0.01),
        # Grappler's name for the images' cast: not the optimizer's, for all its name.
        (validation + "seed_cnn_relu_seed0_1/ArithmeticOptimizer/ReorderCastLikeAndValuePreserving_float_Cast:Cast", 0.02),
    ]
    summary = op_profile.summarize(events, train_steps=100, validation_steps=20)
    rows = {(row["phase"], row["part"], row["kernel"]): row for row in summary["rows"]}
    assert rows["train", "conv2 backward", "_MklNativeConv2DBackpropFilterWithBias"]["ms_per_step"] == 4.0
    assert rows["train", "conv2 backward", "_MklNativeConv2DBackpropFilterWithBias"]["calls"] == 2
    assert rows["train", "act1 forward", "_MklNativeFusedConv2D"]["ms_per_step"] == 1.0
    assert rows["validation", "act1 forward", "_MklNativeFusedConv2D"]["ms_per_step"] == 2.5
    assert rows["train", "optimizer", "Sqrt"]["ms_per_step"] == 0.2
    assert rows["train", "loss", "Mul"]["ms_per_step"] == 0.1
    assert rows["validation", "other (input cast, step counter, iterator)", "Cast"]["ms_per_step"] == 1.0
    assert summary["traced_op_s"] == 0.6
    assert summary["rows"][0]["share"] == round(0.4 / 0.6, 4)


def test_op_profile_traces_an_epoch_of_the_training_node(tmp_path, capsys):
    from benchmarks import op_profile

    out = tmp_path / "profile.json"
    op_profile.main(["--activation", "relu", "--images", "300", "--precision", "float32", "--out", str(out)])
    result = json.loads(out.read_text())
    parts = {(row["phase"], row["part"]) for row in result["rows"]}
    # Forward and backward of each convolution in training, the forward alone in validation.
    assert {("train", "conv2 backward"), ("train", "conv1 backward"), ("validation", "conv2 forward")} <= parts
    assert ("train", "optimizer") in parts
    assert result["train_steps"] == 3 and result["validation_steps"] == 1
    assert 0.99 <= sum(row["share"] for row in result["rows"]) <= 1.01
    capsys.readouterr()
    op_profile.main(["--render", str(out), "--top", "3"])
    table = capsys.readouterr().out
    assert table.startswith("relu, float32, 300 images: the traced epoch took")
    assert table.count("| train |") >= 3


def test_report_pools_runs_of_the_same_command_and_pairs_rounds_within_each():
    from benchmarks import report

    def result(kedro: list[float], original: list[float]) -> dict:
        def row(epochs: list[float]) -> dict:
            runs = [[{"epoch_time_s": s, "val_accuracy": 0.5} for s in epochs]]
            return {"runs": runs, "tf": {"tensorflow": "x"}}
        return {"training": {"kedro_relu": row(kedro), "original_relu": row(original)},
                "limits": {"matmul_bfloat16_gflops": 1000.0}}

    # Paired by round within each file (first epochs left out): 0.4, 0.4, then 0.6, 0.6.
    first = result([9.0, 2.0, 2.0], [9.0, 5.0, 5.0])
    second = result([9.0, 1.2, 1.2], [9.0, 2.0, 2.0])
    pooled = report.pool([first, second])
    assert len(pooled["training"]["kedro_relu"]["runs"]) == 2
    assert "limits" not in pooled  # each run had its own peak
    assert pooled["training"]["kedro_relu"]["epoch_s_median"] == pytest.approx(1.6)  # of 2, 2, 1.2, 1.2
    ratios = report.ratios(pooled["training"], {})["kedro_relu / original_relu"]
    assert ratios["paired"] == pytest.approx(0.5)  # neither file alone: 0.4, 0.6
    assert first["training"]["kedro_relu"]["runs"] == [[{"epoch_time_s": s, "val_accuracy": 0.5} for s in (9.0, 2.0, 2.0)]]
