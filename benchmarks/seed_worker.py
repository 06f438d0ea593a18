"""The original experiment's code as written, one epoch per ``go``.

    python -m benchmarks.seed_worker '{"data": "images.npz", "activation": "rrelu", ...}'

Keras ``Sequential``: Conv2D(32, 3x3, activation=act) -> MaxPool -> Conv2D(64,
3x3, activation=act) -> MaxPool -> Flatten -> Dense(10, softmax); ``fit`` on
float64 ``x / 255`` arrays, Adam, sparse categorical cross-entropy, batch 100,
the test set as validation data. Under TensorFlow 2.15 (Keras 2) the RReLU is
``tfa.activations.rrelu`` passed as the activation, as the seed code did; under
Keras 3, where TensorFlow Addons does not exist, the port passes the project's
``RReLU()`` layer instead. Runs on the standard library, NumPy and TensorFlow.
"""

from __future__ import annotations

import json
import os
import sys
import time

from benchmarks.protocol import emit, load_images, peak_rss_mb, wait_go


def describe(tf) -> dict:
    """The TensorFlow stack this worker trains on."""
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        onednn = None
    try:
        import keras  # Keras 2.15 under TF 2.15, Keras 3 otherwise

        keras_version = keras.__version__
    except ImportError:
        keras_version = None
    return {
        "tensorflow": tf.__version__,
        "keras": keras_version,
        "onednn_enabled": onednn,
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "python": sys.version.split()[0],
    }


def activations(tf, name: str):
    """The two convolutions' activations, as the seed code passed them."""
    if name == "relu":
        return "relu", "relu"
    try:
        import tensorflow_addons as tfa
    except ImportError:  # Keras 3: the project's layer stands in for TFA's function
        from activation_compare.layers import RReLU

        return RReLU(), RReLU()
    return tfa.activations.rrelu, tfa.activations.rrelu


def main(spec: dict) -> None:
    import tensorflow as tf

    data = load_images(spec["data"])
    x, xv = data["x_train"] / 255.0, data["x_test"] / 255.0  # float64, as the original
    y, yv = data["y_train"], data["y_test"]
    keras = tf.keras
    emit({"event": "ready", "tf": describe(tf)})

    rows: list[dict] = []

    class Gate(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            wait_go()
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            row = {k: float(v) for k, v in (logs or {}).items()}
            row.update(epoch=epoch, epoch_time_s=time.perf_counter() - self.started)
            rows.append(row)
            emit({"event": "epoch", **row})

    tf.random.set_seed(spec.get("seed", 0))
    act, act2 = activations(tf, spec["activation"])
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(32, (3, 3), activation=act),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Conv2D(64, (3, 3), activation=act2),
            keras.layers.MaxPooling2D((2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        x, y, batch_size=spec["batch_size"], epochs=spec["epochs"], validation_data=(xv, yv),
        verbose=0, callbacks=[Gate()],
    )
    emit({"event": "run_done", "rows": rows})
    emit({"event": "done", "max_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
