"""The rigorous protocol: parameters, plan, pipeline shape, best-epoch weights, and whole runs.

The slow tests run it as a user does (the kedro CLI, a KedroSession) on the
smoke environment and check what the issue asks: the test set is read by the
final evaluations only, the chosen learning rate has the best validation score,
and a final model's weights are those of its best validation epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from kedro.framework.hooks import hook_impl

import activation_compare.layers  # noqa: F401  (registers RReLU for loading)
from activation_compare.identity import (
    LEARNING_RATE,
    TEST_SET,
    ComparePlan,
    ModelKey,
    Role,
    Step,
    tuning_name,
)
from activation_compare.params import InvalidParametersError, check_batch_size, validate_parameters
from activation_compare.pipeline_registry import create_pipelines
from conftest import copy_project, kedro_cli, run_output

SMOKE = "data/smoke"
RIGOROUS = {"compare": {"protocol": "rigorous"}}


def _params(**sections):
    return validate_parameters({"data": {"source": "synthetic"}, **sections})


# --- parameters -------------------------------------------------------------------------------------


def test_the_original_protocol_is_the_default_and_unchanged():
    params = _params()
    assert params.compare.protocol == "original"
    plan = ComparePlan.from_params(params)
    assert plan.protocol == "original" and plan.models == (ModelKey("relu", 0), ModelKey("rrelu", 0))
    assert "split_validation_node" in {n.name for n in create_pipelines(plan)["compare"].nodes}


def test_tuning_parameters_from_the_command_line():
    params = _params(**RIGOROUS, tuning={"learning_rates": "0.01 0.001", "epochs": 3})
    assert params.tuning.learning_rates == [0.01, 0.001] and params.tuning.epochs == 3
    assert params.tuning.validation_size == 5000 and params.tuning.seed == 0


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"compare": {"protocol": "strict"}}, "compare.protocol = 'strict'"),
        ({"tuning": {"learning_rates": "0.001 0.001"}}, "learning rates must be distinct"),
        ({"tuning": {"learning_rates": []}}, "tuning.learning_rates"),
        ({"tuning": {"learning_rates": [-0.1]}}, "tuning.learning_rates.0 = -0.1"),
        ({**RIGOROUS, "data": {"source": "synthetic", "validation_split": 0.1}},
         "data.validation_split=0.1 cannot be used with compare.protocol='rigorous'"),
        ({**RIGOROUS, "data": {"source": "synthetic", "limit_train": 5000}},
         "tuning.validation_size=5000 leaves no training images of data.limit_train=5000"),
    ],
)
def test_bad_rigorous_parameters_are_refused_naming_them(raw, message):
    with pytest.raises(InvalidParametersError, match="Invalid parameters") as raised:
        validate_parameters({"data": {"source": "synthetic"}, **raw})
    assert message in str(raised.value)


def test_a_validation_split_larger_than_the_source_is_refused_before_the_run():
    params = _params(**RIGOROUS, tuning={"validation_size": 600})
    with pytest.raises(InvalidParametersError, match="tuning.validation_size = 600: leaves no training images of the 600"):
        check_batch_size(params, 600)  # the synthetic source's n_train
    check_batch_size(_params(**RIGOROUS, tuning={"validation_size": 100}), 600)


# --- plan and pipeline shape --------------------------------------------------------------------------


def _rigorous_plan(seeds=(0, 1)):
    params = _params(**RIGOROUS, training={"seeds": list(seeds)}, tuning={"learning_rates": [0.001, 0.003], "seed": 7})
    return ComparePlan.from_params(params)


def test_the_rigorous_plan_has_trials_then_final_models_per_activation():
    plan = _rigorous_plan()
    assert plan.protocol == "rigorous"
    assert [k.name for k in plan.models_of("relu")] == [
        "relu_trial0_seed7", "relu_trial1_seed7", "relu_seed0", "relu_seed1"
    ]
    assert plan.final_models == [ModelKey(a, s) for a in ("relu", "rrelu") for s in (0, 1)]
    assert plan.trials_of("rrelu") == [ModelKey("rrelu", 7, trial=0), ModelKey("rrelu", 7, trial=1)]
    assert plan.node("rrelu.train_model_rrelu_trial1_seed7_node") == (ModelKey("rrelu", 7, trial=1), Step.TRAIN)
    assert plan.tuning_node("rrelu.select_learning_rate_node") == "rrelu"
    assert plan.tuning_node("relu.train_model_relu_seed0_node") is None


def test_the_test_set_feeds_only_the_final_evaluations():
    """What kedro-viz shows: test_set has an edge to each final model's evaluate node and nowhere else."""
    plan = _rigorous_plan()
    compare = create_pipelines(plan)["compare"]
    readers = {n.name for n in compare.nodes if TEST_SET in n.inputs}
    assert readers == {key.node(Step.EVALUATE) for key in plan.final_models}
    # Every choice is upstream of the final training and uses no test data.
    assert "hold_out_validation_node" in {n.name for n in compare.nodes}
    for key in plan.final_models:
        train = next(n for n in compare.nodes if n.name == key.node(Step.TRAIN))
        assert tuning_name(key.activation, LEARNING_RATE) in train.inputs
    upstream = compare.to_nodes(*(key.node(Step.TRAIN) for key in plan.final_models))
    assert not [n.name for n in upstream.nodes if TEST_SET in n.inputs]


def test_each_trial_and_each_final_model_is_one_dask_task():
    from activation_compare.runner.units import split_into_units

    plan = _rigorous_plan(seeds=(0,))
    units = split_into_units(create_pipelines(plan)["compare"], plan)
    by_model = {u.model: u for u in units if u.model is not None}
    assert set(by_model) == set(plan.models)
    trial = by_model[ModelKey("relu", 7, trial=0)]
    assert [n.name for n in trial.nodes] == [
        "relu.build_model_relu_trial0_seed7_node", "relu.train_model_relu_trial0_seed7_node", "relu.score_trial_relu_trial0_seed7_node"
    ]
    assert "relu.select_learning_rate_node" in {u.name for u in units}


# --- the best validation epoch's weights are kept -----------------------------------------------------


def _tiny_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)  # as after training: its state is checkpointed too
    return model


def test_the_checkpoint_keeps_the_best_validation_epochs_weights(tmp_path):
    from activation_compare.training_state.store import CheckpointFolder

    model = _tiny_model()
    folder = CheckpointFolder(tmp_path, "tiny")
    record = folder.new_record({}, epochs=5)
    for epoch, val_accuracy in enumerate([0.5, 0.7, 0.6, 0.7, 0.4], start=1):
        model.set_weights([np.full((2, 1), epoch, np.float32), np.zeros(1, np.float32)])
        folder.save_epoch(model, record, epoch, {"loss": 1.0, "val_accuracy": val_accuracy})
    # The last epoch (to resume from) and the best (epoch 2: the earliest of the two 0.7s).
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-0002.npz", "epoch-0005.npz"]
    assert record.best_epoch == 2 and record.weights == "epoch-0005.npz"
    folder.collect_garbage(record)
    assert len(list(tmp_path.glob("epoch-*"))) == 2
    restored = _tiny_model()
    assert folder.restore_best(restored, folder.read()) == 2
    assert np.all(restored.get_weights()[0] == 2.0)


def test_a_checkpoint_without_its_best_weights_asks_for_a_retrain(tmp_path):
    from activation_compare.training_state.store import CheckpointFolder

    folder = CheckpointFolder(tmp_path, "tiny")
    record = folder.new_record({}, epochs=1)
    with pytest.raises(FileNotFoundError, match="training.retrain=true"):
        folder.restore_best(_tiny_model(), record)


# --- whole runs (slow) --------------------------------------------------------------------------------


def _smoke_validation_set():
    """The smoke run's validation split, made again by the same nodes from the same source."""
    from activation_compare.datasets.synthetic import SyntheticImageDataset
    from activation_compare.params import DataParams, TuningParams
    from activation_compare.pipelines.data_ingestion.nodes import select_splits
    from activation_compare.pipelines.data_processing.nodes import hold_out_validation, normalize_images

    train, _, classes = select_splits(SyntheticImageDataset().load(), DataParams(source="synthetic"))
    _, validation, _ = hold_out_validation(normalize_images(train), DataParams(), TuningParams(validation_size=100))
    return validation, classes


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One rigorous smoke ``compare`` through the real CLI, shared by the assertions below."""
    project = copy_project(tmp_path_factory.mktemp("rigorous") / "project")
    result = kedro_cli(project, "run", "--env", "smoke", "--pipeline=compare", "--params", "compare.protocol=rigorous")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return project / SMOKE


@pytest.mark.slow
def test_cli_rigorous_compare_chooses_the_best_validation_rate(cli_run):
    tuning = cli_run / "07_model_output" / "tuning"
    summary = json.loads(run_output(cli_run / "08_reporting" / "comparison_summary.json").read_text())
    assert summary["protocol"] == "rigorous"
    for activation in ("relu", "rrelu"):
        scores = [
            json.loads(run_output(tuning / f"{activation}_trial{i}_seed0_score.json").read_text()) for i in range(3)
        ]
        for score in scores:  # the score is the trial's best validation epoch
            history = pd.read_csv(run_output(tuning / f"{activation}_trial{score['trial']}_seed0_history.csv"))
            assert score["best_val_accuracy"] == pytest.approx(history["val_accuracy"].max())
        best = max(s["best_val_accuracy"] for s in scores)
        expected = min(s["learning_rate"] for s in scores if s["best_val_accuracy"] == best)
        selection = json.loads(run_output(tuning / f"{activation}_learning_rate.json").read_text())
        assert selection["learning_rate"] == expected == summary["tuning"][activation]["learning_rate"]
        assert selection["reason"] == summary["tuning"][activation]["reason"]
    table = pd.read_csv(run_output(cli_run / "08_reporting" / "comparison.csv"))
    assert table.set_index("activation")["learning_rate"].to_dict() == {
        a: summary["tuning"][a]["learning_rate"] for a in ("relu", "rrelu")
    }
    markdown = run_output(cli_run / "08_reporting" / "comparison.md").read_text()
    assert "## Protocol: rigorous" in markdown


@pytest.mark.slow
def test_cli_rigorous_final_models_have_their_best_validation_epochs_weights(cli_run):
    validation, classes = _smoke_validation_set()
    from activation_compare.params import DataParams, ModelParams, TrainingParams
    from activation_compare.pipelines.modelling.nodes import evaluate_model

    for activation in ("relu", "rrelu"):
        report = json.loads(run_output(cli_run / "07_model_output" / f"{activation}_seed0_report.json").read_text())
        history = pd.read_csv(run_output(cli_run / "07_model_output" / f"{activation}_seed0_history.csv"))
        assert report["best_epoch"] == int(history["epoch"][history["val_accuracy"].idxmax()])
        model = keras.saving.load_model(run_output(cli_run / "06_models" / f"{activation}_seed0.keras"), safe_mode=True)
        settings = report["settings"]
        on_validation = evaluate_model(
            model, history, validation, classes, settings["activation_spec"],
            ModelParams(precision=settings["precision"]),
            TrainingParams(epochs=settings["epochs"], batch_size=settings["batch_size"]),
            DataParams(source=report["data"]["source"]), key=ModelKey(activation, 0),
        )
        # The saved model scores, on the validation split, exactly its best epoch's validation accuracy.
        assert on_validation.test_accuracy == pytest.approx(report["best_val_accuracy"], abs=1e-6)


class _LoadRecorder:
    """A Kedro hook that records which node loads which dataset."""

    def __init__(self) -> None:
        self.loads: list[tuple[str, str]] = []

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node) -> None:
        self.loads.append((dataset_name, node.name))


@pytest.mark.slow
def test_a_rigorous_run_loads_the_test_set_only_in_the_final_evaluations(tmp_path, monkeypatch):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    project = copy_project(tmp_path / "project")
    bootstrap_project(project)
    recorder = _LoadRecorder()
    runtime = {**RIGOROUS, "tuning": {"learning_rates": [0.001, 0.003], "epochs": 1}, "training": {"epochs": 2}}
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime) as session:
        session._hook_manager.register(recorder)
        session.run(pipeline_names=["compare"])
    nodes = {node for _, node in recorder.loads}
    assert "relu.train_model_relu_trial1_seed0_node" in nodes and "rrelu.select_learning_rate_node" in nodes
    test_readers = sorted(node for name, node in recorder.loads if name == TEST_SET)
    assert test_readers == ["relu.evaluate_model_relu_seed0_node", "rrelu.evaluate_model_rrelu_seed0_node"]
    # The trials ran with their own rates: two trials per activation, one epoch each.
    for activation in ("relu", "rrelu"):
        for trial in (0, 1):
            history = pd.read_csv(run_output(project / SMOKE / "07_model_output" / "tuning"
                                             / f"{activation}_trial{trial}_seed0_history.csv"))
            assert history["epoch"].tolist() == [1]
    assert not [p for p in (project / "data").rglob("*.keras") if "trial" in p.name]  # trials keep no model file
    _assert_trials_nest_under_their_tuning_runs(project, session.store["session_id"])

    # A second run reuses every trial and final model from its checkpoint (nothing is
    # retrained) and restores the same best epochs: the same choices and test accuracies.
    def reports():
        return {
            a: json.loads(run_output(project / SMOKE / "07_model_output" / f"{a}_seed0_report.json").read_text())
            for a in ("relu", "rrelu")
        }

    first = reports()
    with KedroSession.create(project_path=project, env="smoke", runtime_params=runtime) as again:
        again.run(pipeline_names=["compare"])
    second = reports()
    for activation in ("relu", "rrelu"):
        for field in ("test_accuracy", "best_epoch", "best_val_accuracy", "confusion_matrix"):
            assert second[activation][field] == first[activation][field]


def _assert_trials_nest_under_their_tuning_runs(project: Path, kedro_run_id: str) -> None:
    """MLflow: parent → "<activation>-tuning" (the choice) → one run per trial (its rate and score)."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("activation-compare-smoke")
    found = client.search_runs([experiment.experiment_id], f"tags.`kedro.run_id` = '{kedro_run_id}'")
    runs = {r.info.run_name: r for r in found}
    parent = next(r for r in found if "mlflow.parentRunId" not in r.data.tags)
    for activation in ("relu", "rrelu"):
        tuning = runs[f"{activation}-tuning"]
        assert tuning.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert tuning.info.status == "FINISHED"
        selection = json.loads(run_output(project / SMOKE / "07_model_output" / "tuning"
                                          / f"{activation}_learning_rate.json").read_text())
        assert float(tuning.data.params["chosen_learning_rate"]) == selection["learning_rate"]
        assert tuning.data.tags["activation_compare.selection"] == selection["reason"]
        for trial, rate in enumerate((0.001, 0.003)):
            run = runs[f"{activation}-trial{trial}-seed0"]
            assert run.data.tags["mlflow.parentRunId"] == tuning.info.run_id
            assert float(run.data.params["training.learning_rate"]) == rate
            assert run.data.params["training.epochs"] == "1"
            assert run.data.metrics["best_val_accuracy"] == pytest.approx(selection["trials"][trial]["best_val_accuracy"])
            assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1]
        final = runs[f"{activation}-seed0"]
        assert final.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert float(final.data.params["training.learning_rate"]) == selection["learning_rate"]


def test_model_keys_name_trial_datasets_apart_from_final_ones():
    trial, final = ModelKey("relu", 0, trial=1), ModelKey("relu", 0)
    assert trial.dataset(Role.HISTORY) == "relu.history_trial1_seed0" != final.dataset(Role.HISTORY)
    assert trial.dataset(Role.CHECKPOINTS) == "relu.training_state_trial1_seed0"
    assert Path(trial.name).name == "relu_trial1_seed0"


def test_mlflow_params_say_the_protocol_and_each_models_own_learning_rate():
    from activation_compare.tracking import params as run_params
    from activation_compare.tracking import runs

    params = _params(**RIGOROUS, training={"seeds": [1, 2], "epochs": 8},
                     tuning={"learning_rates": [0.001, 0.003], "epochs": 3})
    shared = run_params.shared_params(params)
    assert shared["compare.protocol"] == "rigorous" and shared["data.validation_mode"] == "holdout"
    assert "training.learning_rate" not in shared  # tuned per activation: the grid is logged instead
    assert shared["tuning.learning_rates"] == [0.001, 0.003] and shared["tuning.validation_size"] == 5000
    # A model's own rate and epochs come from its training node (TrainingStart), logged when it starts.
    for key in (ModelKey("relu", 0, trial=1), ModelKey("relu", 1)):
        model = run_params.model_params(params, key)
        assert "training.learning_rate" not in model and "training.epochs" not in model
    assert run_params.model_params(params, ModelKey("relu", 0, trial=1))["trial"] == 1
    keys = list(ComparePlan.from_params(params).models)
    assert runs.parent_run_name("compare", keys, params) == "relu vs rrelu, seeds 1,2, 8 epochs, synthetic, rigorous"
    assert run_params.shared_params(_params())["training.learning_rate"] == 0.001


@pytest.mark.slow
def test_kedro_viz_shows_the_test_set_feeding_only_the_final_evaluations(tmp_path):
    """``kedro viz build`` (the real CLI) of a rigorous smoke project: test_set's edges in the graph."""
    project = copy_project(tmp_path / "project")
    with (project / "conf" / "smoke" / "parameters.yml").open("a") as config:
        config.write("compare:\n  protocol: rigorous\n")
    offline = {"KEDRO_ENV": "smoke", "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
               "NO_PROXY": "", "BROWSER": "false"}
    result = kedro_cli(project, "viz", "build", timeout=300, env=offline)
    main = project / "build" / "api" / "main"
    assert result.returncode == 0 and main.is_file(), result.stdout[-3000:] + result.stderr[-3000:]
    graph = json.loads(main.read_text())
    names = {n["id"]: n.get("full_name", n["name"]) for n in graph["nodes"]}
    (test_set,) = [i for i, name in names.items() if name == TEST_SET]
    fed = {names[e["target"]] for e in graph["edges"] if e["source"] == test_set}
    # The final evaluations, and the namespace blocks (relu, rrelu) that hold them when collapsed.
    assert fed == {"relu.evaluate_model_relu_seed0_node", "rrelu.evaluate_model_rrelu_seed0_node", "relu", "rrelu"}
    assert {"relu.select_learning_rate_node", "hold_out_validation_node"} <= set(names.values())
