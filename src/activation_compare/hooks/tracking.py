"""The Kedro hook: a thin adapter from Kedro's hook calls to the tracking modules.

Process independence: the driver (``before_pipeline_run``) opens the parent
run, tagged ``kedro.run_id`` = Kedro's run id, and puts the tracking settings
in the catalog (:data:`CATALOG_ENTRY`, a :class:`TrackedPipeline`): the
catalog is what every runner hands the process that runs a node. A node hook,
in whichever process or thread runs the node, reads the settings and the
run's parameters from its catalog, finds the model of the node in the
:class:`~activation_compare.identity.ComparePlan`, and finds the parent and the
model's run in MLflow by their tags. Per process, the hook caches what it
found, keyed by Kedro's run id and checked against the process id (a forked
worker starts over).

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
from typing import TYPE_CHECKING, Any

from kedro.framework.hooks import hook_impl

from activation_compare import training_events
from activation_compare.identity import (
    CLASS_NAMES,
    COMPARE_NODE,
    LEARNING_RATE,
    LEARNING_RATE_SELECTION,
    TRAIN_SET,
    ModelKey,
    Role,
    Step,
    TEST_SET,
    tuning_name,
)
from activation_compare.tracking.settings import CATALOG_ENTRY, CONFIG_KEY, TrackedPipeline, TrackingSettings
from activation_compare.tracking.context import RunContext, find_context, run_parameters
from activation_compare.tracking.signals import InterruptGuard

if TYPE_CHECKING:
    from kedro.pipeline import Node, Pipeline

    from activation_compare.tracking.runs import RunRef

logger = logging.getLogger(__name__)

TAG_ARTIFACTS = "activation_compare.artifacts"


@dataclass
class _Training:
    """The listeners of one training node, in its thread, and the run they settled."""

    thread: int
    listeners: list[Any]
    run: RunRef | None = None
    # False once the pipeline has ended: listeners left behind by an interrupted
    # node (no after_node_run) must not log into a run continued later.
    active: bool = True


class MlflowTrackingHook:
    """Track every ``kedro run`` that trains or compares models in MLflow.

    Register an instance in ``settings.HOOKS``. It does nothing for pipelines
    that neither train nor compare models, or with ``enabled: false``.
    """

    def __init__(self) -> None:
        self._context: Any = None
        self._lock = threading.RLock()
        self._contexts: dict[str, RunContext] = {}  # per Kedro run id
        self._guards: dict[str, InterruptGuard] = {}  # per Kedro run id, the driver's
        self._trainings: dict[tuple[str, str], _Training] = {}  # per (run id, node)
        self._links: dict[str, str] = {}  # per Kedro run id: the comparison's MLflow view
        self._atexit = False

    # -- pipeline hooks (the driver) -------------------------------------------------------

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._context = context

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        from activation_compare.tracking import runs, views
        from activation_compare.tracking.params import model_params, shared_params
        from activation_compare.tracking.store import TrackingUnavailableError, check_reachable, open_store

        self.abandon("KILLED")  # runs an interrupted earlier pipeline left open in this process
        run_id = str(run_params.get("run_id") or "")
        project_path = Path(run_params.get("project_path") or getattr(self._context, "project_path", "."))
        settings = self._settings(project_path)
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
            params = shared_params(parameters)
            if len(keys) == 1:  # one model: one run, no parent and child
                tags.update(keys[0].run_tags())
                params.update(model_params(parameters, keys[0]))
            parent = runs.create_run(store, name, tags, params)
        except TrackingUnavailableError:
            raise
        except Exception as exc:
            from activation_compare.tracking.store import unavailable_message

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

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        run_id = str(run_params.get("run_id") or "")
        self._finish(run_id, "FINISHED")
        if url := self._links.pop(run_id, None):
            logger.info("  %-8s %s (once `mlflow ui` runs)", "MLflow:", url)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any]) -> None:
        self._finish(str(run_params.get("run_id") or ""), "FAILED", error)

    # -- node hooks (any process) ------------------------------------------------------------

    @hook_impl
    def before_node_run(self, node: Node, catalog: Any, inputs: dict[str, Any], run_id: str) -> None:
        context = self._context_of(catalog, run_id)
        if context is None:
            return
        try:
            self._log_data(context, context.parent, inputs, parent=True)
            found = context.plan.node(node.name)
            if found is not None and found[1] is Step.TRAIN:
                self._follow_training(context, run_id, node.name, found[0], inputs)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            logger.warning("MLflow: tracking failed before node %s: %s", node.name, exc)

    @hook_impl
    def after_node_run(
        self, node: Node, catalog: Any, inputs: dict[str, Any], outputs: dict[str, Any], run_id: str
    ) -> None:
        from activation_compare.tracking import artifacts, registry, runs, tuning

        context = self._context_of(catalog, run_id)
        if context is None:
            return
        found = context.plan.node(node.name)
        run = None
        try:
            training = self._stop_training(run_id, node.name)
            if node.name == COMPARE_NODE:
                artifacts.log_comparison(context.store, context.parent, outputs)
            activation = context.plan.tuning_node(node.name)
            if activation is not None:
                self._log_selection(context, activation, outputs)
            if found is None or found[1] is Step.BUILD:
                return  # a model's run starts with its training
            key, step = found
            run = (training.run if training else None) or runs.model_run(
                context.store, self._parent_of(context, key), key, context.parameters
            )
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
            if node.name in context.tracked.final_nodes:
                runs.end_run(context.store, run.run_id, "FINISHED")
        except artifacts.ArtifactError as exc:
            self._artifacts_failed(context, run or context.parent, node.name, exc)
        except Exception as exc:  # noqa: BLE001 - tracking never stops the pipeline
            logger.warning("MLflow: could not log the outputs of %s: %s", node.name, exc)

    @hook_impl
    def on_node_error(self, error: Exception, node: Node, catalog: Any, run_id: str) -> None:
        from activation_compare.tracking import runs

        context = self._context_of(catalog, run_id)
        if context is None:
            return
        training = self._stop_training(run_id, node.name)
        found = context.plan.node(node.name)
        try:
            if found is not None and found[1] is not Step.BUILD:
                key, _ = found
                run = (training.run if training else None) or runs.model_run(
                    context.store, self._parent_of(context, key), key, context.parameters
                )
                runs.end_run(context.store, run.run_id, "FAILED", error, node.name)
            tags = context.store.client.get_run(context.parent.run_id).data.tags
            if runs.TAG_FAILED_NODE not in tags:  # the first failure is the one to look at
                runs.set_tags(context.store, context.parent.run_id, {runs.TAG_FAILED_NODE: node.name})
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not record the failure of %s: %s", node.name, exc)

    # -- internals ------------------------------------------------------------------------------

    def _settings(self, project_path: Path) -> TrackingSettings:
        from kedro.config import MissingConfigException

        config: Mapping[str, Any] = {}
        if self._context is not None:
            try:
                config = self._context.config_loader[CONFIG_KEY] or {}
            except (MissingConfigException, KeyError):
                config = {}
        return TrackingSettings.from_config(config, project_path)

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

    def _log_data(self, context: RunContext, run: RunRef, inputs: Mapping[str, Any], parent: bool = False) -> None:
        from activation_compare.tracking import datasets, params, runs

        datasets.log_datasets(context.store, run.run_id, context.parameters, inputs)
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
        from activation_compare.tracking import params, resume, runs

        data = params.data_params(inputs)
        data.update(params.precision_params(inputs.get(key.dataset(Role.UNTRAINED_MODEL))))
        chosen = inputs.get(tuning_name(key.activation, LEARNING_RATE))
        if key.trial is None and chosen is not None:  # a rigorous final model: its tuned rate
            data["training.learning_rate"] = float(chosen)
        training = _Training(threading.get_ident(), [])

        def on_start(event: training_events.TrainingStart) -> None:
            if not training.active:
                return
            try:
                training.run = resume.settle_training_run(
                    context.store, self._parent_of(context, key), key, event, context.parameters, data
                )
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                logger.warning("MLflow: could not set up the run of %s: %s", key.run_name, exc)

        def on_epoch_end(event: training_events.EpochEnd) -> None:
            if not training.active:
                return
            try:
                if training.run is None:
                    training.run = runs.model_run(
                        context.store, self._parent_of(context, key), key, context.parameters
                    )
                runs.log_metrics(context.store, training.run.run_id, event.metrics, step=int(event.epoch))
            except Exception as exc:  # noqa: BLE001 - tracking never stops training
                logger.warning("MLflow: could not log epoch %s of %s: %s", event.epoch, key.run_name, exc)

        training.listeners = [
            training_events.subscribe(on_start, training_events.TrainingStart),
            training_events.subscribe(on_epoch_end, training_events.EpochEnd),
        ]
        with self._lock:
            self._trainings[(run_id, node_name)] = training

    def _parent_of(self, context: RunContext, key: ModelKey) -> RunRef:
        """The run a model's run nests under: the parent, or its activation's tuning run for a trial."""
        from activation_compare.tracking import tuning

        return tuning.parent_of(context.store, context.parent, key, context.parameters)

    def _log_selection(self, context: RunContext, activation: str, outputs: Mapping[str, Any]) -> None:
        """An activation's learning-rate choice on its tuning run, which it completes."""
        from activation_compare.tracking import runs, tuning

        selection = outputs.get(tuning_name(activation, LEARNING_RATE_SELECTION))
        if selection is None:
            return
        run = tuning.tuning_run(context.store, context.parent, activation, context.parameters)
        tuning.log_selection(context.store, run, selection)
        runs.end_run(context.store, run.run_id, "FINISHED")

    def _stop_training(self, run_id: str, node_name: str) -> _Training | None:
        """Unsubscribe a training node's listeners (from its own thread, where they were subscribed)."""
        with self._lock:
            training = self._trainings.get((run_id, node_name))
            if training is None or training.thread != threading.get_ident():
                return None
            del self._trainings[(run_id, node_name)]
        for listener in training.listeners:
            training_events.unsubscribe(listener)
        return training

    def _log_training(
        self, context: RunContext, run: RunRef, key: ModelKey, inputs: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> None:
        from activation_compare.tracking import artifacts, params, resume, runs

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
        from activation_compare.tracking import artifacts

        model = inputs.get(key.dataset(Role.MODEL))
        examples = getattr(inputs.get(TEST_SET), "images", None)
        if model is None or not context.tracked.settings.log_models or examples is None or not len(examples):
            return None
        history = inputs.get(key.dataset(Role.HISTORY))
        class_names = inputs.get(CLASS_NAMES)
        return artifacts.log_model(
            context.store, run, key, model, examples, len(history) if history is not None else 0,
            list(class_names) if class_names is not None else None,
        )

    def _artifacts_failed(self, context: RunContext, run: RunRef, node_name: str, error: Exception) -> None:
        """A run whose artifacts are incomplete must not look complete: FAILED, tagged, logged."""
        from activation_compare.tracking import runs

        logger.error("MLflow: run %s (%s): %s", run.name, run.run_id, error)
        try:
            runs.set_tags(context.store, run.run_id, {TAG_ARTIFACTS: "failed"})
            if run.run_id != context.parent.run_id:
                runs.set_tags(context.store, context.parent.run_id, {TAG_ARTIFACTS: "failed"})
            runs.end_run(context.store, run.run_id, "FAILED", error, node_name)
        except Exception as exc:  # noqa: BLE001
            logger.warning("MLflow: could not mark run %s as failed: %s", run.run_id, exc)

    def _finish(self, run_id: str, status: str, error: BaseException | None = None) -> None:
        from activation_compare.tracking import runs

        with self._lock:
            guard = self._guards.pop(run_id, None)
            context = self._contexts.pop(run_id, None)
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

    def abandon(self, status: str) -> None:
        """End the runs of pipelines that never reached after_pipeline_run/on_pipeline_error."""
        with self._lock:
            guards = list(self._guards.items())
        for run_id, guard in guards:
            guard.wait()
            self._finish(run_id, status)

    def wait_for_closers(self, timeout: float = 30.0) -> None:
        """Wait until runs ended by a Ctrl-C are marked KILLED (for tests and notebooks)."""
        with self._lock:
            guards = list(self._guards.values())
        for guard in guards:
            guard.wait(timeout)
