"""Project pipelines.

The ``compare`` pipeline has one modelling namespace per entry of
``compare.activations`` and one model per seed of ``training.seeds``, so its
shape comes from the parameters of the run (``--env`` and ``--params``
included). :class:`activation_compare.hooks.ProjectHooks` hands this module
the run's config loader as soon as the Kedro context exists, before Kedro
asks for the pipelines.
"""

from __future__ import annotations

import os
from pathlib import Path

from kedro.config import AbstractConfigLoader
from kedro.framework.project import pipelines as project_pipelines
from kedro.framework.project import settings
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

from activation_compare.params import ProjectParameters, validate_parameters
from activation_compare.pipelines import data_ingestion, data_processing, modelling, reporting

_run_config: AbstractConfigLoader | None = None


def use_run_config(config_loader: AbstractConfigLoader) -> None:
    """Shape the pipelines after this run's configuration, and forget earlier shapes."""
    global _run_config
    _run_config = config_loader
    # Kedro caches the registered pipelines per process; a second session in
    # the same process (tests, notebooks) may have other activations or seeds.
    project_pipelines.configure(project_pipelines._pipelines_module)


def _config_loader() -> AbstractConfigLoader:
    if _run_config is not None:
        return _run_config
    # Outside a Kedro session (e.g. tools that import the registry directly).
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    return settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )


def run_parameters() -> ProjectParameters:
    """This run's parameters, validated against the project's schema."""
    return validate_parameters(_config_loader()["parameters"])


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        ``data_ingestion``; ``data_processing`` (ingestion + normalization);
        ``modelling`` (data + one namespace per activation); ``compare``
        (modelling + the comparison report), which is also ``__default__``.
    """
    params = run_parameters()
    activations, seeds = params.compare.activations, params.training.seeds
    ingestion = data_ingestion.create_pipeline()
    processing = ingestion + data_processing.create_pipeline()
    models = processing + sum(
        (modelling.create_pipeline(activation, seeds) for activation in activations),
        start=Pipeline([]),
    )
    compare = models + reporting.create_pipeline(activations, seeds)
    return {
        "__default__": compare,
        "compare": compare,
        "data_ingestion": ingestion,
        "data_processing": processing,
        "modelling": models,
    }
