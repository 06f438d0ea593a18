"""The project's ``kedro run``: user errors as one short block, quiet logs.

The unit tests call the command's wrapper with Kedro's run replaced; the slow
ones start the real ``kedro`` CLI in a copy of the project.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import KEDRO, copy_project, test_env
from kedro.io import DatasetError

from activation_compare import cli
from activation_compare.datasets import ChecksumError
from activation_compare.errors import UserError, find_user_error
from activation_compare.params import InvalidParametersError
from activation_compare.quiet import LOG_LEVEL_VARIABLE


# --- the wrapper -------------------------------------------------------------------


def _fail_with(monkeypatch, error: BaseException) -> None:  # type: ignore[no-untyped-def]
    def run(**kwargs):  # type: ignore[no-untyped-def]
        raise error

    monkeypatch.setattr(cli.kedro_run, "callback", run)


def test_find_user_error_follows_the_causes() -> None:
    cause = ChecksumError("archive x has the wrong MD5")
    try:
        try:
            raise cause
        except ChecksumError as exc:
            raise DatasetError("Failed while loading data from dataset raw_images") from exc
    except DatasetError as wrapped:
        assert find_user_error(wrapped) is cause
    assert find_user_error(RuntimeError("a bug")) is None


def test_a_user_error_exits_1_with_its_message_only(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    wrapped = DatasetError("An exception occurred when parsing config for dataset 'raw_images'")
    wrapped.__cause__ = InvalidParametersError("Invalid parameters (1):\n  - training.epochs = 0")
    _fail_with(monkeypatch, wrapped)
    with pytest.raises(SystemExit) as info:
        cli._run(verbose=False)
    assert info.value.code == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("Error: Invalid parameters (1):\n  - training.epochs = 0\n")
    assert "Traceback" not in err and "raw_images" not in err
    assert "--verbose" in err and cli.TRACEBACK_VARIABLE in err


@pytest.mark.parametrize(("verbose", "variable"), [(True, None), (False, "1")])
def test_the_traceback_when_asked_for(monkeypatch, verbose, variable) -> None:  # type: ignore[no-untyped-def]
    if variable is None:
        monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(cli.TRACEBACK_VARIABLE, variable)
    _fail_with(monkeypatch, ChecksumError("bad MD5"))
    with pytest.raises(ChecksumError):
        cli._run(verbose=verbose)


def test_other_errors_keep_their_traceback(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(cli.TRACEBACK_VARIABLE, raising=False)
    _fail_with(monkeypatch, KeyError("a bug"))
    with pytest.raises(KeyError):
        cli._run(verbose=False)


def test_run_takes_every_option_of_kedros_run_and_verbose() -> None:
    ours = {option.name for option in cli.run.params}
    assert {option.name for option in cli.kedro_run.params} | {"verbose"} == ours


def test_the_project_errors_are_user_errors() -> None:
    from activation_compare.datasets import DataSourceError, DownloadError
    from activation_compare.divergence import LossDivergedError
    from activation_compare.storage import StorageError

    from activation_compare.hooks.project import EnvironmentOutputsError

    for error in (
        InvalidParametersError, DataSourceError, DownloadError, StorageError, LossDivergedError,
        EnvironmentOutputsError,
    ):
        assert issubclass(error, UserError), error


# --- the real CLI --------------------------------------------------------------------


def _kedro(project, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
    run_env = test_env()
    # The user's own choices, which these tests are about, are not inherited
    # (test_env drops cli.TRACEBACK_VARIABLE with the other ACTIVATION_COMPARE_* settings).
    run_env.pop(LOG_LEVEL_VARIABLE, None)
    run_env.update(env or {})
    return subprocess.run(
        [KEDRO, "run", *args], cwd=project, env=run_env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_a_parameter_typo_is_a_few_lines_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = copy_project(tmp_path / "project")
    result = _kedro(project, "--env", "smoke", "--params", "training.epoch=3")
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USER_ERROR, output
    assert "Traceback" not in output
    assert "training.epoch: unknown parameter; did you mean training.epochs?" in result.stderr
    assert len(output.strip().splitlines()) <= 6, output
    verbose = _kedro(project, "--env", "smoke", "--params", "training.epoch=3", "--verbose")
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr


@pytest.mark.slow
def test_an_environment_that_does_not_name_its_outputs_is_refused_with_the_lines_to_add(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = copy_project(tmp_path / "project")
    (project / "conf" / "quick").mkdir()
    (project / "conf" / "quick" / "parameters.yml").write_text("training:\n  epochs: 1\n")
    result = _kedro(project, "--env", "quick", "--pipeline", "compare")
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USER_ERROR, output
    assert "Traceback" not in output
    assert "--env quick: conf/quick/globals.yml does not name this environment" in result.stderr
    assert "environment: quick" in result.stderr and "outputs: data/quick" in result.stderr
    assert not (project / "data" / "01_raw").exists() or not any((project / "data" / "01_raw").iterdir())
    (project / "conf" / "quick" / "globals.yml").write_text(
        "data:\n  source: synthetic\npaths:\n  outputs: data/quick\nenvironment: quick\n"
    )
    fixed = _kedro(project, "--env", "quick", "--pipeline", "data_processing")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr


@pytest.mark.slow
def test_a_corrupt_archive_is_one_message_without_traceback(tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = copy_project(tmp_path / "project")
    archive = tmp_path / "images.tar.gz"
    archive.write_bytes(b"this is not a gzip file")
    result = _kedro(
        project,
        "--pipelines",
        "data_ingestion",
        "--params",
        f"data.source=image_folder,data.path={archive}",
    )
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USER_ERROR, output
    assert "Traceback" not in output
    assert re.search(rf"Error: .*{re.escape(str(archive))}.* corrupt or truncated", result.stderr)


@pytest.mark.slow
@pytest.mark.ci  # CI machines have no GPU: the quiet start must be checked there
def test_a_smoke_run_is_quiet(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No TensorFlow C++ start-up lines, no cuInit, no project warnings, one line per epoch;
    `--pipeline` without Kedro's deprecation warning; the run ends with its verdict and paths."""
    if any(os.path.exists(path) for path in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        pytest.skip("a GPU machine: TensorFlow's device messages are kept there")
    project = copy_project(tmp_path / "project")
    result = _kedro(project, "--env", "smoke", "--pipeline=compare", "--params", "training.seeds=5")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "deprecated" not in output.lower(), output
    # The last lines: the verdict, this run's files (as paths from the project), the MLflow link.
    tail = output.strip().splitlines()[-6:]
    assert "Result: rrelu − relu = " in tail[0] and "from a single seed" in tail[0], tail
    shown = dict(line.split(maxsplit=3)[2:] for line in tail[1:])
    assert list(shown) == ["report:", "curves:", "summary:", "table:", "MLflow:"], tail
    report = project / shown["report:"]
    assert report.is_file() and report.name == "comparison.md" and report.parent.parent.name == "comparison.md"
    assert "rrelu − relu" in report.read_text()
    assert shown["MLflow:"].startswith("http://127.0.0.1:5000/#/experiments/"), tail
    for chatter in ("cuInit", "absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard", "cuda"):
        assert chatter not in output, chatter
    assert not re.search(r"^[IWE]\d{4} ", output, re.MULTILINE), output  # C++ log lines
    assert "Loading data from" not in output and "Saving data to" not in output
    assert "as logging configuration" not in output
    assert "UserWarning" not in output and "Traceback" not in output
    # Warnings from the project's own code: its loggers and its source files.
    assert not re.search(r"WARNING .*activation_compare", output), output
    # One line per epoch: the progress hook's, and no Keras progress line.
    for activation in ("relu", "rrelu"):
        for epoch in (1, 2):
            lines = [
                line for line in output.splitlines()
                if f"({activation}, seed 5): epoch {epoch}/2" in line
            ]
            assert len(lines) == 1, output
    assert "val_accuracy:" not in output and "step - " not in output, output


@pytest.mark.slow
def test_a_batch_larger_than_the_data_is_refused_before_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 15.3: the smoke source has 600 training images; nothing may run or be recorded."""
    project = copy_project(tmp_path / "project")
    result = _kedro(project, "--env", "smoke", "--params", "training.batch_size=601")
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USER_ERROR, output
    assert "training.batch_size = 601: larger than the 600 images the run trains on" in result.stderr
    assert "Traceback" not in output and "Running node" not in output, output
    assert not any(path.is_file() for path in (project / "data").rglob("*")), output


def test_seeds_out_of_range_and_a_boolean_epoch_count_are_refused_before_the_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Issue 22.3: they passed validation and crashed half a minute later with a parent run left FAILED."""
    project = copy_project(tmp_path / "project")
    params = "training.seeds=-1 4294967296 100000000000000000000000,data.split_seed=-5,training.epochs=true"
    result = _kedro(project, "--env", "smoke", "--pipeline=compare", "--params", params)
    output = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USER_ERROR, output
    assert "Invalid parameters (5):" in result.stderr, output
    for line in (
        "data.split_seed = -5: a seed must be from 0 to 4294967295 (2**32 - 1)",
        "training.epochs = True: Input should be an integer, not true or false",
        "training.seeds.0 = -1: a seed must be from 0 to 4294967295 (2**32 - 1)",
        "training.seeds.1 = 4294967296: a seed must be",
        "training.seeds.2 = 100000000000000000000000: a seed must be",
    ):
        assert line in result.stderr, output
    assert "Traceback" not in output and "Running node" not in output, output
    assert not (project / "mlflow.db").exists(), output
