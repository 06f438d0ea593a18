"""The project's training node, one epoch per ``go``, with at most one lever changed.

    python -m benchmarks.project_worker '{"data": "images.npz", "activation": "relu", "knobs": {}}'

``build_model`` + ``train_model`` of the modelling pipeline on the arrays
``normalize_images`` gives, with the ``training`` parameters' defaults; no
checkpoint, no tracking (``benchmarks.kedro_worker`` has those). ``knobs``
change one thing each (the levers of ``benchmarks.cpu``): ``precision`` (the
``model.precision`` parameter: ``float32``, ``bfloat16``...), ``deterministic``,
``steps_per_execution``, ``keras_arrays``, ``validation_batch``,
``interop_threads``, ``intra_op_threads``, and for RReLU the parts of its
cheaper draw undone one at a time: ``rrelu_draw="float32"`` (one float32
uniform per slope) or ``"none"`` (no draw, every slope the mean: not RReLU,
the cost of the draw), ``rrelu_apply="where"`` (the unfused select) and
``rrelu_inference="where"`` (a select instead of one leaky_relu op at inference).
oneDNN is set by the driver through ``TF_ENABLE_ONEDNN_OPTS``.
"""

from __future__ import annotations

import json
import sys

from benchmarks.protocol import emit, load_images, peak_rss_mb, wait_go
from benchmarks.seed_worker import describe


def _patch_input(input_pipeline, knobs: dict) -> None:
    """Swap the node's batches for Keras' array adapter or a larger validation batch."""
    original = input_pipeline.batches

    def batches(images, labels, batch_size, *, shuffle_seed=None, first_pass=0):
        if knobs.get("keras_arrays"):
            from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter

            return ArrayDataAdapter(
                images, labels, batch_size=batch_size, shuffle=shuffle_seed is not None
            ).get_tf_dataset()
        if shuffle_seed is None and knobs.get("validation_batch"):
            batch_size = knobs["validation_batch"]
        return original(images, labels, batch_size, shuffle_seed=shuffle_seed, first_pass=first_pass)

    input_pipeline.batches = batches


def _undo_rrelu_savings(knobs: dict) -> None:
    """The RReLU layer as it was before a saving: a float32 draw, or ``where`` with autodiff."""
    import keras
    from keras import ops

    from activation_compare.layers import rrelu

    if knobs.get("rrelu_draw") == "none":
        # Not RReLU: every slope the mean, through the same factor. What the draw costs.
        def no_draw(self, shape):
            return ops.full(shape, self.inference_slope, dtype="float32")

        rrelu.RReLU._draw_slopes = no_draw
    if knobs.get("rrelu_draw") == "float32":
        def draw(self, shape):
            return keras.random.uniform(shape, self.lower, self.upper, dtype="float32", seed=self.seed_generator)

        rrelu.RReLU._draw_slopes = draw
    if knobs.get("rrelu_apply") == "where":
        rrelu._scale_negatives = lambda x, slopes: ops.where(x >= 0, x, x * slopes)
    if knobs.get("rrelu_inference") == "where":
        call = rrelu.RReLU.call

        def where_at_inference(self, inputs, training=False):
            if training:
                return call(self, inputs, training=True)
            return ops.where(inputs >= 0, inputs, inputs * ops.cast(self.inference_slope, inputs.dtype))

        rrelu.RReLU.call = where_at_inference


def main(spec: dict) -> None:
    import tensorflow as tf

    knobs = spec.get("knobs", {})
    # Thread pools are fixed when TensorFlow's runtime starts: before any op.
    if knobs.get("interop_threads"):
        tf.config.threading.set_inter_op_parallelism_threads(knobs["interop_threads"])
    if knobs.get("intra_op_threads"):
        tf.config.threading.set_intra_op_parallelism_threads(knobs["intra_op_threads"])

    from activation_compare import training_events
    from activation_compare.datasets.types import LabelledImages
    from activation_compare.identity import ModelKey
    from activation_compare.params import ModelParams, TrainingParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling import input_pipeline, nodes

    data = load_images(spec["data"])
    train = normalize_images(LabelledImages(data["x_train"], data["y_train"]))
    test = normalize_images(LabelledImages(data["x_test"], data["y_test"]))
    del data
    _undo_rrelu_savings(knobs)
    if "steps_per_execution" in knobs:
        nodes._STEPS_PER_EXECUTION = knobs["steps_per_execution"]
    if knobs.get("keras_arrays") or knobs.get("validation_batch"):
        _patch_input(input_pipeline, knobs)
    emit({"event": "ready", "tf": describe(tf)})

    rows: list[dict] = []

    def on_epoch(event):
        rows.append(dict(event.metrics, epoch=event.epoch))
        emit({"event": "epoch", **rows[-1]})
        if len(rows) < spec["epochs"]:
            wait_go()

    key = ModelKey(spec["activation"], spec.get("seed", 0))
    params = TrainingParams(
        epochs=spec["epochs"], batch_size=spec["batch_size"], verbose=0,
        deterministic=knobs.get("deterministic", True),
    )
    model_params = ModelParams(**({"precision": knobs["precision"]} if knobs.get("precision") else {}))
    model = nodes.build_model({"type": spec["activation"]}, model_params, key=key)
    training_events.subscribe(on_epoch)
    try:
        wait_go()
        _, history = nodes.train_model(model, train, test, params, key=key)
    finally:
        training_events.unsubscribe(on_epoch)
    for row, seconds in zip(rows, history["epoch_time_s"]):
        row["epoch_time_s"] = float(seconds)  # the node's own timer: what the pipeline logs
    emit({"event": "run_done", "rows": rows})
    emit({"event": "done", "max_rss_mb": peak_rss_mb()})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
