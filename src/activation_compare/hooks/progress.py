"""Where a long run is: model k of n, epoch e of E, and the time left."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node, Pipeline

from activation_compare import training_events
from activation_compare.identity import ComparePlan, ModelKey, Step
from activation_compare.training_events import Mode

logger = logging.getLogger("activation_compare.progress")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class _RunClock:
    """The run's models in order, its epochs so far and their mean time, shared by the models training at once.

    A model's position is its place among the run's trained models (the
    plan's order), not the order in which it starts: ParallelRunner's worker
    processes each get a copy of the clock, and every copy names a model alike.
    """

    def __init__(self, models: list[ModelKey]) -> None:
        self.positions = {key: index for index, key in enumerate(models, start=1)}
        self.models_total = len(models)
        self.models_started = 0
        self._epochs = 0
        self._seconds = 0.0
        self._lock = threading.Lock()

    def start_model(self) -> None:
        """Count one more model started."""
        with self._lock:
            self.models_started += 1

    def add_epoch(self, seconds: float) -> float:
        """Count one more epoch; the mean epoch time so far."""
        with self._lock:
            self._epochs += 1
            self._seconds += seconds
            return self._seconds / self._epochs


class _ModelProgress:
    """The lines of one training node run: its model's start and each epoch.

    ``clock`` is None where the run's plan is unknown (hooks built afresh on a
    Dask worker): the lines name the model alone, and give no time left for
    the run.
    """

    def __init__(self, clock: _RunClock | None) -> None:
        self._clock = clock
        if clock is not None:
            clock.start_model()
        self._own_epochs = 0
        self._own_seconds = 0.0
        self._epoch_started = time.perf_counter()

    def _label(self, key: ModelKey) -> str:
        position = self._clock.positions.get(key) if self._clock is not None else None
        if position is None:
            return key.label
        return f"model {position}/{self._clock.models_total} ({key.label})"

    def on_start(self, event: training_events.TrainingStart) -> None:
        # The training state decides, before fit, whether the model is trained
        # from scratch, resumed or reused as it is: say which.
        label = self._label(event.key)
        if event.mode is Mode.REUSE:
            logger.info("%s: already trained (%d epochs); reused", label, event.epochs)
        elif event.mode is Mode.RESUME:
            logger.info("%s: resuming after epoch %d of %d", label, event.initial_epoch, event.epochs)
        else:
            logger.info("%s: training %d epochs", label, event.epochs)
        self._epoch_started = time.perf_counter()

    def on_epoch_end(self, event: training_events.EpochEnd) -> None:
        now = time.perf_counter()
        seconds, self._epoch_started = now - self._epoch_started, now
        self._own_epochs += 1
        self._own_seconds += seconds
        # Epochs of every model cost about the same here: the run's mean where known.
        mean = self._clock.add_epoch(seconds) if self._clock is not None else self._own_seconds / self._own_epochs
        left_model = event.epochs - event.epoch  # epochs are numbered from 1
        accuracy = event.metrics.get("val_accuracy")
        shown = f", val_accuracy {accuracy:.4f}" if accuracy is not None else ""
        left = f"{_duration(left_model * mean)} for this model"
        if self._clock is not None:
            left_run = left_model + (self._clock.models_total - self._clock.models_started) * event.epochs
            left += f", {_duration(left_run * mean)} for the run"
        logger.info("%s: epoch %d/%d%s; left: %s", self._label(event.key), event.epoch, event.epochs, shown, left)


class ProgressHooks:
    """Log one line per epoch: model k/n, epoch e/E, and estimates of the time left.

    The estimate uses the mean epoch time so far in this run (epochs of every
    model cost about the same here), times the epochs still to train. Each
    node run has its own listeners, in its own thread (ThreadRunner runs
    models at once). Where the hooks never saw the run start (a Dask worker
    builds them afresh for its tasks), every node is listened to, since only
    a training node publishes training events, and the lines name the model
    without its position in the run; the driver logs each finished model.

    Args:
        project: Whatever holds the run's validated parameters and their
            :class:`~activation_compare.identity.ComparePlan` (``plan``): the
            project hook (``settings.py``).
    """

    def __init__(self, project: Any) -> None:
        self._project = project
        self._plan: ComparePlan | None = None
        self._clock: _RunClock | None = None
        self._listeners = training_events.NodeListeners()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        self._plan = self._project.plan
        if self._plan is not None:
            trained = {key for node in pipeline.nodes if (key := self._trained_model(node)) is not None}
            self._clock = _RunClock([key for key in self._plan.models if key in trained])

    def _trained_model(self, node: Node) -> ModelKey | None:
        """The model a node trains; None for every other node."""
        found = self._plan.node(node.name) if self._plan is not None else None
        return found[0] if found is not None and found[1] == Step.TRAIN else None

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        if self._plan is not None and self._trained_model(node) is None:
            return
        progress = _ModelProgress(self._clock if self._plan is not None else None)
        self._listeners.open(node.name, progress.on_start, progress.on_epoch_end)

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        self._listeners.close(node.name)

    @hook_impl
    def on_node_error(self, node: Node) -> None:
        self._listeners.close(node.name)
