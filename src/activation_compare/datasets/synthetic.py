"""Deterministic CIFAR-shaped images with a learnable class signal, for quick runs."""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np
from kedro.io import AbstractDataset

from .errors import DataSourceError, ReadOnlyDatasetError
from .types import CIFAR10_CLASSES, ImageSplits, LabelledImages

_SIDE = 32
_N_CLASSES = len(CIFAR10_CLASSES)


def _class_styles() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: a base colour (10 hues around the wheel), a stripe angle and frequency."""
    colours = (
        np.array([colorsys.hsv_to_rgb(c / _N_CLASSES, 0.75, 0.85) for c in range(_N_CLASSES)])
        * 255.0
    )
    angles = np.arange(_N_CLASSES) * (np.pi / 5.0)  # 0°, 36°, …: neighbours differ by 36°
    frequencies = np.array([2.0, 3.0, 4.0, 2.5, 3.5] * 2)  # cycles per image
    return colours, angles, frequencies


def make_images(n: int, rng: np.random.Generator) -> LabelledImages:
    """``n`` balanced images: class colour × class stripes, per-image jitter, pixel noise."""
    labels = np.arange(n, dtype=np.int64) % _N_CLASSES
    labels = labels[rng.permutation(n)]
    colours, angles, frequencies = _class_styles()
    y, x = np.mgrid[0:_SIDE, 0:_SIDE].astype(np.float64) / _SIDE
    phase = rng.uniform(0.0, 2.0 * np.pi, size=n)
    brightness = rng.uniform(0.8, 1.2, size=n)
    colour_jitter = rng.normal(0.0, 12.0, size=(n, 3))
    noise = rng.normal(0.0, 18.0, size=(n, _SIDE, _SIDE, 3))
    theta = angles[labels][:, None, None]
    along = x[None] * np.cos(theta) + y[None] * np.sin(theta)
    stripes = np.sin(
        2.0 * np.pi * frequencies[labels][:, None, None] * along + phase[:, None, None]
    )
    base = colours[labels] * brightness[:, None] + colour_jitter  # (n, 3)
    images = base[:, None, None, :] * (0.7 + 0.3 * stripes[..., None]) + noise
    pixels = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    return LabelledImages(images=np.ascontiguousarray(pixels), labels=labels)


class SyntheticImageDataset(AbstractDataset[None, ImageSplits]):
    """Read-only: deterministic synthetic data shaped like CIFAR-10, for smoke runs.

    ``n_train`` and ``n_test`` uint8 images (32×32×3) in the 10 CIFAR-10 classes,
    balanced (class counts differ by at most one). Each class has its own colour
    and stripe orientation/frequency; brightness, colour, stripe phase and pixel
    noise vary per image, so the seed CNN learns it well above chance within a
    couple of epochs without it being trivial. The same arguments always give
    byte-identical arrays (NumPy's PCG64 generator; the train and test streams are
    independent, so ``n_test`` does not change the training images).

    Args:
        n_train: number of training images (> 0).
        n_test: number of test images (> 0).
        seed: the random seed.
    """

    def __init__(self, n_train: int = 600, n_test: int = 200, seed: int = 0) -> None:
        for name, value in (("n_train", n_train), ("n_test", n_test)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise DataSourceError(
                    f"synthetic {name}={value!r} must be a positive integer (a number of images)"
                )
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise DataSourceError(f"synthetic seed={seed!r} must be a non-negative integer")
        self._n_train = n_train
        self._n_test = n_test
        self._seed = seed

    def _describe(self) -> dict[str, Any]:
        return {"n_train": self._n_train, "n_test": self._n_test, "seed": self._seed}

    def _exists(self) -> bool:
        return True

    def train_images(self) -> int:
        """How many training images a load gives (checked against the batch size early)."""
        return self._n_train

    def class_count(self) -> int:
        """CIFAR-10's 10 classes (checked against data.limit_* early)."""
        return _N_CLASSES

    def save(self, data: ImageSplits) -> None:
        raise ReadOnlyDatasetError(f"{type(self).__name__} is read-only: it generates images")

    def load(self) -> ImageSplits:
        train = make_images(self._n_train, np.random.default_rng([self._seed, 0]))
        test = make_images(self._n_test, np.random.default_rng([self._seed, 1]))
        return ImageSplits(
            train=train,
            test=test,
            class_names=CIFAR10_CLASSES,
            description=(
                f"synthetic images n_train={self._n_train} n_test={self._n_test} seed={self._seed}"
            ),
        )
