"""The project's ``kedro run``: Kedro's own, with the errors a user can fix shown plainly.

Kedro loads ``<package>.cli`` and lets its commands replace the built-in ones
of the same name (``kedro/framework/cli/cli.py``, "built-in < plugins <
cli.py"). This ``run`` takes exactly Kedro's options, plus ``--verbose``, and
calls Kedro's own ``run``. When the run fails with a
:class:`~activation_compare.errors.UserError` (a bad parameter, a corrupt or
hostile data file, a failed download, a full disk, a diverging loss), possibly
wrapped by Kedro in one of its own errors, it prints that error's message as
one short block and exits with status 1, without a traceback. Any other error
is a bug and keeps its traceback. ``--verbose`` (``-v``) or
``ACTIVATION_COMPARE_TRACEBACK=1`` shows the traceback of user errors too.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import click
import yaml
from kedro.config import MissingConfigException
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import configure_logging
from kedro.utils import find_kedro_project

from activation_compare.errors import UserError, find_user_error

TRACEBACK_VARIABLE = "ACTIVATION_COMPARE_TRACEBACK"
EXIT_USER_ERROR = 1


def wants_traceback(verbose: bool) -> bool:
    """Whether the user asked for tracebacks (``--verbose`` or the environment variable)."""
    return verbose or os.environ.get(TRACEBACK_VARIABLE, "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
    )


def user_error_block(error: BaseException) -> str:
    """The few lines ``kedro run`` prints for a user error: the message and how to see more."""
    return (
        f"Error: {error}\n"
        f"(No traceback for this error: it is in the run's input, not in the code. "
        f"Add --verbose or set {TRACEBACK_VARIABLE}=1 to see one.)"
    )


class EnvironmentNotFoundError(UserError):
    """``--env`` (or ``KEDRO_ENV``) names no folder of the configuration."""


def _missing_environment(error: BaseException, kwargs: dict[str, Any]) -> UserError | None:
    """Kedro's "configuration path does not exist" for an ``--env``, as one message."""
    env = kwargs.get("env") or os.environ.get("KEDRO_ENV")
    if not env or not isinstance(error, MissingConfigException):
        return None
    if "Given configuration path either does not exist" not in str(error):
        return None
    conf = Path(kwargs.get("conf_source") or "conf")
    try:
        known = sorted(p.name for p in conf.iterdir() if p.is_dir() and p.name != "base")
    except OSError:
        known = []
    return EnvironmentNotFoundError(
        f"--env {env}: there is no configuration folder {conf / str(env)}; expected one of "
        f"the environments in {conf}/: {', '.join(known) or '(none)'}, or none for the default"
    )


def _plain_values(option: click.Parameter) -> click.Parameter:
    """``option`` (--params, --runner-params) refusing YAML tags and aliases in one line."""
    parse = option.callback
    if parse is None:
        return option

    def parse_plain(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return parse(ctx, param, value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise click.BadParameter(
                f"{value!r}: {problem}. YAML tags (!!python/…, !tag) and aliases (*name, "
                "&name) are not allowed; expected plain values, e.g. "
                "'training.epochs=3,data.path=images'"
            ) from None

    plain = copy.copy(option)
    plain.callback = parse_plain
    return plain


@click.group(name="activation-compare")
def cli() -> None:
    """Commands of the activation-compare project (they replace Kedro's of the same name)."""


LOGGING_CONFIG_VARIABLE = "KEDRO_LOGGING_CONFIG"
_LOGGING_FILES = ("conf/logging.yml", "conf/logging.yaml")


def use_project_logging(cwd: Path) -> Path | None:
    """From a subfolder of the project, the project's ``conf/logging.yml``; returns the file used.

    Kedro finds the project from a subfolder (``cd conf && kedro run``) and
    resolves the catalog's and MLflow's paths against its root, but reads
    ``conf/logging.yml`` relative to the current directory: from a subfolder it
    fell back to its own logging (every dataset load and save, ~380 lines for
    a smoke run instead of ~30). ``KEDRO_LOGGING_CONFIG`` still wins. (Kedro's
    one line naming the logging file it chose is printed before this runs.)
    """
    if os.environ.get(LOGGING_CONFIG_VARIABLE) or any((cwd / f).is_file() for f in _LOGGING_FILES):
        return None  # Kedro already used it
    project = find_kedro_project(cwd)
    if project is None:
        return None
    for name in _LOGGING_FILES:
        path = Path(project) / name
        if path.is_file():
            configure_logging(yaml.safe_load(path.read_text(encoding="utf-8")))
            return path
    return None


def _run(verbose: bool, **kwargs: Any) -> Any:
    use_project_logging(Path.cwd())
    # `--pipeline NAME`, the project's documented form, is handed to Kedro as the
    # `--pipelines NAME` it prefers: Kedro 1.5+ warns that `--pipeline` is deprecated.
    if kwargs.get("pipeline") and not kwargs.get("pipelines"):
        kwargs["pipelines"], kwargs["pipeline"] = [kwargs["pipeline"]], None
    try:
        return kedro_run.callback(**kwargs)  # type: ignore[misc]
    except Exception as error:
        user_error = find_user_error(error) or _missing_environment(error, kwargs)
        if user_error is None or wants_traceback(verbose):
            raise
        click.echo(user_error_block(user_error), err=True)
        raise SystemExit(EXIT_USER_ERROR) from None


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *(
            _plain_values(option) if option.name in ("params", "runner_params") else option
            for option in kedro_run.params
        ),
        click.Option(
            ["--verbose", "-v"],
            is_flag=True,
            default=False,
            help=(
                "Show the full traceback when the run fails because of its input "
                f"(parameters, data, disk); also {TRACEBACK_VARIABLE}=1."
            ),
        ),
    ],
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
