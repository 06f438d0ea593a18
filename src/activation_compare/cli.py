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

import os
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run

from activation_compare.errors import find_user_error

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


@click.group(name="activation-compare")
def cli() -> None:
    """Commands of the activation-compare project (they replace Kedro's of the same name)."""


def _run(verbose: bool, **kwargs: Any) -> Any:
    # `--pipeline NAME`, the project's documented form, is handed to Kedro as the
    # `--pipelines NAME` it prefers: Kedro 1.5+ warns that `--pipeline` is deprecated.
    if kwargs.get("pipeline") and not kwargs.get("pipelines"):
        kwargs["pipelines"], kwargs["pipeline"] = [kwargs["pipeline"]], None
    try:
        return kedro_run.callback(**kwargs)  # type: ignore[misc]
    except Exception as error:
        user_error = find_user_error(error)
        if user_error is None or wants_traceback(verbose):
            raise
        click.echo(user_error_block(user_error), err=True)
        raise SystemExit(EXIT_USER_ERROR) from None


run = click.Command(
    name="run",
    callback=_run,
    params=[
        *kedro_run.params,
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
