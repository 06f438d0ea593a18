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
import difflib
import inspect
import os
import re
from pathlib import Path
from typing import Any

import click
import yaml
from kedro.config import MissingConfigException
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.project import configure_logging
from kedro.runner import AbstractRunner
from kedro.utils import find_kedro_project, load_obj

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


class RunOptionError(UserError):
    """``--runner``, ``--runner-params``, ``--pipeline`` or a node filter that names nothing there is."""


_RUNNERS = (
    "SequentialRunner, ThreadRunner, ParallelRunner (Kedro's), or a class path such as "
    "activation_compare.runner.DaskRunner"
)


def check_runner(runner: str | None, runner_params: dict[str, Any] | None) -> None:
    """Refuse, before anything starts, a ``--runner`` or ``--runner-params`` Kedro fails on with a traceback.

    The runner's own checks of its values (the DaskRunner's ``n_workers``,
    ``address``) stay with the runner; here: a runner that does not exist, an
    option it does not take, and ``max_workers`` below 1 (Kedro's runners).
    """
    name = runner or "SequentialRunner"
    try:
        runner_class = load_obj(name, "kedro.runner")
    except Exception:  # noqa: BLE001 - any failure to import it means: no such runner
        runner_class = None
    if not (isinstance(runner_class, type) and issubclass(runner_class, AbstractRunner)):
        raise RunOptionError(f"--runner {name}: no such runner; expected {_RUNNERS}")
    params = dict(runner_params or {})
    accepted = inspect.signature(runner_class).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise RunOptionError(
                f"--runner-params {', '.join(unknown)}: not an option of {runner_class.__name__}; "
                f"expected {', '.join(accepted) or 'none'}"
            )
    workers = params.get("max_workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise RunOptionError(
            f"--runner-params max_workers = {workers!r}: expected a whole number of at least 1 "
            f"(the {runner_class.__name__}'s workers), e.g. --runner-params max_workers=2"
        )


# Kedro's errors for a --pipeline or node filter that selects nothing (kedro/framework/session/
# session.py, kedro/pipeline/pipeline.py), raised before any hook or node runs.
_NO_SUCH_PIPELINE = "Failed to find the pipeline named "
_FILTER_ERRORS = (
    "Pipeline does not contain nodes named",
    "Pipeline does not contain nodes with the following namespaces",
    "Pipeline does not contain datasets named",
)


def _registered_pipelines() -> Any:
    from kedro.framework.project import pipelines

    return pipelines


def _selection_error(error: BaseException, kwargs: dict[str, Any]) -> UserError | None:
    """Kedro's traceback for an unknown pipeline, node, namespace or dataset, as one message."""
    if not isinstance(error, ValueError):
        return None
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    name = (kwargs.get("pipelines") or ["__default__"])[0]
    describe = "kedro registry describe" + ("" if name == "__default__" else f" {name}")
    try:
        registered = _registered_pipelines()
        known = sorted(key for key in registered if key != "__default__")
        nodes = [node.name for node in registered[name].nodes] if name in registered else []
    except Exception:  # noqa: BLE001 - the registry itself failed: no list, no suggestions
        known, nodes = [], []
    if first.startswith(_NO_SUCH_PIPELINE):
        missing = first[len(_NO_SUCH_PIPELINE):].split(". ")[0].strip("'")
        return RunOptionError(
            f"--pipeline {missing}: no such pipeline; expected one of: "
            f"{', '.join(known) or '(see kedro registry list)'}"
        )
    if first.startswith("Pipeline contains no nodes after applying"):
        return RunOptionError(
            "No node of the pipeline matches the options given (--tags, --namespaces, --nodes, "
            f"--from-nodes, --to-nodes, --from-inputs, --to-outputs); {describe} lists its nodes"
        )
    if first.startswith(_FILTER_ERRORS):
        if first.startswith("Pipeline does not contain datasets named"):
            return RunOptionError(f"{first.rstrip('.')} (--from-inputs, --to-outputs)")
        asked = re.findall(r"'([^']*)'", first)
        close = [m for a in asked for m in difflib.get_close_matches(a, nodes, n=1, cutoff=0.6)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return RunOptionError(f"{first.rstrip('.')}{hint}; {describe} lists its nodes")
    return None


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
        check_runner(kwargs.get("runner"), kwargs.get("runner_params"))
        return kedro_run.callback(**kwargs)  # type: ignore[misc]
    except Exception as error:
        user_error = (
            find_user_error(error)
            or _missing_environment(error, kwargs)
            or _selection_error(error, kwargs)
        )
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
