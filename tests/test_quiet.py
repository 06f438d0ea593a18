"""Quiet start-up: what is hidden, and when the user's choice wins."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from activation_compare import quiet


def test_stderr_silenced_hides_what_c_code_writes_to_fd_2(capfd) -> None:  # type: ignore[no-untyped-def]
    with quiet.stderr_silenced():
        os.write(2, b"C++ chatter\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def _startup(env: dict[str, str]) -> subprocess.CompletedProcess:
    script = (
        "import os, sys; from activation_compare import quiet\n"
        "sys.modules.pop('tensorflow', None)\n"
        "changed = quiet.quiet_tensorflow_startup()\n"
        "print(changed, os.environ.get('TF_CPP_MIN_LOG_LEVEL'))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_the_users_own_log_level_wins() -> None:
    env = {**os.environ, quiet.LOG_LEVEL_VARIABLE: "0"}
    assert _startup(env).stdout.split() == ["False", "0"]


def test_a_level_the_user_changed_after_the_package_set_it_wins() -> None:
    env = {**os.environ, quiet.LOG_LEVEL_VARIABLE: "1", quiet._SET_BY_US: "3"}
    assert _startup(env).stdout.split() == ["False", "1"]


def test_without_a_gpu_the_level_is_set_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if quiet.has_gpu_device():
        env = {k: v for k, v in os.environ.items() if k != quiet.LOG_LEVEL_VARIABLE}
        assert _startup(env).stdout.split() == ["False", "None"]
        return
    # The package's own import already did it, in a process without the variable.
    env = {k: v for k, v in os.environ.items() if k != quiet.LOG_LEVEL_VARIABLE}
    assert _startup(env).stdout.split() == ["False", "3"]


def test_has_gpu_device_looks_for_driver_files(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(quiet, "_GPU_DEVICE_FILES", ("/nonexistent/nvidiactl",))
    assert not quiet.has_gpu_device()
    monkeypatch.setattr(quiet, "_GPU_DEVICE_FILES", (os.devnull,))
    assert quiet.has_gpu_device()


@pytest.mark.ci  # CI machines have no GPU: the quiet start must be checked there
def test_a_process_started_by_a_quieted_one_imports_tensorflow_quietly() -> None:
    """A LocalCluster's Dask workers inherit the variable the driver's import set: still quiet."""
    if quiet.has_gpu_device():
        pytest.skip("TensorFlow's start-up lines are kept where a GPU driver is loaded")
    env = {k: v for k, v in os.environ.items() if k not in (quiet.LOG_LEVEL_VARIABLE, quiet._SET_BY_US)}
    child = "import activation_compare, tensorflow; print('imported')"
    parent = (
        "import os, subprocess, sys; import activation_compare\n"
        f"sys.exit(subprocess.run([sys.executable, '-c', {child!r}]).returncode)\n"
    )
    result = subprocess.run([sys.executable, "-c", parent], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and result.stdout.strip() == "imported", result.stderr[-2000:]
    assert "oneDNN" not in result.stderr and "cuda" not in result.stderr.lower(), result.stderr[-2000:]
