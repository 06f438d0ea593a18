"""Quiet start-up: TensorFlow's C++ chatter hidden on machines without a GPU.

Importing TensorFlow prints, straight to the process's stderr (file descriptor
2, not through Python), a block of C++ log lines: that oneDNN is on, that no
CUDA driver was found, which CPU instructions it could use, and later a
``failed call to cuInit`` error on a machine without a GPU. None of it is
actionable there, and it hides the run's own progress lines.

On a machine without a GPU device, and only when the user has not set
``TF_CPP_MIN_LOG_LEVEL`` themselves, :func:`quiet_tensorflow_startup` sets it to
3 (what TensorFlow logs from C++ after start-up, cuInit included) and silences
file descriptor 2 while the ``tensorflow`` package itself is first imported
(the lines logged before TensorFlow initialises its logging ignore that
variable). Python errors raised by that import are unaffected; anything else
written to stderr during those seconds is dropped. Where a GPU device exists,
or the variable is set, nothing changes: TensorFlow then says which devices it
found, as it normally does.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

LOG_LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
# The level this module set, beside it: a child process that inherits both equal
# knows the level is not the user's (a user who changes it makes them differ).
_SET_BY_US = "ACTIVATION_COMPARE_QUIETED_TENSORFLOW"
# Device files that exist where a GPU driver is loaded: NVIDIA, AMD ROCm, WSL.
_GPU_DEVICE_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia/version", "/dev/kfd", "/dev/dxg")


def has_gpu_device() -> bool:
    """Whether this machine exposes a GPU driver (checked without importing TensorFlow)."""
    return any(os.path.exists(path) for path in _GPU_DEVICE_FILES)


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 (C and C++ code's stderr as well as Python's) to /dev/null."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _SilencedLoader:
    """A loader that runs the real one's ``exec_module`` with stderr silenced."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def __getattr__(self, name: str) -> Any:  # resource readers and the like
        return getattr(self._loader, name)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with stderr_silenced():
            self._loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual, once, and wraps its loader; then steps aside."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        with contextlib.suppress(ValueError):
            sys.meta_path.remove(self)  # one import only
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _SilencedLoader(spec.loader)  # type: ignore[assignment]
        return spec


def quiet_tensorflow_startup() -> bool:
    """Hide TensorFlow's start-up chatter if there is no GPU and the user did not choose.

    Call before TensorFlow is imported. Returns whether anything was changed.
    A process started by one where this set the level (a LocalCluster's Dask
    worker) inherits the variable with the marker beside it, and is quieted too.
    """
    chosen_by_user = LOG_LEVEL_VARIABLE in os.environ and os.environ.get(_SET_BY_US) != os.environ[LOG_LEVEL_VARIABLE]
    if chosen_by_user or "tensorflow" in sys.modules or has_gpu_device():
        return False
    if any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path):
        return False  # done already in this process
    os.environ[LOG_LEVEL_VARIABLE] = os.environ[_SET_BY_US] = "3"
    sys.meta_path.insert(0, _QuietTensorFlowImport())
    return True


def hide_known_library_warnings() -> None:
    """Ignore upstream deprecation warnings that every run would print and no user can act on.

    Kedro 1.7's config loader still calls OmegaConf's ``register_new_resolver``,
    which newer OmegaConf releases deprecate: two warnings per config loader,
    about Kedro's code, not this project's.
    """
    warnings.filterwarnings(
        "ignore",
        message=r"register_new_resolver\(\) is deprecated",
        category=UserWarning,
        module=r"kedro\.config\.",
    )
