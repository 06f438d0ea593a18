"""32-bit random words from a Keras seed generator, drawn the cheapest way the backend has.

RReLU takes two 16-bit slopes from every 32-bit word, so the words' cost is
most of what its random slopes cost. ``keras.random.randint`` has no
full-range draw: over ``[-2**31, 2**31 - 1)`` TensorFlow reduces each word
modulo ``2**32 - 1``, about a fifth of the draw's time on a CPU (6.38
against 4.99 ms a training step for the first RReLU layer's words:
benchmarks/results/op-profile-rrelu-10k*.json).
TensorFlow draws full-range integers without it (``tf.random.stateless_uniform``
with ``minval=maxval=None``: every 32-bit word equally likely) from the same
counter-based generator and seed, so on TensorFlow the words come from there
(docs/speed.md has the epochs); on the other backends from
``keras.random.randint``. The two give the same words but for the top bit,
which the range's offset flips (and the one word ``randint`` cannot give).
Nothing backend-specific is imported until a TensorFlow draw is made, so the
layer still runs on every backend.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["random_words"]

# keras.random.randint draws from [minval, maxval): all but one int32 value,
# 32 random bits to within 2**-32, on every backend.
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def random_words(shape: tuple[Any, ...], seed_generator: keras.random.SeedGenerator) -> Any:
    """int32 words of ``shape``, each 32 uniform random bits; advances ``seed_generator``."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # The seed as Keras' own TensorFlow draws take it: the generator's next
        # state, made int32 the way keras.src.backend.tensorflow.random does
        # (int32 seeds are what XLA compiles).
        seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
        return tf.random.stateless_uniform(shape, seed=seed, minval=None, maxval=None, dtype=tf.int32)
    return keras.random.randint(shape, _INT32_MIN, _INT32_MAX, dtype="int32", seed=seed_generator)
