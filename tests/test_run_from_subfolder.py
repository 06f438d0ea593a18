"""``kedro run`` from a subfolder of the project logs as from its root (issue 22, item 9).

Kedro finds the project from a subfolder (``cd conf && kedro run``) but reads
``conf/logging.yml`` relative to the current directory, so it fell back to its
own logging: every dataset load and save and every node, ~380 lines for a
smoke compare instead of ~30. The project's ``kedro run`` uses the project's
logging file; only Kedro's line naming the file it chose (printed before any
project code runs) is left over.
"""

from __future__ import annotations

from pathlib import Path

from conftest import kedro_cli

# Kedro's "Using '…/rich_logging.yml' as logging configuration." wrapped by its rich handler.
KEDRO_S_FIRST_LINE = 5


def test_a_run_from_a_subfolder_uses_the_project_logging(project_copy: Path) -> None:
    args = ("run", "--env", "smoke", "--pipeline", "data_ingestion")
    from_root = kedro_cli(project_copy, *args, timeout=300)
    from_conf = kedro_cli(project_copy / "conf", *args, timeout=300)
    assert from_root.returncode == 0, from_root.stderr[-3000:]
    assert from_conf.returncode == 0, from_conf.stderr[-3000:]
    root_lines = (from_root.stdout + from_root.stderr).strip().splitlines()
    conf_output = from_conf.stdout + from_conf.stderr
    # Hidden by conf/logging.yml: dataset loads and saves, node bookkeeping.
    assert "Loading data from" not in conf_output, conf_output[-3000:]
    assert "Completed 1 out of 1 tasks" not in conf_output, conf_output[-3000:]
    assert len(conf_output.strip().splitlines()) <= len(root_lines) + KEDRO_S_FIRST_LINE, conf_output
    # The project's own lines, in its plain format.
    assert "INFO    Ingested synthetic images" in conf_output, conf_output[-3000:]


def test_logging_config_variable_still_wins(project_copy: Path) -> None:
    """KEDRO_LOGGING_CONFIG names the file Kedro uses, from any folder."""
    quiet = project_copy / "quiet_logging.yml"
    quiet.write_text("version: 1\ndisable_existing_loggers: false\nroot:\n  level: ERROR\n")
    result = kedro_cli(
        project_copy / "conf",
        "run", "--env", "smoke", "--pipeline", "data_ingestion",
        env={"KEDRO_LOGGING_CONFIG": str(quiet)},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Ingested synthetic images" not in result.stdout + result.stderr
