"""In-memory shapes of the image data that flows between datasets and nodes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# The official label order of CIFAR-10 (batches.meta.txt); it is also alphabetical.
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

IMAGE_SHAPE: tuple[int, int, int] = (32, 32, 3)


def array_digest(array: Any) -> str:
    """A digest of an array's dtype, shape and bytes (the training fingerprint's data digests)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    return digest.hexdigest()


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pixel values 0-255 as the model's inputs: ``x / 255`` in float32, as the original did.

    The one normalisation: the pipeline's ``normalize_images`` node and the
    served model (:mod:`activation_compare.tracking.serving`) both call it, so a
    served model sees exactly the numbers it was trained on.

    The original divided a uint8 array by 255.0, which makes a float64 copy
    (1.2 GB for CIFAR-10's training set) that Keras then casts to float32.
    Dividing in float32 gives bit-identical values (IEEE division is correctly
    rounded and every uint8 is exact in float32) at a third of the memory.
    """
    images = np.asarray(pixels).astype(np.float32)
    np.divide(images, np.float32(255.0), out=images)
    return images


@dataclass(frozen=True)
class LabelledImages:
    """Images (N×32×32×3, channels last) and their integer class labels (N,).

    Raw images are ``uint8``; after normalization they are ``float32`` in [0, 1].
    Labels are ``int64`` class indices into the accompanying class names.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(
                f"images must have shape (N, 32, 32, 3), got {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},) to match the images, "
                f"got {self.labels.shape}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @cached_property
    def content_digest(self) -> str:
        """A digest of the images' and labels' dtypes, shapes and bytes.

        Computed once per object (training fingerprints of every model of a run
        need it, and the training set can be 600 MB); the arrays are never
        changed in place after loading.
        """
        return f"{array_digest(self.images)[:16]}-{array_digest(self.labels)[:16]}"


@dataclass(frozen=True)
class ImageSplits:
    """What every image source dataset loads: both splits and the class names."""

    train: LabelledImages
    test: LabelledImages
    class_names: tuple[str, ...]
    # Where the data came from, for run records (e.g. "cifar10 binary archive <path> md5=...").
    description: str
