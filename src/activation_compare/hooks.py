"""Project hooks: the run's configuration shapes the pipelines; MLflow tracks the runs."""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from activation_compare import pipeline_registry


class ProjectHooks:
    """Validate the run's parameters and shape the pipelines before anything loads."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        pipeline_registry.use_run_config(context.config_loader)
        # Fails fast, naming every bad parameter, before a byte of data is read.
        pipeline_registry.run_parameters()
