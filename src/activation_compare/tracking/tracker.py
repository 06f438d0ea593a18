"""The run tree of a tracked ``kedro run``, driven by Kedro's hook calls: what each node's outputs become.

Process independence: the driver (:meth:`Tracker.start`) opens the parent
run, tagged ``kedro.run_id`` = Kedro's run id, and puts the tracking settings
in the catalog (:data:`~activation_compare.tracking.settings.CATALOG_ENTRY`, a
:class:`~activation_compare.tracking.settings.TrackedPipeline`): the catalog is
what every runner hands the process that runs a node. For a node, in
whichever process or thread runs it, the tracker reads the settings and the
run's parameters from its catalog, finds the model of the node in the
:class:`~activation_compare.identity.ComparePlan`, and finds the parent and the
model's run in MLflow by their tags (:mod:`.context`). Per process, it caches
what it found, keyed by Kedro's run id and checked against the process id (a
forked worker starts over).

Tracking never stops a training: a failed MLflow call during the run is a
warning. But a store that cannot be reached at the start stops the run at
once (:func:`~activation_compare.tracking.store.check_reachable`), and a run
whose model, figures or report could not be stored ends FAILED with the tag
``activation_compare.artifacts`` = ``failed``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from activation_compare import training_events
from activation_compare.identity import (
    CLASS_NAMES,
    COMPARE_NODE,
    LEARNING_RATE_SELECTION,
    TEST_SET,
    TRAIN_SET,
    ModelKey,
    Role,
    Step,
    tuning_name,
)
from activation_compare.tracking import datasets, params, registry, resume, runs, tuning, views
from activation_compare.tracking.context import RunContext, find_context, run_parameters
from activation_compare.tracking.runs import RunRef
from activation_compare.tracking.settings import CATALOG_ENTRY, CONFIG_KEY, TrackedPipeline, TrackingSettings
from activation_compare.tracking.signals import InterruptGuard
from activation_compare.tracking.store import (
    TrackingUnavailableError,
    check_reachable,
    open_store,
    unavailable_message,
)

logger = logging.getLogger(__name__)

TAG_ARTIFACTS = "activation_compare.artifacts"


def _artifacts() -> Any:
    # tracking.artifacts imports MLflow's model flavours at import time (seconds);
    # every other tracking module imports without MLflow, and so must this one:
    # settings.py imports the hooks for every kedro command.
    from activation_compare.tracking import artifacts

    return artifacts


@dataclass
class _Training:
    """The run a training node's events settled on, while its listeners are open."""

    run: RunRef | None = None
    # False once the pipeline has ended: listeners left behind by an interrupted
    # node (no after_node_run) must not log into a run continued later.
    active: bool = True


class Tracker:
    """One process's tracking of the ``kedro run``\\ s it takes part in (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._contexts: dict[str, RunContext] = {}  # per Kedro run id
        self._guards: dict[str, InterruptGuard] = {}  # per Kedro run id, the driver's
        self._trainings: dict[tuple[str, str], _Training] = {}  # per (run id, node)
        self._listeners = training_events.NodeListeners()  # keyed as _trainings
        self._links: dict[str, str] = {}  # per Kedro run id: the comparison's MLflow view
        self._atexit = False

    # -- the pipeline (the driver) -----------------------------------------------------------

    def start(
        self, run_params: Mapping[str, Any], pipeline: Any, catalog: Any, settings: TrackingSettings,
        project_path: Path,
    ) -> None:
        """Open the parent run (with a single model, the model's run) and hand the settings to the nodes."""
        self.abandon("KILLED")  # runs an interrupted earlier pipeline left open in this process
        run_id = str(run_params.get("run_id") or "")
        if not settings.enabled:
            logger.info("MLflow tracking is disabled (conf/<env>/%s.yml: enabled: false)", CONFIG_KEY)
            return
        parameters, plan = run_parameters(catalog)
        keys = list(dict.fromkeys(found[0] for n in pipeline.nodes if (found := plan.node(n.name))))
        if not keys and not any(n.name == COMPARE_NODE for n in pipeline.nodes):
            return
        check_reachable(settings)
        try:
            store = open_store(settings)
            pipeline_name = runs.pipeline_name(run_params, pipeline)
            name = runs.parent_run_name(pipeline_name, keys, parameters)
            tags = {**runs.pipeline_tags(run_params, pipeline_name, project_path), **runs.process_tags()}
            run_params_logged = params.shared_params(parameters)
            if len(keys) == 1:  # one model: one run, no parent and child
                tags.update(keys[0].run_tags())
                run_params_logged.update(params.model_params(parameters, keys[0]))
            parent = runs.create_run(store, name, tags, run_params_logged)
        except TrackingUnavailableError:
            raise
        except Exception as exc:
            raise TrackingUnavailableError(unavailable_message(settings, f"{type(exc).__name__}: {exc}")) from exc
        last = {plan.node(n.name)[0]: n.name for n in pipeline.nodes if plan.node(n.name)}
        catalog[CATALOG_ENTRY] = TrackedPipeline(settings, frozenset(last.values()))
        guard = InterruptGuard(
            lambda: runs.end_open_runs(store, run_id, "KILLED"),
            defer=getattr(store.client, "defer_interrupt", None),
        )
        guard.install()
        with self._lock:
            self._guards[run_id] = guard
            self._contexts[run_id] = RunContext(store, parent, plan, parameters, catalog.load(CATALOG_ENTRY))
        if not self._atexit:
            atexit.register(self.abandon, "KILLED")
            self._atexit = True
        logger.info(
            "MLflow: run %s (%s) with %d model run(s) in experiment '%s' at %s",
            name, parent.run_id, len(keys), settings.experiment_name, settings.tracking_uri,
        )
        if len(keys) > 1 and (url := views.share_comparison(store, parent.run_id)):
            logger.info("MLflow: the models' curves, live, once the MLflow UI runs: %s", url)
            self._links[run_id] = url

    def finish(self, run_id: str, status: str, error: BaseException | None = None) -> None:
        """End every run of the Kedro run still open (``status``), tagging the parent with ``error``."""
        with self._lock:
            guard = self._guards.pop(run_id, None)
            context = self._contexts.pop(run_id, None)
            link = self._links.pop(run_id, None)
            left = [node for (run, node) in self._trainings if run == run_id]
        for node in left:
            training = self._trainings.get((run_id, node))
            if training is not None:
                training.active = False
            self._stop_training(run_id, node)
        if guard is not None:
            guard.restore()
        if context is None or context.pid != os.getpid():
            return
        try:
            if error is not None:
                runs.set_tags(context.store, context.parent.run_id, {runs.TAG_ERROR: f"{type(error).__name__}: {error}"})
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not tag the failed run: %s", exc)
        runs.end_open_runs(context.store, run_id, status)
        if status == "FINISHED" and link:
            logger.info("  %-8s %s (once `mlflow ui` runs)", "MLflow:", link)

    def abandon(self, status: str) -> None:
        """End the runs of pipelines that never reached their end (an interrupt, the process' exit)."""
        with self._lock:
            guards = list(self._guards.items())
        for run_id, guard in guards:
            guard.wait()
            self.finish(run_id, status)

    # -- nodes (any process) -------------------------------------------------------------------

    def before_node(self, node_name: str, catalog: Any, inputs: Mapping[str, Any], run_id: str) -> None:
        """The data a node reads on the parent; a training node's events followed."""
        context = self._context_of(catalog, run_id)
        if context is None:
            return
        try:
            self._log_data(context, context.parent, inputs, parent=True)
            found = context.plan.node(node_name)
            if found is not None and found[1] is Step.TRAIN:
                self._follow_training(context, run_id, node_name, found[0], inputs)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            logger.warning("MLflow: tracking failed before node %s: %s", node_name, exc)

    def after_node(
        self, node_name: str, catalog: Any, inputs: Mapping[str, Any], outputs: Mapping[str, Any], run_id: str
    ) -> None:
        """What a node's outputs become in MLflow, by their role in the contract."""
        context = self._context_of(catalog, run_id)
        if context is None:
            return
        artifacts = _artifacts()
        found = context.plan.node(node_name)
        run = None
        try:
            training = self._stop_training(run_id, node_name)
            if node_name == COMPARE_NODE:
                artifacts.log_comparison(context.store, context.parent, outputs)
            activation = context.plan.tuning_node(node_name)
            if activation is not None:
                self._log_selection(context, activation, outputs)
            if found is None or found[1] is Step.BUILD:
                return  # a model's run starts with its training
            key, step = found
            run = (training.run if training else None) or self._model_run(context, key)
            self._log_data(context, run, inputs)
            if step is Step.TRAIN:
                self._log_training(context, run, key, inputs, outputs)
            model_id, model_error = None, None
            if step is Step.EVALUATE:
                try:
                    model_id = self._log_evaluated_model(context, run, key, inputs)
                except artifacts.ArtifactError as exc:  # the metrics are still recorded, then the run fails
                    model_error = exc
            for name, value in outputs.items():
                role = (context.plan.dataset(name) or (None, None))[1]
                if role is Role.REPORT:
                    artifacts.log_report(context.store, run, value, model_id)
                    registry.register_evaluated(context.store, run, key, value)
                elif role is Role.TRIAL_SCORE:
                    tuning.log_score(context.store, run, value)
                elif role in artifacts.FIGURE_FILES:
                    artifacts.log_figure(context.store, run.run_id, value, artifacts.FIGURE_FILES[role])
            if model_error is not None:
                raise model_error
            if node_name in context.tracked.final_nodes:
                runs.end_run(context.store, run.run_id, "FINISHED")
        except artifacts.ArtifactError as exc:
            self._artifacts_failed(context, run or context.parent, node_name, exc)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            logger.warning("MLflow: could not log the outputs of %s: %s", node_name, exc)

    def node_failed(self, error: Exception, node_name: str, catalog: Any, run_id: str) -> None:
        """The model's run ends FAILED; the parent names the first node that failed."""
        context = self._context_of(catalog, run_id)
        if context is None:
            return
        training = self._stop_training(run_id, node_name)
        found = context.plan.node(node_name)
        try:
            if found is not None and found[1] is not Step.BUILD:
                run = (training.run if training else None) or self._model_run(context, found[0])
                runs.end_run(context.store, run.run_id, "FAILED", error, node_name)
            tags = context.store.client.get_run(context.parent.run_id).data.tags
            if runs.TAG_FAILED_NODE not in tags:  # the first failure is the one to look at
                runs.set_tags(context.store, context.parent.run_id, {runs.TAG_FAILED_NODE: node_name})
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not record the failure of %s: %s", node_name, exc)

    # -- internals ------------------------------------------------------------------------------

    def _context_of(self, catalog: Any, run_id: str) -> RunContext | None:
        """This process's view of the tracked run, built from the catalog and MLflow once."""
        with self._lock:
            context = self._contexts.get(run_id)
            if context is not None and context.pid == os.getpid():
                return context
            context = find_context(catalog, run_id)
            if context is not None:
                self._contexts[run_id] = context
            return context

    def _parent_of(self, context: RunContext, key: ModelKey) -> RunRef:
        """The run a model's run nests under: the parent, or its activation's tuning run for a trial."""
        return tuning.parent_of(context.store, context.parent, key, context.parameters)

    def _model_run(self, context: RunContext, key: ModelKey) -> RunRef:
        return runs.model_run(context.store, self._parent_of(context, key), key, context.parameters)

    def _log_data(self, context: RunContext, run: RunRef, inputs: Mapping[str, Any], parent: bool = False) -> None:
        datasets.log_datasets(context.store, run.run_id, context.parameters.data, inputs)
        info = params.data_params(inputs)
        if not info:
            return
        runs.log_params(context.store, run, info)
        if parent:
            with self._lock:  # the parent's params as this process knows them: each is sent once
                values = {k: params.param_value(v) for k, v in info.items()}
                context.parent = replace(context.parent, params={**context.parent.params, **values})

    def _follow_training(
        self, context: RunContext, run_id: str, node_name: str, key: ModelKey, inputs: Mapping[str, Any]
    ) -> None:
        """Subscribe, in the training node's thread, to its start and epoch events."""
        data = params.data_params(inputs)
        data.update(params.precision_params(inputs.get(key.dataset(Role.UNTRAINED_MODEL))))
        training = _Training()

        def on_start(event: training_events.TrainingStart) -> None:
            if not training.active:
                return
            try:
                training.run = resume.settle_training_run(
                    context.store, self._parent_of(context, key), key, event, context.parameters,
                    {**data, **params.training_params(event)},
                )
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                logger.warning("MLflow: could not set up the run of %s: %s", key.run_name, exc)

        def on_epoch_end(event: training_events.EpochEnd) -> None:
            if not training.active:
                return
            try:
                if training.run is None:
                    training.run = self._model_run(context, key)
                runs.log_metrics(context.store, training.run.run_id, event.metrics, step=int(event.epoch))
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                logger.warning("MLflow: could not log epoch %s of %s: %s", event.epoch, key.run_name, exc)

        with self._lock:
            self._trainings[(run_id, node_name)] = training
        self._listeners.open((run_id, node_name), on_start, on_epoch_end)

    def _stop_training(self, run_id: str, node_name: str) -> _Training | None:
        """Unsubscribe a training node's listeners (from its own thread, where they were subscribed)."""
        if not self._listeners.close((run_id, node_name)):
            return None
        with self._lock:
            return self._trainings.pop((run_id, node_name), None)

    def _log_selection(self, context: RunContext, activation: str, outputs: Mapping[str, Any]) -> None:
        """An activation's learning-rate choice on its tuning run, which it completes."""
        selection = outputs.get(tuning_name(activation, LEARNING_RATE_SELECTION))
        if selection is None:
            return
        run = tuning.tuning_run(context.store, context.parent, activation, context.parameters)
        tuning.log_selection(context.store, run, selection)
        runs.end_run(context.store, run.run_id, "FINISHED")

    def _log_training(
        self, context: RunContext, run: RunRef, key: ModelKey, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> None:
        artifacts = _artifacts()
        history = outputs.get(key.dataset(Role.HISTORY))
        if history is not None:
            resume.complete_epochs(context.store, run.run_id, history)
            artifacts.log_history(context.store, run.run_id, history)
        model = outputs.get(key.dataset(Role.MODEL))
        # Also logged when training starts; again here for a run whose start was
        # recorded by another process (a resumed or reused model).
        runs.log_params(context.store, run, params.precision_params(model))
        examples = getattr(inputs.get(TRAIN_SET), "images", None)
        # A final model is logged once evaluated (_log_evaluated_model); a tuning trial, never evaluated, here.
        if (
            key.trial is not None and model is not None and context.tracked.settings.log_models
            and examples is not None and len(examples)
        ):
            artifacts.log_model(context.store, run, key, model, examples, len(history) if history is not None else 0)

    def _log_evaluated_model(
        self, context: RunContext, run: RunRef, key: ModelKey, inputs: Mapping[str, Any]
    ) -> str | None:
        """Log the evaluated model (named for it, with its class names); its logged model id, or None."""
        model = inputs.get(key.dataset(Role.MODEL))
        examples = getattr(inputs.get(TEST_SET), "images", None)
        if model is None or not context.tracked.settings.log_models or examples is None or not len(examples):
            return None
        history = inputs.get(key.dataset(Role.HISTORY))
        class_names = inputs.get(CLASS_NAMES)
        return _artifacts().log_model(
            context.store, run, key, model, examples, len(history) if history is not None else 0,
            list(class_names) if class_names is not None else None,
        )

    def _artifacts_failed(self, context: RunContext, run: RunRef, node_name: str, error: Exception) -> None:
        """A run whose artifacts are incomplete must not look complete: FAILED, tagged, logged."""
        logger.error("MLflow: run %s (%s): %s", run.name, run.run_id, error)
        try:
            runs.set_tags(context.store, run.run_id, {TAG_ARTIFACTS: "failed"})
            if run.run_id != context.parent.run_id:
                runs.set_tags(context.store, context.parent.run_id, {TAG_ARTIFACTS: "failed"})
            runs.end_run(context.store, run.run_id, "FAILED", error, node_name)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not mark run %s as failed: %s", run.run_id, exc)
