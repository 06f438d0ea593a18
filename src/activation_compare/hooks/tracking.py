"""The Kedro hook of MLflow tracking: a thin adapter from Kedro's hook calls to :mod:`activation_compare.tracking`.

It reads what only Kedro knows (the ``mlflow`` configuration of the
environment, the project's path) and forwards every call to a
:class:`~activation_compare.tracking.tracker.Tracker`, which owns the run tree:
the parent run, a run per model, what each node's outputs become in MLflow,
and how the runs end.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.config import MissingConfigException
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline

from activation_compare.tracking.settings import CONFIG_KEY, TrackingSettings
from activation_compare.tracking.tracker import Tracker


class MlflowTrackingHook:
    """Track every ``kedro run`` that trains or compares models in MLflow.

    Register an instance in ``settings.HOOKS``. It does nothing for pipelines
    that neither train nor compare models, or with ``enabled: false``.
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._tracker = Tracker()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        project_path = Path(run_params.get("project_path") or getattr(self._context, "project_path", "."))
        self._tracker.start(run_params, pipeline, catalog, self._settings(project_path), project_path)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._tracker.finish(str(run_params.get("run_id") or ""), "FINISHED")

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        self._tracker.finish(str(run_params.get("run_id") or ""), "FAILED", error)

    @hook_impl
    def before_node_run(self, node: Node, catalog: Any, inputs: dict[str, Any], run_id: str) -> None:
        self._tracker.before_node(node.name, catalog, inputs, run_id)

    @hook_impl
    def after_node_run(
        self, node: Node, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any], run_id: str
    ) -> None:
        self._tracker.after_node(node.name, catalog, inputs, outputs, run_id)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: Any, run_id: str) -> None:
        self._tracker.node_failed(error, node.name, catalog, run_id)

    def abandon(self, status: str) -> None:
        """End the runs of pipelines that never reached after_pipeline_run/on_pipeline_error."""
        self._tracker.abandon(status)

    def _settings(self, project_path: Path) -> TrackingSettings:
        """The environment's ``mlflow`` configuration (none: the defaults)."""
        config: Mapping[str, Any] = {}
        if self._context is not None:
            try:
                config = self._context.config_loader[CONFIG_KEY] or {}
            except (MissingConfigException, KeyError):
                config = {}
        return TrackingSettings.from_config(config, project_path)
