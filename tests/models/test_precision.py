"""model.precision: what `auto` picks on which machine, and what each choice builds and trains."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from activation_compare.datasets.types import LabelledImages
from activation_compare.identity import ModelKey
from activation_compare.models import precision
from activation_compare.models.precision import cpu_has_bfloat16, dtype_policy, model_precision
from activation_compare.params import ModelParams, TrainingParams
from activation_compare.pipelines.modelling.nodes import build_model, train_model
from activation_compare.training_state.fingerprint import differences, training_fingerprint

FLAGS = "fpu vme sse sse2 avx avx2 avx512f"


def _cpuinfo(tmp_path, flags: str | None) -> object:
    lines = ["processor\t: 0", "model name\t: Some CPU"] + ([f"flags\t\t: {flags}"] if flags is not None else [])
    path = tmp_path / "cpuinfo"
    path.write_text("\n".join(lines * 2) + "\n")
    return path


@pytest.mark.parametrize(
    ("flags", "native"),
    [(FLAGS, False), (f"{FLAGS} avx512_bf16", True), (f"{FLAGS} amx_tile amx_bf16", True), (None, False)],
)
def test_native_bfloat16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    assert cpu_has_bfloat16(_cpuinfo(tmp_path, flags)) is native


def test_no_cpuinfo_means_no_native_bfloat16(tmp_path):
    assert cpu_has_bfloat16(tmp_path / "missing") is False


@pytest.mark.parametrize(
    ("native", "gpu", "policy"),
    [(True, False, "mixed_bfloat16"), (False, False, "float32"), (True, True, "float32"), (False, True, "float32")],
)
def test_auto_is_bfloat16_only_on_a_cpu_that_computes_it(monkeypatch, native, gpu, policy):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: native)
    monkeypatch.setattr(precision, "_sees_gpu", lambda: gpu)
    assert dtype_policy("auto") == policy


def test_explicit_precisions_are_keras_policies_whatever_the_machine(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: False)
    assert [dtype_policy(p) for p in ("float32", "bfloat16", "float16")] == [
        "float32", "mixed_bfloat16", "mixed_float16",
    ]
    with pytest.raises(ValueError, match=r"model.precision='fp8'; allowed: auto, float32, bfloat16, float16"):
        dtype_policy("fp8")


@pytest.mark.parametrize("activation", ["relu", "rrelu", "prelu"])
def test_bfloat16_computes_in_16_bits_keeps_float32_weights_and_a_float32_softmax(activation):
    key = ModelKey(activation, 0)
    model = build_model({"type": activation}, ModelParams(precision="bfloat16"), key=key)
    assert model_precision(model) == "mixed_bfloat16"
    assert {str(w.dtype) for w in model.weights} == {"float32"}
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("act2").compute_dtype == "bfloat16"
    assert model.get_layer("classifier").compute_dtype == "float32"
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    probabilities = model(images, training=True)
    assert keras.backend.standardize_dtype(probabilities.dtype) == "float32"
    assert np.allclose(np.asarray(probabilities).sum(axis=1), 1.0, atol=1e-5)
    float32 = build_model({"type": activation}, ModelParams(precision="float32"), key=key)
    assert model.count_params() == float32.count_params()
    assert model_precision(float32) == "float32"


def _split(n: int, seed: int) -> LabelledImages:
    rng = np.random.default_rng(seed)
    return LabelledImages(rng.random((n, 32, 32, 3), dtype=np.float32), rng.integers(0, 10, n))


def test_a_precision_is_part_of_the_checkpoint_fingerprint_and_named_when_it_changes():
    key, data, params = ModelKey("relu", 0), _split(8, 0), TrainingParams(epochs=1, batch_size=4)
    prints = {
        p: training_fingerprint(build_model({"type": "relu"}, ModelParams(precision=p), key=key), data, data, params, seed=0)
        for p in ("float32", "bfloat16")
    }
    assert prints["float32"]["model.precision"] == "float32"
    assert "model.precision changed from 'float32' to 'mixed_bfloat16'" in differences(prints["float32"], prints["bfloat16"])


@pytest.mark.parametrize("choice", ["bfloat16", "float16"])
def test_reduced_precision_trains_and_float16_scales_the_loss(choice):
    key = ModelKey("rrelu", 0)
    model = build_model({"type": "rrelu"}, ModelParams(precision=choice), key=key)
    trained, history = train_model(
        model, _split(40, 1), _split(20, 2), TrainingParams(epochs=2, batch_size=10), key=key
    )
    assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()
    scaled = type(trained.optimizer).__name__ == "LossScaleOptimizer"
    assert scaled is (choice == "float16")
