"""Normalization: raw uint8 images to the float32 model inputs of the original."""

from __future__ import annotations

import numpy as np

from activation_compare.datasets.types import LabelledImages, scale_pixels
from activation_compare.params import DataParams, TuningParams


def normalize_images(raw: LabelledImages) -> LabelledImages:
    """Scale pixels to [0, 1] as the original did (x / 255), in float32 (:func:`scale_pixels`).

    The served model normalises its requests with the same function.
    """
    return LabelledImages(images=scale_pixels(raw.images), labels=raw.labels.astype(np.int64, copy=False))


def split_validation(
    train: LabelledImages, test: LabelledImages, params: DataParams
) -> tuple[LabelledImages, LabelledImages, dict[str, object]]:
    """Choose the validation data that training reports each epoch.

    With ``data.validation_split`` = 0 (the default, as the original), the test
    set is the validation data. Otherwise a stratified fraction of the training
    set is held out and the model never sees the test set before evaluation.

    Returns:
        The training set, the validation set, and a record of which was used.
    """
    if params.validation_split == 0:
        info = {"mode": "test_set", "validation_size": len(test), "train_size": len(train)}
        return train, test, info

    counts = {}
    for cls in np.unique(train.labels):
        members = int(np.count_nonzero(train.labels == cls))
        counts[int(cls)] = max(1, round(members * params.validation_split))
    fit, validation = _hold_out(
        train, counts, params.split_seed, f"data.validation_split={params.validation_split}"
    )
    info = {
        "mode": "holdout",
        "validation_split": params.validation_split,
        "validation_size": len(validation),
        "train_size": len(fit),
    }
    return fit, validation, info


def hold_out_validation(
    train: LabelledImages, data: DataParams, tuning: TuningParams
) -> tuple[LabelledImages, LabelledImages, dict[str, object]]:
    """The rigorous protocol's validation data: ``tuning.validation_size`` training images.

    Stratified: each class gives its share of the training set (largest
    remainders, so the sizes add up exactly). Every choice of the rigorous
    protocol (learning rate, epoch) is made on this split; the test set is not
    an input here, or of any node but the final evaluations.

    Returns:
        The training set less the split, the split, and a record of both sizes.
    """
    size = tuning.validation_size
    if size >= len(train):
        raise ValueError(
            f"tuning.validation_size={size} leaves no training images of the {len(train)} "
            f"the run has; expected fewer than {len(train)}"
        )
    classes, members = np.unique(train.labels, return_counts=True)
    shares = members * size / len(train)
    counts = np.floor(shares).astype(int)
    # Largest remainders first; ties to the lower class index (a stable sort).
    extra = np.argsort(-(shares - counts), kind="stable")[: size - int(counts.sum())]
    counts[extra] += 1
    fit, validation = _hold_out(
        train, dict(zip(classes.tolist(), counts.tolist())), data.split_seed,
        f"tuning.validation_size={size}",
    )
    info = {
        "mode": "holdout",
        "protocol": "rigorous",
        "validation_size": len(validation),
        "train_size": len(fit),
    }
    return fit, validation, info


def _hold_out(
    train: LabelledImages, counts: dict[int, int], seed: int, asked: str
) -> tuple[LabelledImages, LabelledImages]:
    """Hold out ``counts[c]`` random images of every class ``c`` (the one sampling code path).

    ``asked`` names the parameter behind the counts, for the error message.
    """
    rng = np.random.default_rng(seed)
    held_out = []
    for cls, count in counts.items():
        members = np.flatnonzero(train.labels == cls)
        if count >= len(members):
            raise ValueError(
                f"{asked} leaves no training images of class {int(cls)} ({len(members)} in all); "
                "hold out fewer"
            )
        held_out.append(rng.choice(members, size=count, replace=False))
    mask = np.zeros(len(train), dtype=bool)
    mask[np.concatenate(held_out)] = True
    fit = LabelledImages(images=train.images[~mask], labels=train.labels[~mask])
    validation = LabelledImages(images=train.images[mask], labels=train.labels[mask])
    return fit, validation
