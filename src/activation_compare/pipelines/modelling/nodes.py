"""Modelling: build, train and evaluate one model for one activation and seed."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from activation_compare.datasets.types import LabelledImages
from activation_compare.divergence import check_divergence
from activation_compare.errors import UserError
from activation_compare.identity import FIRST_EPOCH, ModelKey
from activation_compare.lazy_types import DataFrame, Model
from activation_compare.params import DataParams, ModelParams, Protocol, TrainingParams
from activation_compare.reports import Curves, DataIdentity, Report, TrainingSettings
from activation_compare.training_state import Checkpoints, training_session

# Keras, TensorFlow, pandas and scikit-learn are imported inside the nodes that use
# them: the pipelines import this module to be built (lazy_types.py says why).

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_time_s"]

# Train steps per call of the compiled train function (Keras' steps_per_execution).
_STEPS_PER_EXECUTION = 10
# Images per prediction batch when evaluating (the original's training batch size).
_PREDICT_BATCH_SIZE = 100
# Images per batch of the validation pass after each epoch. Inference carries
# nothing from one batch to the next and draws no random numbers, so the batch
# size changes no trained weight; predictions move by float rounding only
# (val_loss by under 1e-6 relative against 100, val_accuracy not at all in the
# runs measured: docs/speed.md).
# Fewer, larger batches spend less per step outside the convolutions.
_VALIDATION_BATCH_SIZE = 500


class NonFiniteLossError(UserError, RuntimeError):
    """Training diverged: the loss became NaN or infinite."""


def build_model(
    activation: dict[str, Any], model_params: ModelParams, *, key: ModelKey
) -> Model:
    """Build the original experiment's CNN with the given activation.

    Args:
        activation: The activation's spec from ``activations.<name>`` (type and options).
        model_params: The ``model`` parameters (architecture, precision).
        key: The model (its seed seeds the weight initialisation and RReLU's slope draws).

    Returns:
        An uncompiled Keras model whose layers compute in ``model.precision``,
        resolved for this machine (:mod:`activation_compare.models.precision`).
    """
    import keras

    from activation_compare.models import build_seed_cnn, parse_activation
    from activation_compare.models.precision import dtype_policy

    keras.utils.set_random_seed(key.seed)
    model = build_seed_cnn(
        parse_activation(activation), seed=key.seed, dtype=dtype_policy(model_params.precision)
    )
    model.name = f"{model_params.architecture}_{key.name}"
    return model


def _training_device() -> str:
    """Where TensorFlow will train: its GPUs if it sees any, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return ", ".join(gpu.name for gpu in gpus) if gpus else "CPU"


def train_model(
    model: Model,
    train_set: LabelledImages,
    validation_set: LabelledImages,
    params: TrainingParams,
    checkpoints: Checkpoints | None = None,
    *,
    key: ModelKey,
    restore_best: bool = False,
) -> tuple[Model, DataFrame]:
    """Train as the original did: Adam, sparse categorical cross-entropy, shuffled batches.

    Args:
        model: The model from :func:`build_model`.
        train_set: Normalized training images and labels.
        validation_set: Data evaluated after every epoch (the test set by default).
        params: The ``training`` parameters (epochs, batch size, optimizer).
        checkpoints: The model's checkpoints (a handle from the catalog): every
            epoch is committed through it; an interrupted training resumes from
            it and a finished one is returned without training
            (:mod:`activation_compare.training_state`). None: nothing is saved.
        key: The model; its seed seeds batch shuffling and any randomness inside the model.
        restore_best: Return the weights of the best validation epoch (the
            highest ``val_accuracy``, the earliest on ties), restored from the
            training state, instead of the last epoch's (the rigorous protocol).

    Returns:
        The trained model and its per-epoch history (epoch from 1, loss,
        accuracy, val_loss, val_accuracy, epoch_time_s); the history is
        complete either way.

    Raises:
        ValueError: If the batch size exceeds the training set.
        NonFiniteLossError: If the loss becomes NaN or infinite.
        LossDivergedError: If the loss explodes without becoming NaN (:mod:`activation_compare.divergence`).
    """
    if params.batch_size > len(train_set):
        raise ValueError(
            f"training.batch_size={params.batch_size} is larger than the training set "
            f"({len(train_set)} images); choose at most {len(train_set)}"
        )
    import keras
    import pandas as pd
    import tensorflow as tf

    from activation_compare.training_events import EpochEventsCallback

    from . import input_pipeline
    from .epoch_timer import EpochTimer

    if params.deterministic:
        # Process-wide, and a no-op once set; TensorFlow then refuses unseeded
        # random ops, which set_random_seed below covers.
        tf.config.experimental.enable_op_determinism()
    from activation_compare.models.precision import model_precision, needs_loss_scaling

    seed = key.seed
    keras.utils.set_random_seed(seed)
    optimizer = keras.optimizers.Adam(learning_rate=params.optimizer.learning_rate)
    if needs_loss_scaling(model):
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=params.jit_compile,
        # Several train steps per call into the compiled function: the same
        # updates in the same order, less Python per step (README, Speed).
        steps_per_execution=_STEPS_PER_EXECUTION,
    )
    # Fresh, resumed from the checkpoint, or reused as it is; the checkpoint
    # folder stays locked until the block ends (training_state).
    with training_session(checkpoints, model, train_set, validation_set, params, key=key) as session:
        if session.done:
            history = session.finish()[HISTORY_COLUMNS]
            if restore_best:
                _restore_best(session, model)
            return model, history
        # TensorFlow places the model on a GPU whenever it sees one (install the
        # `gpu` extra); saying which keeps slow CPU runs from being a surprise.
        logger.info("Training %s on %s in %s", model.name, _training_device(), model_precision(model))
        timer = EpochTimer()
        # Batches are gathered from the arrays in place (input_pipeline): fit() on
        # NumPy arrays would first copy both whole sets into tensors (720 MB).
        keras_history = model.fit(
            input_pipeline.batches(
                train_set.images,
                train_set.labels,
                params.batch_size,
                shuffle_seed=seed,
                first_pass=session.initial_epoch,
            ),
            epochs=params.epochs,
            validation_data=input_pipeline.batches(
                validation_set.images, validation_set.labels, _VALIDATION_BATCH_SIZE
            ),
            shuffle=False,  # the batches come shuffled (per epoch, from the seed)
            verbose=params.verbose,
            callbacks=[timer, *session.callbacks, EpochEventsCallback(key, params.epochs)],
        )
        history = pd.DataFrame(keras_history.history)
        history.insert(0, "epoch", session.initial_epoch + FIRST_EPOCH + np.arange(len(history)))
        history["epoch_time_s"] = timer.seconds[: len(history)]
        losses = history["loss"].to_numpy(dtype=float)
        if timer.diverged is not None:  # the timer stopped fit at that epoch (Keras counts from 0)
            epoch, loss = timer.diverged
            raise NonFiniteLossError(
                f"The training loss of {model.name} became {loss} at epoch {epoch + FIRST_EPOCH}; "
                "training stopped. Try a smaller training.optimizer.learning_rate."
            )
        check_divergence(model.name, losses.tolist(), params.optimizer.learning_rate)
        # The complete history, resumed epochs included.
        history = session.finish(history)[HISTORY_COLUMNS]
        if restore_best:
            _restore_best(session, model)
        return model, history


def _restore_best(session: Any, model: Model) -> None:
    """Give the model its best validation epoch's weights, and say which epoch that is."""
    epoch = session.restore_best(model)
    logger.info("%s: keeping the weights of epoch %d, its best validation epoch", model.name, epoch)


def evaluate_model(
    model: Model,
    history: DataFrame,
    test_set: LabelledImages,
    class_names: list[str],
    activation: dict[str, Any],
    model_params: ModelParams,
    training: TrainingParams,
    data: DataParams,
    learning_rate: float | None = None,
    *,
    key: ModelKey,
    protocol: Protocol = Protocol.ORIGINAL,
) -> Report:
    """Score the trained model on the test set, as the original did and more.

    Test accuracy is scikit-learn's ``accuracy_score`` on the argmax of the
    predicted probabilities, as in the original; per-class accuracy and the
    confusion matrix come from the same predictions.

    Args:
        model: The trained model; history: its per-epoch history.
        test_set: The test images; class_names: their classes' names.
        activation: The activation's spec; model_params, training, data: the
            ``model``, ``training`` and ``data`` parameters that trained it.
        learning_rate: The learning rate the rigorous protocol chose for this
            activation (``training.optimizer.learning_rate`` otherwise).
        key: The model; protocol: ``compare.protocol``.

    Returns:
        The model's :class:`~activation_compare.reports.Report`: identity,
        settings and data, final and best epoch metrics, test accuracy,
        per-class accuracy, confusion matrix, and the curves.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix

    from activation_compare.models.precision import model_precision

    from . import input_pipeline

    # Batches read from the array in place: predict() on the whole array would
    # first copy it into a tensor and hold 1,000 images' activations at once,
    # which raised a full-data run's peak memory by about 1 GB (README, Speed).
    images = input_pipeline.batches(test_set.images, test_set.labels, _PREDICT_BATCH_SIZE)
    probabilities = model.predict(images.map(lambda batch, _: batch), verbose=0)
    predicted = np.argmax(probabilities, axis=1)
    labels = test_set.labels
    matrix = confusion_matrix(labels, predicted, labels=np.arange(len(class_names)))
    per_class = {
        name: float(matrix[i, i] / row) if (row := matrix[i].sum()) else float("nan")
        for i, name in enumerate(class_names)
    }
    best = int(history["val_accuracy"].to_numpy().argmax())
    settings = TrainingSettings(
        architecture=model_params.architecture,
        activation_spec=activation.model_dump(mode="json") if hasattr(activation, "model_dump") else dict(activation),
        epochs=training.epochs,
        learning_rate=float(learning_rate if learning_rate is not None else training.optimizer.learning_rate),
        batch_size=training.batch_size,
        optimizer=training.optimizer.name,
        protocol=str(Protocol(protocol).value),
        precision=model_params.precision,
        dtype_policy=model_precision(model),
    )
    identity = DataIdentity(
        source=data.source,
        path=data.path,
        limit_train=data.limit_train,
        limit_test=data.limit_test,
        validation_split=data.validation_split,
        split_seed=data.split_seed,
        max_images=data.max_images,
        test_images=len(test_set),
        test_digest=test_set.content_digest,
    )
    column = {name: tuple(float(v) for v in history[name]) for name in HISTORY_COLUMNS[1:]}
    return Report(
        model=key.name,
        activation=key.activation,
        seed=key.seed,
        settings=settings,
        data=identity,
        epochs_trained=len(history),
        parameter_count=int(model.count_params()),
        test_accuracy=float(accuracy_score(labels, predicted)),
        best_val_accuracy=float(history["val_accuracy"].iloc[best]),
        # Epochs are numbered from 1, as in history.csv.
        best_epoch=int(history["epoch"].iloc[best]),
        final_train_accuracy=float(history["accuracy"].iloc[-1]),
        final_val_accuracy=float(history["val_accuracy"].iloc[-1]),
        mean_epoch_time_s=float(history["epoch_time_s"].mean()),
        per_class_accuracy=per_class,
        class_names=tuple(str(name) for name in class_names),
        confusion_matrix=tuple(tuple(int(v) for v in row) for row in matrix),
        curves=Curves(epoch=tuple(int(v) for v in history["epoch"]), **column),
    )
