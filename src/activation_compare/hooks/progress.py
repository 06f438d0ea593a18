"""Where a long run is: model k of n, epoch e of E, and the time left."""

from __future__ import annotations

import logging
import time
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline

from activation_compare import training_events
from activation_compare.identity import ComparePlan, ModelKey, Step

logger = logging.getLogger("activation_compare.progress")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressHooks:
    """Log one line per epoch: model k/n, epoch e/E, and estimates of the time left.

    The estimate uses the mean epoch time so far in this run (epochs of every
    model cost about the same here), times the epochs still to train.

    Args:
        project: Whatever holds the run's validated parameters and their
            :class:`~activation_compare.identity.ComparePlan` (``plan``): the
            project hook (``settings.py``).
    """

    def __init__(self, project: Any) -> None:
        self._project = project
        self._plan: ComparePlan | None = None
        self._models_total = 0
        self._models_started = 0
        self._epochs_done = 0
        self._epoch_seconds = 0.0
        self._listeners: list[training_events.Listener] = []
        self._epoch_started = 0.0

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        self._plan = self._project.plan
        self._models_total = sum(self._trained_model(node) is not None for node in pipeline.nodes)
        self._models_started = self._epochs_done = 0
        self._epoch_seconds = 0.0

    def _trained_model(self, node: Node) -> ModelKey | None:
        """The model a node trains; None for every other node."""
        found = self._plan.node(node.name) if self._plan is not None else None
        return found[0] if found is not None and found[1] == Step.TRAIN else None

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        key = self._trained_model(node)
        if key is None:
            return
        self._models_started += 1
        model_label = f"model {self._models_started}/{self._models_total} ({key.label})"

        # The training state decides, before fit, whether the model is trained
        # from scratch, resumed or reused as it is: say which.
        def on_start(event: training_events.TrainingStart) -> None:
            if event.mode == "reuse":
                logger.info("%s: already trained (%d epochs); reused", model_label, event.epochs)
            elif event.mode == "resume":
                logger.info(
                    "%s: resuming after epoch %d of %d", model_label, event.initial_epoch, event.epochs
                )
            else:
                logger.info("%s: training %d epochs", model_label, event.epochs)
            self._epoch_started = time.perf_counter()

        def on_epoch_end(event: training_events.EpochEnd) -> None:
            now = time.perf_counter()
            self._epoch_seconds += now - self._epoch_started
            self._epoch_started = now
            self._epochs_done += 1
            mean = self._epoch_seconds / self._epochs_done
            left_model = event.epochs - event.epoch  # epochs are numbered from 1
            left_run = left_model + (self._models_total - self._models_started) * event.epochs
            accuracy = event.metrics.get("val_accuracy")
            shown = f", val_accuracy {accuracy:.4f}" if accuracy is not None else ""
            logger.info(
                "%s: epoch %d/%d%s; left: %s for this model, %s for the run",
                model_label,
                event.epoch,
                event.epochs,
                shown,
                _duration(left_model * mean),
                _duration(left_run * mean),
            )

        self._epoch_started = time.perf_counter()
        self._listeners = [
            training_events.subscribe(on_start, training_events.TrainingStart),
            training_events.subscribe(on_epoch_end),
        ]

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        self._stop_listening()

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        self._stop_listening()

    def _stop_listening(self) -> None:
        for listener in self._listeners:
            training_events.unsubscribe(listener)
        self._listeners = []
