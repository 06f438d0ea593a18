"""The ``ci`` marker: in CI a marked test that skips fails, so coverage does not depend on the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_ROOT

PROBE = '''
import pytest

@pytest.mark.ci
def test_marked():
    pytest.skip("no mounts here")

def test_unmarked():
    pytest.skip("fine anywhere")
'''


@pytest.mark.parametrize(("ci", "expected"), [("true", "1 failed, 1 skipped"), ("", "2 skipped")])
def test_a_marked_skip_fails_only_in_ci(tmp_path: Path, ci: str, expected: str) -> None:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {
        **os.environ,
        "CI": ci,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "tests"), str(PROJECT_ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "-o", "markers=ci: probe", str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert expected in result.stdout, result.stdout + result.stderr
    if ci:
        assert "test_marked must run in CI, but it skipped: Skipped: no mounts here" in result.stdout
