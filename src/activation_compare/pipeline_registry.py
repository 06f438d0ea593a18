"""Project pipelines.

The ``compare`` pipeline has one modelling namespace per entry of
``compare.activations`` and one model per seed of ``training.seeds`` (the
:class:`~activation_compare.identity.ComparePlan` of the run), so its shape
comes from the parameters of the run (``--env`` and ``--params`` included).
Kedro calls :func:`register_pipelines` without arguments; the parameters come
from the one place that validated them, the project hook
(:class:`activation_compare.hooks.ProjectHooks`, which sees the context first).
"""

from __future__ import annotations

import os
from pathlib import Path

from kedro.framework.project import settings
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

from activation_compare.hooks import ProjectHooks
from activation_compare.identity import ComparePlan
from activation_compare.params import ProjectParameters, Protocol, validate_parameters
from activation_compare.pipelines import data_ingestion, data_processing, modelling, reporting


def run_parameters() -> ProjectParameters:
    """This run's validated parameters: the project hook's, or read here outside a session."""
    for hook in settings.HOOKS:
        if isinstance(hook, ProjectHooks) and hook.parameters is not None:
            return hook.parameters
    # Outside a Kedro session (``kedro registry list``, tools that import the
    # registry directly): the environment's configuration, validated now.
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return validate_parameters(loader["parameters"])


def create_pipelines(plan: ComparePlan) -> dict[str, Pipeline]:
    """The project's pipelines for one compare plan (see :func:`register_pipelines`)."""
    ingestion = data_ingestion.create_pipeline()
    if plan.protocol is Protocol.RIGOROUS:
        # Validation held out of the training set, learning rates tuned on it (README,
        # "The rigorous protocol"); the test set feeds the final evaluations only.
        processing = ingestion + data_processing.create_rigorous_pipeline()
        models = processing + modelling.create_rigorous_pipeline(plan)
    else:
        processing = ingestion + data_processing.create_pipeline()
        models = processing + modelling.create_pipeline(plan)
    compare = models + reporting.create_pipeline(plan)
    return {
        "__default__": compare,
        "compare": compare,
        "data_ingestion": ingestion,
        "data_processing": processing,
        "modelling": models,
    }


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        ``data_ingestion``; ``data_processing`` (ingestion + normalization);
        ``modelling`` (data + one namespace per activation); ``compare``
        (modelling + the comparison report), which is also ``__default__``.
    """
    return create_pipelines(ComparePlan.from_params(run_parameters()))
