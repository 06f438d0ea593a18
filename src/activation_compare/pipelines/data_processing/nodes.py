"""Normalization: raw uint8 images to the float32 model inputs of the original."""

from __future__ import annotations

import numpy as np

from activation_compare.datasets.types import LabelledImages
from activation_compare.params import DataParams


def normalize_images(raw: LabelledImages) -> LabelledImages:
    """Scale pixels to [0, 1] as the original did (x / 255), in float32.

    The original divided a uint8 array by 255.0, which makes a float64 copy
    (1.2 GB for CIFAR-10's training set) that Keras then casts to float32.
    Dividing in float32 gives bit-identical values (IEEE division is correctly
    rounded and every uint8 is exact in float32) at a third of the memory.
    """
    images = raw.images.astype(np.float32)
    np.divide(images, np.float32(255.0), out=images)
    return LabelledImages(images=images, labels=raw.labels.astype(np.int64, copy=False))


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

    rng = np.random.default_rng(params.split_seed)
    held_out = []
    for cls in np.unique(train.labels):
        members = np.flatnonzero(train.labels == cls)
        count = max(1, round(len(members) * params.validation_split))
        if count >= len(members):
            raise ValueError(
                f"data.validation_split={params.validation_split} leaves no training "
                f"images of class {int(cls)} ({len(members)} in all); use a smaller split"
            )
        held_out.append(rng.choice(members, size=count, replace=False))
    mask = np.zeros(len(train), dtype=bool)
    mask[np.concatenate(held_out)] = True
    fit = LabelledImages(images=train.images[~mask], labels=train.labels[~mask])
    validation = LabelledImages(images=train.images[mask], labels=train.labels[mask])
    info = {
        "mode": "holdout",
        "validation_split": params.validation_split,
        "validation_size": len(validation),
        "train_size": len(fit),
    }
    return fit, validation, info
