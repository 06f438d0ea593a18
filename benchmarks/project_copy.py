"""A runnable copy of the project (config, an empty data tree) for runs that must not touch ./data.

The benchmarks' own (the tests have theirs in tests/conftest.py). The code itself is installed in the
environment, so the copy holds only what Kedro reads from the project folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def copy_project(destination: Path, source: Path = PROJECT_ROOT) -> Path:
    """Copy ``pyproject.toml``, ``conf/`` (without ``local/``) and the empty data layers to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", ".telemetry"):
        if (source / name).exists():
            shutil.copy2(source / name, destination / name)
    # Kedro checks that the source folder exists; the code itself is installed.
    (destination / "src").mkdir(exist_ok=True)
    shutil.copytree(source / "conf", destination / "conf", ignore=shutil.ignore_patterns("local"))
    (destination / "conf" / "local").mkdir(exist_ok=True)
    for layer in sorted((source / "data").iterdir()):
        # The numbered layers only: not data/smoke or data/paper, which the
        # developer's own runs of other environments leave behind.
        if layer.is_dir() and layer.name[:2].isdigit():
            (destination / "data" / layer.name).mkdir(parents=True, exist_ok=True)
    return destination
