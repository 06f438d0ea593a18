"""The RReLU layer on Keras' other backends: the backend-agnostic suite, run under JAX.

``test_rrelu.py`` uses only ``keras`` and ``numpy``; here it runs again in a new
interpreter with ``KERAS_BACKEND=jax`` (JAX is in the dev group, CPU wheels), so
the layer's claim to work on any backend is tested, its custom gradient
included. torch is left out: its wheels pull gigabytes of CUDA libraries.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITE = Path(__file__).with_name("test_rrelu.py")


@pytest.mark.slow
@pytest.mark.ci  # JAX is in the dev group: CI has it
def test_the_backend_agnostic_suite_passes_on_jax() -> None:
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    check = subprocess.run(
        [sys.executable, "-c", "import keras; print(keras.backend.backend())"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert check.stdout.strip() == "jax", check.stdout + check.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(SUITE.relative_to(ROOT))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    passed = re.search(r"(\d+) passed", output)
    assert passed and int(passed.group(1)) >= 25, output[-2000:]
