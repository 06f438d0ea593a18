"""Every results table in README.md and docs/*.md is the one its committed summary JSON generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import test_env

ROOT = Path(__file__).resolve().parents[2]


def test_every_results_table_in_the_docs_matches_its_summary():
    """``python -m activation_compare.results --check``: exit 1 and a diff on any difference."""
    result = subprocess.run(
        [sys.executable, "-m", "activation_compare.results", "--check"],
        cwd=ROOT, capture_output=True, text=True, env=test_env(), timeout=120,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
