"""Batches for ``model.fit`` straight from the in-memory NumPy arrays, without copying them.

Handing NumPy arrays to ``fit`` makes Keras copy each whole array into a
TensorFlow tensor for every ``fit`` call: 600 MB for CIFAR-10's float32
training set and 120 MB for the test set, on top of the arrays themselves.
Here only one batch at a time is copied (100 images, 1.2 MB): a generator
gathers each batch from the array with NumPy, and ``tf.data`` prefetches the
next batches while the current one trains.

The shuffling is seeded: epoch ``e`` visits the images in the order of a
permutation drawn from ``numpy.random.default_rng([seed, e])``, so the same
seed gives the same batches (and, with op determinism, the same metrics),
also when training resumes at epoch ``e`` from a checkpoint.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Batches prepared ahead of the training step (a few MB).
PREFETCH_BATCHES = 4


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    first_pass: int = 0,
    autotune: bool = False,
) -> tf.data.Dataset:
    """A dataset of ``(images, labels)`` batches that reads ``images`` in place.

    Args:
        images: ``(N, ...)`` array, kept by reference (never copied whole).
        labels: ``(N,)`` array.
        batch_size: Images per batch; the last batch may be smaller.
        shuffle_seed: ``None`` keeps the order (validation); an integer shuffles
            every pass differently, reproducibly from this seed.
        first_pass: The number of the first pass (the epoch ``fit`` starts at), so
            that a training resumed at epoch ``k`` sees epoch ``k``'s order.
        autotune: ``tf.data``'s autotuning, off unless asked for: the pipeline has
            nothing to tune (a fixed prefetch), and its model thread cost whole
            seconds. ``fit`` ends each epoch's iterator, and the end waits for that
            thread, which then sleeps out its optimisation period instead of waking:
            the process sat idle for up to 2 s in one epoch in three (docs/speed.md,
            "Where the slow epochs went"). ``benchmarks.epoch_probe --autotune``
            turns it on to show it.

    Returns:
        A ``tf.data.Dataset`` of known length (``ceil(N / batch_size)`` batches)
        that can be iterated once per epoch.
    """
    count = len(labels)
    if len(images) != count:
        raise ValueError(f"{len(images)} images but {count} labels")
    n_batches = -(-count // batch_size)
    passes = iter(range(first_pass, 2**62)) if shuffle_seed is not None else None

    def generate():
        if passes is None:
            for start in range(0, count, batch_size):
                stop = min(start + batch_size, count)
                yield images[start:stop], labels[start:stop]
            return
        order = np.random.default_rng([shuffle_seed % 2**63, next(passes)]).permutation(count)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            yield images[index], labels[index]

    signature = (
        tf.TensorSpec(shape=(None, *images.shape[1:]), dtype=tf.as_dtype(images.dtype)),
        tf.TensorSpec(shape=(None,), dtype=tf.as_dtype(labels.dtype)),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(n_batches))
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return dataset.prefetch(PREFETCH_BATCHES).with_options(options)
