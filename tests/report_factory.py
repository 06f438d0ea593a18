"""Reports for tests: :class:`~activation_compare.reports.Report` values without training a model."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from activation_compare.reports import Curves, DataIdentity, Report, TrainingSettings

SETTINGS = TrainingSettings(
    architecture="seed_cnn", activation_spec={"type": "relu"}, epochs=3, learning_rate=0.001, batch_size=100,
    optimizer="adam", protocol="original", precision="float32", dtype_policy="float32",
)
DATA = DataIdentity(
    source="synthetic", path=None, limit_train=None, limit_test=None, validation_split=0.0, split_seed=0,
    max_images=100_000, test_images=20, test_digest="0123456789abcdef-0123456789abcdef",
)


def make_report(
    activation: str = "relu",
    seed: int = 0,
    test_accuracy: float = 0.5,
    *,
    epochs: int = 3,
    val: float | None = None,
    class_names: tuple[str, ...] = ("a", "b"),
    per_class: dict[str, float] | None = None,
    curve: list[float] | None = None,
    data: dict[str, Any] | None = None,
    **settings: Any,
) -> Report:
    """A report of ``epochs`` epochs whose validation curve rises linearly to ``val`` (its last epoch is its best)."""
    curve = curve if curve is not None else list(np.linspace(0.3, val if val is not None else 0.6, epochs))
    best = int(np.argmax(curve))
    spec = {"type": activation} if activation in ("relu", "rrelu", "prelu", "elu") else {"type": "leaky_relu"}
    return Report(
        model=f"{activation}_seed{seed}",
        activation=activation,
        seed=seed,
        settings=replace(SETTINGS, activation_spec=spec, epochs=epochs, **settings),
        data=replace(DATA, **(data or {})),
        epochs_trained=len(curve),
        parameter_count=42442,
        test_accuracy=test_accuracy,
        best_val_accuracy=float(curve[best]),
        best_epoch=best + 1,
        final_train_accuracy=float(curve[-1]) + 0.05,
        final_val_accuracy=float(curve[-1]),
        mean_epoch_time_s=1.5,
        per_class_accuracy=per_class if per_class is not None else {name: test_accuracy for name in class_names},
        class_names=tuple(class_names),
        confusion_matrix=tuple(tuple(5 if i == j else 1 for j in range(len(class_names))) for i in range(len(class_names))),
        curves=Curves(
            epoch=tuple(range(1, len(curve) + 1)),
            loss=tuple(1.0 - c for c in curve),
            accuracy=tuple(c + 0.05 for c in curve),
            val_loss=tuple(1.1 - c for c in curve),
            val_accuracy=tuple(float(c) for c in curve),
            epoch_time_s=tuple([1.0, 1.5, 2.0, 1.5, 1.5][i % 5] for i in range(len(curve))),
        ),
    )
