"""The original code's own stack, built once with uv: Python 3.11, TF 2.15.1, TF Addons 0.23.0.

The environment lives outside the repository (``~/.cache/activation-compare/
baseline-tf215`` unless ``--baseline-env`` says otherwise) and is reused while
its marker file names the same requirements. A half-built environment never
gets the marker, so the next run builds it again instead of using it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

REQUIREMENTS = ("tensorflow==2.15.1", "tensorflow-addons==0.23.0", "numpy<2")
PYTHON = "3.11"
DEFAULT_DIR = Path.home() / ".cache" / "activation-compare" / "baseline-tf215"
MARKER = "activation-compare-baseline.json"
_CHECK = "import tensorflow as tf, tensorflow_addons as tfa, numpy; print(tf.__version__, tfa.__version__, numpy.__version__)"


def _uv() -> list[str]:
    """The uv command: on PATH, else the module of this or the system Python."""
    if shutil.which("uv"):
        return ["uv"]
    for python in (sys.executable, shutil.which("python3")):
        if python and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "uv"]
    raise RuntimeError("uv is needed to build the baseline environment: python3 -m pip install uv")


def _versions(python: Path) -> str | None:
    done = subprocess.run([str(python), "-c", _CHECK], capture_output=True, text=True,
                          env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    return done.stdout.strip() if done.returncode == 0 else None


def ensure(directory: Path = DEFAULT_DIR, log: Callable[[str], None] = print) -> Path:
    """The baseline environment's Python, building the environment first if needed."""
    python = directory / "bin" / "python"
    marker = directory / MARKER
    wanted = {"python": PYTHON, "requirements": list(REQUIREMENTS)}
    if marker.is_file() and json.loads(marker.read_text()).get("wanted") == wanted and python.exists():
        return python
    if python.exists() and (versions := _versions(python)):  # complete but unmarked: keep it
        marker.write_text(json.dumps({"wanted": wanted, "versions": versions}))
        return python
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    log(f"  building the baseline environment in {directory} (uv, about 600 MB to download)")
    uv = _uv()
    subprocess.run([*uv, "venv", "--python", PYTHON, str(partial)], check=True)
    subprocess.run([*uv, "pip", "install", "--python", str(partial / "bin" / "python"), *REQUIREMENTS], check=True)
    versions = _versions(partial / "bin" / "python")
    if not versions:
        raise RuntimeError(f"the baseline environment in {partial} does not import TensorFlow Addons")
    shutil.rmtree(directory, ignore_errors=True)
    partial.rename(directory)  # venvs hold absolute paths: check it still imports after the move
    if not _versions(python):
        raise RuntimeError(f"the baseline environment in {directory} broke when moved from {partial}")
    marker.write_text(json.dumps({"wanted": wanted, "versions": versions}))
    return python
