"""Where a run's results come from: its Kedro environment, outputs folder, git commit and date.

The reporting nodes put this on every figure and in the comparison (README,
"Look at the results"), so they take it as an input, like any data: the
catalog entry ``run_provenance`` names the environment and the outputs folder
from the environment's ``globals.yml``; the commit and date are read here, so
the nodes stay pure functions of their inputs.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from .errors import ReadOnlyDatasetError


def _git(project_path: Path, *args: str) -> str | None:
    """What ``git <args>`` prints in the project; None outside a git checkout or without git."""
    try:
        result = subprocess.run(
            ["git", *args], cwd=project_path, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_commit(project_path: Path) -> str | None:
    """The commit checked out in the project's git repository; None outside one."""
    commit = _git(project_path, "rev-parse", "HEAD")
    return commit if commit and re.fullmatch(r"[0-9a-f]{40,64}", commit) else None


def has_local_changes(project_path: Path) -> bool | None:
    """Whether tracked files differ from the commit (the results may not match it); None outside git."""
    status = _git(project_path, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """This machine's CPU: its model name and whether it computes bfloat16 natively (AVX512_BF16, AMX).

    Read from Linux' ``/proc/cpuinfo``; elsewhere the model is the platform's
    processor name and the flags are unknown (None).
    """
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return {"model": platform.processor() or None, "avx512_bf16": None, "amx_bf16": None, "bfloat16": None}
    model, flags = None, set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name" and model is None:
            model = value.strip()
        elif name.strip() == "flags" and not flags:
            flags = set(value.split())
    avx, amx = "avx512_bf16" in flags, "amx_bf16" in flags
    return {"model": model, "avx512_bf16": avx, "amx_bf16": amx, "bfloat16": avx or amx}


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (runnable processes); None where the system has none."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


class RunProvenanceDataset(AbstractDataset[None, dict[str, Any]]):
    """Read-only: the environment, outputs folder, git commit, date and CPU of the run that loads it.

    Args:
        environment: The Kedro environment's name (``globals.yml``: ``environment``).
        outputs: The environment's outputs folder (``globals.yml``: ``paths.outputs``).
        project_path: The git checkout whose commit is recorded (default: the
            working directory, which Kedro sets to the project root).

    The commit is read when the dataset is created, which the project hook
    does before the run starts (it checks every dataset's folder), so a commit
    made while a long run trains is not mistaken for the code that ran. The
    date is the first load's (UTC, to the minute), kept for the life of the
    dataset, so every figure of one run carries the same one.
    """

    def __init__(self, environment: str, outputs: str, project_path: str = ".") -> None:
        self._environment = str(environment)
        self._outputs = str(outputs)
        project = Path(project_path)
        self._git = {"git_commit": git_commit(project), "git_local_changes": has_local_changes(project)}
        self._loaded: dict[str, Any] | None = None

    def _describe(self) -> dict[str, Any]:
        return {"environment": self._environment, "outputs": self._outputs}

    def _exists(self) -> bool:
        return True

    def save(self, data: dict[str, Any]) -> None:
        raise ReadOnlyDatasetError(f"{type(self).__name__} is read-only: it describes the run")

    def load(self) -> dict[str, Any]:
        if self._loaded is None:
            self._loaded = {
                "environment": self._environment,
                "outputs": self._outputs,
                **self._git,
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "cpu": cpu_description(),
            }
        # The machine's load as this is read (1, 5, 15 minutes): what else ran beside the run.
        return {**self._loaded, "load_average": load_average()}
