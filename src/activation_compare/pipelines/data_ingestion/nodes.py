"""Ingestion: from a loaded image source to the raw train and test splits."""

from __future__ import annotations

import logging

import numpy as np

from activation_compare.datasets.types import ImageSplits, LabelledImages
from activation_compare.params import DataParams, InvalidParametersError

logger = logging.getLogger(__name__)


def stratified_subsample(
    data: LabelledImages, limit: int | None, seed: int, split: str
) -> LabelledImages:
    """Keep ``limit`` images with the class proportions of ``data`` (all when None).

    Each class gets its share rounded down; the remainder goes to the classes
    with the largest fractional shares, so the total is exactly ``limit``.
    """
    n = len(data)
    if limit is None or limit >= n:
        return data
    classes, counts = np.unique(data.labels, return_counts=True)
    if limit < len(classes):  # checked before loading where the class count is known
        raise InvalidParametersError(
            "Invalid parameters (1):\n"
            f"  - data.limit_{split}={limit} is smaller than the {len(classes)} classes of "
            f"the {split} split; a stratified subsample keeps at least one image per class, "
            f"so expected at least {len(classes)} (or null for every image)"
        )
    rng = np.random.default_rng(seed)
    exact = counts * (limit / n)
    quotas = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - quotas), kind="stable")[: limit - quotas.sum()]:
        quotas[index] += 1
    chosen = [
        rng.choice(np.flatnonzero(data.labels == cls), size=quota, replace=False)
        for cls, quota in zip(classes, quotas)
    ]
    # Sorted indices keep the source's order, so subsampling does not shuffle.
    keep = np.sort(np.concatenate(chosen))
    return LabelledImages(images=data.images[keep], labels=data.labels[keep])


def select_splits(
    source: ImageSplits, params: DataParams
) -> tuple[LabelledImages, LabelledImages, list[str]]:
    """Split a loaded source into raw train and test sets, subsampled as configured.

    Args:
        source: Both splits and class names, as an image source dataset loads them.
        params: The ``data`` parameters (``limit_train``, ``limit_test``, ``split_seed``).

    Returns:
        Raw (uint8) training images, raw test images, and the class names.
    """
    train = stratified_subsample(source.train, params.limit_train, params.split_seed, "train")
    test = stratified_subsample(source.test, params.limit_test, params.split_seed, "test")
    logger.info(
        "Ingested %s: %d training and %d test images, %d classes",
        source.description,
        len(train),
        len(test),
        len(source.class_names),
    )
    return train, test, list(source.class_names)
