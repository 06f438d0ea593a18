"""The numbers a tiny seeded training gives, pinned: a change to the numerics fails here.

Each case trains the seed CNN for 2 epochs on 300 synthetic images (validated
on 100 more) with the pipeline's own nodes (``normalize_images`` →
``build_model`` → ``train_model``), and compares every epoch's ``loss``,
``accuracy``, ``val_loss`` and ``val_accuracy`` with the values recorded in
``pinned.json`` beside this file. Cases: relu and rrelu, in float32 and, on
CPUs that compute it natively (AVX512_BF16 or AMX), in bfloat16.

Tolerances, and why:

* float32 losses: 1e-4 relative. The same seed gives bit-identical numbers on
  one machine, but oneDNN picks its kernels by the CPU's instruction set
  (AVX2 EPYCs, AVX-512 and AMX Xeons) and TensorFlow splits work by the
  number of cores, so sums are added in other orders. Measured on an AMX Xeon
  with oneDNN held to AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``), to AVX-512, with
  oneDNN off (``TF_ENABLE_ONEDNN_OPTS=0``) and on one core instead of two, the
  losses moved by at most 6e-6 relative: the tolerance leaves a 15x margin.
  Real numerics changes move them by 1e-3 or more by the second epoch
  (measured, each a one-line change): pixels scaled by 1/256 instead of
  1/255, 1.6e-3; RReLU's lower bound 1/9 instead of 1/8, 2e-3; RReLU's
  slopes drawn from twice their range, 2e-2.
* bfloat16 losses: 2e-3 relative. bfloat16 keeps 8 bits of mantissa, so a
  different summation order shows sooner: AMX against AVX512_BF16 kernels on
  the same Xeon moved the losses by up to 3.4e-4. Its rrelu case still caught
  each of the changes above (by 2.9e-3 to 1.6e-2; its relu case let the 1/256
  scaling pass): the float32 cases are the fine check.
* accuracies: one image (1/300 for ``accuracy``, 1/100 for ``val_accuracy``)
  in float32, two in bfloat16: a loss moved within the tolerance can flip the
  class of an image that sat on a decision boundary.

On a GPU the pin does not apply (other kernels altogether), and bfloat16 is
skipped on CPUs without native bfloat16, whose emulated bfloat16 rounds
otherwise than the kernels the pin was recorded with.

Re-recording. After a deliberate change to the numerics (a TensorFlow or
Keras upgrade, a new model or data pipeline), record the pin again on a CPU
with native bfloat16 if possible, so that every case is recorded::

    ACTIVATION_COMPARE_RECORD_NUMERICS=1 .venv/bin/python -m pytest tests/numerics

Each case then rewrites its entry in ``pinned.json`` (with the date, the
machine, its CPU flags and the TensorFlow, Keras and NumPy versions) and is
reported as skipped with "numerics pin re-recorded". Commit the JSON in a
commit of its own, with a line in CHANGELOG.md saying why the numbers changed.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import re
from pathlib import Path
from typing import Any

import pytest

PINNED = Path(__file__).with_name("pinned.json")
RECORD = os.environ.get("ACTIVATION_COMPARE_RECORD_NUMERICS") == "1"
RECORD_COMMAND = "ACTIVATION_COMPARE_RECORD_NUMERICS=1 .venv/bin/python -m pytest tests/numerics"

N_TRAIN, N_TEST, DATA_SEED = 300, 100, 0
EPOCHS, BATCH_SIZE, MODEL_SEED = 2, 50, 0
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
# Relative tolerance of the losses, and the accuracies' in images (module docstring).
LOSS_RTOL = {"float32": 1e-4, "bfloat16": 2e-3}
ACCURACY_IMAGES = {"float32": 1, "bfloat16": 2}
# The CPU flags that decide which kernels oneDNN runs, recorded with the pin.
KERNEL_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip

# float32 runs on every CPU, so CI must run it (a skip there fails: the ci marker,
# tests/conftest.py); bfloat16 only where the CPU has it.
CASES = [
    pytest.param(
        precision,
        activation,
        id=f"{precision}-{activation}",
        marks=[pytest.mark.ci] if precision == "float32" else [],
    )
    for precision in ("float32", "bfloat16")
    for activation in ("relu", "rrelu")
]


def _cpu() -> dict[str, Any]:
    """This machine's CPU model and kernel-relevant flags (Linux; empty where unknown)."""
    model, flags = platform.processor() or "unknown", set()
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            model = value.strip()
        elif name.strip() == "flags":
            flags = set(value.split())
            break
    return {"cpu": model, "cpu_flags": " ".join(flag for flag in KERNEL_FLAGS if flag in flags)}


def _environment() -> dict[str, Any]:
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        **_cpu(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def _train(precision: str, activation: str) -> dict[str, list[float]]:
    """Per-epoch metrics of one tiny seeded training, as the pipeline's nodes compute them."""
    from activation_compare.datasets.synthetic import SyntheticImageDataset
    from activation_compare.identity import ModelKey
    from activation_compare.params import ModelParams, TrainingParams
    from activation_compare.pipelines.data_processing.nodes import normalize_images
    from activation_compare.pipelines.modelling.nodes import build_model, train_model

    splits = SyntheticImageDataset(n_train=N_TRAIN, n_test=N_TEST, seed=DATA_SEED).load()
    train, test = normalize_images(splits.train), normalize_images(splits.test)
    key = ModelKey(activation, MODEL_SEED)
    model = build_model({"type": activation}, ModelParams(precision=precision), key=key)
    params = TrainingParams(epochs=EPOCHS, batch_size=BATCH_SIZE, seeds=[MODEL_SEED])
    _, history = train_model(model, train, test, params, key=key)
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
    return {metric: [float(v) for v in history[metric]] for metric in METRICS}


def _setup() -> dict[str, Any]:
    return {
        "data": f"synthetic n_train={N_TRAIN} n_test={N_TEST} seed={DATA_SEED}, scaled by normalize_images",
        "training": f"{EPOCHS} epochs, batch_size={BATCH_SIZE}, seed={MODEL_SEED}, Adam 0.001, deterministic",
    }


def _record(case: str, metrics: dict[str, list[float]]) -> None:
    pinned = json.loads(PINNED.read_text()) if PINNED.exists() else {}
    pinned["about"] = (
        "Per-epoch metrics pinned by tests/numerics/test_numerics.py (tolerances in its "
        f"docstring). Re-record with: {RECORD_COMMAND}"
    )
    pinned["setup"] = _setup()
    cases = pinned.setdefault("cases", {})
    cases[case] = {"recorded": _environment(), "metrics": metrics}
    pinned["cases"] = dict(sorted(cases.items()))
    temporary = PINNED.with_suffix(".json.tmp")
    text = json.dumps(pinned, indent=2)
    # Each list of numbers on one line: one epoch per item, readable in a diff.
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + ", ".join(
        item.strip() for item in m.group(1).split(",")) + "]", text)
    temporary.write_text(text + "\n")
    os.replace(temporary, PINNED)


def _differences(precision: str, got: dict[str, list[float]], want: dict[str, list[float]]) -> list[str]:
    """One line per value outside its tolerance."""
    lines = []
    images = {"accuracy": N_TRAIN, "val_accuracy": N_TEST}
    for metric in METRICS:
        if len(got[metric]) != len(want[metric]):
            lines.append(f"{metric}: {len(got[metric])} epochs, pinned {len(want[metric])}")
            continue
        for epoch, (value, pinned) in enumerate(zip(got[metric], want[metric]), start=1):
            if metric in images:
                allowed = ACCURACY_IMAGES[precision] / images[metric] + 1e-6  # + float32 rounding
                ok = abs(value - pinned) <= allowed
                rule = f"±{ACCURACY_IMAGES[precision]} image(s)"
            else:
                ok = math.isclose(value, pinned, rel_tol=LOSS_RTOL[precision], abs_tol=0.0)
                rule = f"rel {LOSS_RTOL[precision]:g}"
            if not ok:
                relative = abs(value - pinned) / abs(pinned) if pinned else math.inf
                lines.append(
                    f"epoch {epoch} {metric}: {value!r}, pinned {pinned!r} "
                    f"(off by {relative:.2e} relative; allowed {rule})"
                )
    return lines


@pytest.mark.parametrize(("precision", "activation"), CASES)
def test_a_tiny_seeded_training_gives_the_pinned_metrics(precision: str, activation: str):
    import tensorflow as tf

    from activation_compare.models.precision import cpu_has_bfloat16

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the numerics are pinned for CPU kernels; this process sees a GPU")
    if precision == "bfloat16" and not cpu_has_bfloat16():
        pytest.skip(
            "this CPU lacks native bfloat16 (neither avx512_bf16 nor amx_bf16): TensorFlow "
            "would emulate it, and emulated bfloat16 rounds otherwise than the pinned kernels"
        )
    case = f"{precision}/{activation}"
    metrics = _train(precision, activation)
    if RECORD:
        _record(case, metrics)
        pytest.skip(f"numerics pin re-recorded: {case} in {PINNED.name}; commit it with a CHANGELOG line")
    pinned = json.loads(PINNED.read_text())
    if case not in pinned["cases"]:
        pytest.fail(f"{case} is not pinned in {PINNED.name}; record it with {RECORD_COMMAND}")
    entry = pinned["cases"][case]
    differences = _differences(precision, metrics, entry["metrics"])
    if differences:
        here, there = _environment(), entry["recorded"]
        versions = ", ".join(
            f"{name} {there.get(name)} (here {here[name]})" for name in ("tensorflow", "keras", "numpy")
        )
        pytest.fail(
            f"{case}: the training's numbers moved from the pin:\n  "
            + "\n  ".join(differences)
            + f"\nPinned on {there.get('date')} on {there.get('cpu')} {there.get('cpu_flags')}, {versions};"
            f"\nthis machine: {here['cpu']} {here['cpu_flags']}."
            f"\nIf the change is deliberate, re-record with {RECORD_COMMAND} and commit "
            "tests/numerics/pinned.json with a CHANGELOG line.",
            pytrace=False,
        )


def test_the_pin_records_where_it_was_recorded():
    pinned = json.loads(PINNED.read_text())
    assert pinned["setup"] == _setup(), f"the setup changed since the pin; {RECORD_COMMAND}"
    assert set(pinned["cases"]) == {f"{p}/{a}" for p, a in (c.values for c in CASES)}
    for entry in pinned["cases"].values():
        recorded = entry["recorded"]
        assert {"date", "machine", "cpu", "cpu_flags", "tensorflow", "keras"} <= set(recorded)
        assert set(entry["metrics"]) == set(METRICS)
        assert all(len(values) == EPOCHS for values in entry["metrics"].values())
