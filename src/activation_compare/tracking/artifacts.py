"""What a run stores besides metrics: the model (Keras flavour), figures, history, report, comparison.

Every function here raises :class:`ArtifactError` naming the file and the
artifact store when the store refuses it (a full disk, a read-only folder, a
server error): a run whose model, figures or report are missing must not look
complete (the hook ends it FAILED and tags it ``activation_compare.artifacts``
= ``failed``).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from activation_compare.identity import ComparisonOutput, ModelKey, Role
from activation_compare.reports import Report
from activation_compare.tracking import serving
from activation_compare.tracking.params import param_value, truncate, version
from activation_compare.tracking.runs import RunRef, log_metrics, log_params, now_ms
from activation_compare.tracking.store import Store

MODEL_ARTIFACT_NAME = "model"
_EXAMPLE_IMAGES = 2
# The file each per-model figure is stored as, by its catalog role.
FIGURE_FILES = {
    Role.ACCURACY_CURVES: "figures/accuracy_curves.png",
    Role.CONFUSION_MATRIX: "figures/confusion_matrix.png",
}
COMPARISON_FILES = {
    ComparisonOutput.TABLE: "comparison.csv",
    ComparisonOutput.MARKDOWN: "comparison.md",
    ComparisonOutput.CURVES: "accuracy_curves.png",
    ComparisonOutput.SUMMARY: "comparison_summary.json",
}
class ArtifactError(RuntimeError):
    """A file could not be stored in the run's artifact store."""

    def __init__(self, path: str, store: str, error: BaseException) -> None:
        super().__init__(
            f"could not store {path} in the artifact store {store}: {type(error).__name__}: {error}"
        )
        self.path = path
        self.store = store


def _stored(store: Store, run_id: str, path: str, action: Callable[[], Any]) -> None:
    try:
        action()
    except Exception as exc:
        try:
            where = store.client.get_run(run_id).info.artifact_uri
        except Exception:  # noqa: BLE001 - the store's URI will do
            where = store.uri
        raise ArtifactError(path, where, exc) from exc


def log_text(store: Store, run_id: str, text: str, path: str) -> None:
    _stored(store, run_id, path, lambda: store.client.log_text(run_id, text, path))


def log_figure(store: Store, run_id: str, figure: Any, path: str) -> None:
    _stored(store, run_id, path, lambda: store.client.log_figure(run_id, figure, path))


def log_dict(store: Store, run_id: str, value: Mapping[str, Any], path: str) -> None:
    _stored(store, run_id, path, lambda: store.client.log_dict(run_id, dict(value), path))


def log_history(store: Store, run_id: str, history: Any) -> None:
    log_text(store, run_id, history.to_csv(index=False), "history.csv")


def log_model(
    store: Store,
    run: RunRef,
    key: ModelKey,
    model: Any,
    examples: Any,
    final_step: int,
    class_names: Sequence[str] | None = None,
) -> str:
    """The trained model as an MLflow logged model named for it (``relu-seed0``); returns its id.

    The logged model carries the run's params (and the class names, ``class_<i>``)
    and is an output of the run. Its Keras flavour takes ``x / 255`` floats, as in
    training; its pyfunc flavour (:mod:`.serving`) takes the pixels users have,
    ``uint8`` 0-255 ``(N, 32, 32, 3)``, declared by its signature and input
    example, and answers each image's class name and probabilities by class name.
    ``mlflow.pyfunc.load_model`` and ``mlflow models serve`` work in any process;
    ``mlflow.keras.load_model`` needs ``import activation_compare.layers`` first.
    ``examples``: model inputs (``x / 255``) or pixels; the first two become the input example.
    """
    import mlflow
    from mlflow.entities import LoggedModelOutput, LoggedModelStatus
    from mlflow.models import Model

    log_params(store, run, {"model.parameter_count": int(model.count_params())})
    names = [str(n) for n in class_names or []]
    params = {**store.client.get_run(run.run_id).data.params, **class_params(names)}
    params["model.parameter_count"] = str(int(model.count_params()))
    logged = store.client.create_logged_model(
        store.experiment_id,
        name=key.run_name,
        source_run_id=run.run_id,
        params={k: truncate(param_value(v), 6000) for k, v in params.items()},
        tags={k: str(v) for k, v in key.run_tags().items()},
        model_type="keras",
    )
    try:
        store.client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=final_step)])
        # kedro: the pyfunc loader (tracking.serving) lives in a package that imports it.
        requirements = [
            f"{package}=={found}" for package in ("tensorflow", "keras", "kedro") if (found := version(package))
        ]
        with tempfile.TemporaryDirectory() as tmp:
            # mlflow.keras.save_model writes the input example before it creates
            # the model folder (mlflow/mlflow#16183), so the folder must exist.
            local = Path(tmp, MODEL_ARTIFACT_NAME)
            local.mkdir()
            mlflow.keras.save_model(
                model,
                str(local),
                mlflow_model=Model(
                    artifact_path=logged.artifact_location,
                    run_id=run.run_id,
                    model_uuid=logged.model_id,
                    model_id=logged.model_id,
                ),
                signature=serving.pixels_signature(),
                input_example=example_pixels(examples),
                # Explicit: inferring them would load the model in a subprocess.
                pip_requirements=requirements,
            )
            serving.use_project_loader(local, names)  # served in a fresh process, RReLU included
            try:
                store.client.log_model_artifacts(logged.model_id, str(local))
            except Exception as exc:
                raise ArtifactError(f"the model ({MODEL_ARTIFACT_NAME}/)", logged.artifact_location, exc) from exc
        store.client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    except BaseException:
        try:
            store.client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        finally:
            raise
    return logged.model_id


def example_pixels(examples: Any) -> Any:
    """The served model's input example: two images as ``uint8`` pixels (model inputs are ``x / 255``)."""
    import numpy as np

    images = np.asarray(examples[:_EXAMPLE_IMAGES])
    if images.dtype.kind == "f":
        images = np.rint(images.astype(np.float64) * 255.0)
    return np.clip(images, 0, 255).astype(np.uint8)


def class_key(index: int, count: int) -> str:
    """A class's metric and param suffix, by index: ``class_3``; zero-padded to sort (``class_03`` of 12)."""
    return f"class_{index:0{len(str(max(count - 1, 0)))}d}"


def class_params(class_names: Sequence[str]) -> dict[str, str]:
    """Which class each index is: ``class_3`` = ``cat`` (metric keys use the index, never the name)."""
    return {class_key(i, len(class_names)): str(name) for i, name in enumerate(class_names)}


def report_metrics(report: Report) -> dict[str, float]:
    """A report's final metrics: ``test_accuracy`` …, and per class ``test_accuracy_class_<i>``."""
    metrics = {key: value for key, value in report.metrics().items() if _number(value)}
    names = list(report.class_names)
    for index, name in enumerate(names):
        if _number(value := report.per_class_accuracy.get(name)):
            metrics[f"test_accuracy_{class_key(index, len(names))}"] = value
    return {k: float(v) for k, v in metrics.items()}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def log_report(store: Store, run: RunRef, report: Report, model_id: str | None = None) -> None:
    """A model's evaluation: its metrics (``test_accuracy``, per class …) and ``report.json``.

    With ``model_id`` the metrics are also the logged model's, each naming the
    dataset it was measured on (the run's recorded train/validation/test sets).
    """
    from mlflow.entities import Metric

    from activation_compare.tracking import datasets

    metrics = report_metrics(report)
    params: dict[str, Any] = {**class_params(report.class_names), "model.parameter_count": report.parameter_count}
    log_params(store, run, params)
    if model_id is None:
        # A continued run may have its report already (killed after evaluating).
        existing = set(store.client.get_run(run.run_id).data.metrics)
        log_metrics(store, run.run_id, {k: v for k, v in metrics.items() if k not in existing})
    elif metrics:
        found = datasets.run_datasets(store, run.run_id)
        timestamp = now_ms()
        batch = []
        for key, value in metrics.items():
            name, digest = datasets.metric_dataset(key, found)
            batch.append(Metric(key, value, timestamp, 0, model_id=model_id, dataset_name=name, dataset_digest=digest))
        store.client.log_batch(run.run_id, metrics=batch, synchronous=True)
    log_dict(store, run.run_id, report.to_json(), "report.json")


def log_comparison(store: Store, run: RunRef, outputs: Mapping[str, Any]) -> None:
    """The comparison node's outputs (by their catalog names) on the parent run."""
    for name, value in outputs.items():
        try:
            output = ComparisonOutput(name)
        except ValueError:
            continue
        path = COMPARISON_FILES[output]
        if output is ComparisonOutput.TABLE:
            log_text(store, run.run_id, value.to_csv(index=False), path)
        elif output is ComparisonOutput.MARKDOWN:
            log_text(store, run.run_id, str(value), path)
        elif output is ComparisonOutput.CURVES:
            log_figure(store, run.run_id, value, path)
        else:
            log_dict(store, run.run_id, value, path)
            log_metrics(store, run.run_id, summary_metrics(value))


def summary_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """The comparison summary as parent-run metrics: per activation, and each difference."""
    metrics: dict[str, Any] = {}
    for name, row in (summary.get("per_activation") or {}).items():
        metrics[f"test_accuracy_{name}"] = row.get("test_accuracy_mean")
        metrics[f"test_accuracy_std_{name}"] = row.get("test_accuracy_std")
        metrics[f"train_test_gap_{name}"] = row.get("train_test_gap_mean")
        metrics[f"mean_epoch_time_s_{name}"] = row.get("mean_epoch_time_s")
    for name, diff in (summary.get("comparisons") or {}).items():
        key = f"test_accuracy_diff_{name}_vs_{diff.get('baseline', summary.get('baseline'))}"
        metrics[key] = diff.get("mean")
        for part in ("ci_low", "ci_high", "p_value", "p_value_adjusted", "ci_low_adjusted", "ci_high_adjusted"):
            metrics[f"{key}_{part}"] = diff.get(part)
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
