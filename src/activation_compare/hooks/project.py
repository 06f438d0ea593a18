"""Project hooks: the run's parameters, validated once, shape the pipelines; outputs are checked first.

The run's parameters (with ``--env`` and ``--params``) are validated here, once
per Kedro context, and kept by this hook: the pipeline registry builds the
pipelines from them and the other project hooks read them from here
(``settings.py`` hands them this hook). Why a hook: Kedro calls
``register_pipelines()`` without arguments, after ``after_context_created``,
so the hook that sees the context is the one place that knows the run's
configuration before the pipelines are built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines as project_pipelines
from kedro.io.core import get_protocol_and_path

from activation_compare.errors import UserError
from activation_compare.identity import TRAIN_SET, ComparePlan
from activation_compare.params import (
    ProjectParameters,
    check_batch_size,
    check_custom_layers,
    check_subsample,
    validate_parameters,
)
from activation_compare.private_apis import (
    kedro_dataset_protocol,
    kedro_dataset_version,
    kedro_pipelines_module,
)
from activation_compare.storage import check_writable
from activation_compare.training_state.dataset import CheckpointsDataset


@dataclass(frozen=True)
class _Written:
    """Where a dataset writes on the local filesystem."""

    path: Path  # a file dataset's filepath (its versions' folder when versioned), or a checkpoint folder
    checkpoints: bool
    versioned: bool


def _written(catalog: Any, name: str) -> _Written | None:
    """Where ``name`` writes locally; None for a dataset in memory or on object storage.

    A catalog entry with a file or checkpoint path is read as configured, without
    building the dataset: building it would import its type's libraries (pandas,
    matplotlib) long before the run needs them. Other datasets (added to the
    catalog as objects, in memory) are read from the object.
    """
    config = _dataset_config(catalog, name)
    filepath = config.get("filepath")
    if _is_checkpoints(config):
        return _Written(Path(str(config["path"])), checkpoints=True, versioned=False)
    if filepath is not None:
        protocol, path = get_protocol_and_path(str(filepath))  # as the dataset would: file:// stripped
        if protocol != "file":
            return None
        return _Written(Path(path), checkpoints=False, versioned=bool(config.get("versioned")))
    try:
        dataset = catalog.get(name)
    except Exception:  # noqa: BLE001 - Kedro reports unknown datasets itself
        return None
    if isinstance(dataset, CheckpointsDataset):
        return _Written(dataset.directory, checkpoints=True, versioned=False)
    path = getattr(dataset, "_filepath", None)
    if path is None or kedro_dataset_protocol(dataset) != "file":
        return None
    return _Written(Path(str(path)), checkpoints=False, versioned=kedro_dataset_version(dataset) is not None)


def output_folders(pipeline: Any, catalog: Any) -> list[Path]:
    """Local folders a pipeline writes to: its file outputs' folders and checkpoint folders."""
    outputs = set(pipeline.all_outputs())
    folders: list[Path] = []
    for name in sorted(pipeline.datasets()):
        written = _written(catalog, name)
        if written is not None and written.checkpoints:
            folders.append(written.path)
        elif written is not None and name in outputs:
            folders.append(written.path.parent)
    return folders


class UnversionedOutputError(UserError):
    """A file from before outputs were kept per run sits where a run's versions go."""


def check_no_unversioned_leftovers(pipeline: Any, catalog: Any) -> None:
    """Refuse, before the run, a plain file where a versioned output keeps its versions.

    Earlier versions of the project wrote ``06_models/relu_seed0.keras`` as a file;
    now that path is a folder of per-run versions, and Kedro would only fail when
    the first model is saved, after the training.
    """
    leftovers = []
    for name in sorted(pipeline.all_outputs()):
        written = _written(catalog, name)
        if written is not None and written.versioned and written.path.is_file():
            leftovers.append(str(written.path))
    if leftovers:
        shown = "\n".join(f"  - {path}" for path in leftovers[:10])
        more = f"\n  … and {len(leftovers) - 10} more" if len(leftovers) > 10 else ""
        raise UnversionedOutputError(
            f"{len(leftovers)} output file(s) from an earlier version of activation-compare are in "
            f"the way of this run's outputs, which are now kept per run "
            f"(<file>/<run id>/<file>):\n{shown}{more}\n"
            "Move them out of the data folder (e.g. into data/legacy/) and run again."
        )


class EnvironmentOutputsError(UserError):
    """A configuration environment that does not name itself and its outputs' folder."""


# Kedro's base and default run environments, whose outputs are paths.outputs of conf/base.
_DEFAULT_ENVIRONMENTS = (None, "base", "local")


def check_environment_outputs(env: str | None, globals_: dict[str, Any]) -> None:
    """Refuse an ``--env`` whose globals do not name it: its outputs would go with the default's.

    Every run's files are versioned, so nothing would be overwritten, but the
    environment's results would sit in the default environment's folders and
    its figures would say ``environment: default``.
    """
    if env in _DEFAULT_ENVIRONMENTS or globals_.get("environment") == env:
        return
    outputs = (globals_.get("paths") or {}).get("outputs")
    raise EnvironmentOutputsError(
        f"--env {env}: conf/{env}/globals.yml does not name this environment "
        f"(environment: {globals_.get('environment')!r}, paths.outputs: {outputs!r}), so its "
        "outputs would go into the default environment's folders under that name. "
        f"Add to conf/{env}/globals.yml:\n"
        f"  environment: {env}\n  paths:\n    outputs: data/{env}"
    )


class NonLocalStorageError(UserError):
    """An output or checkpoint path on object storage (``s3://``, ``gs://``, ``abfs://`` …)."""


_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LOCAL_ONLY = (
    "Outputs, checkpoints and caches must be on a local or shared POSIX filesystem: the "
    "project writes them through local paths, locks checkpoint folders with flock and moves "
    "every file into place with os.replace; object storage (s3://, gs://, abfs:// …) is not "
    "supported.\nTo scale out, use a shared filesystem every worker mounts at the same path "
    "(NFS or a cluster file system), e.g. paths.outputs: /mnt/shared/activation-compare "
    "(docs/scale-out.md)."
)


def _url_scheme(value: Any) -> str | None:
    match = _URL_SCHEME.match(value) if isinstance(value, str) else None
    return match.group(1) if match else None


def check_local_paths(globals_: dict[str, Any], env: str | None = None) -> None:
    """Refuse ``paths.outputs`` or ``paths.inputs`` (caches) that is a URL, before anything runs."""
    paths = globals_.get("paths") or {}
    where = f"conf/{env}/globals.yml" if env not in _DEFAULT_ENVIRONMENTS else "globals.yml"
    for key in ("outputs", "inputs"):
        scheme = _url_scheme(paths.get(key))
        if scheme:
            raise NonLocalStorageError(
                f"paths.{key}={paths[key]!r} ({where}) is a {scheme}:// URL, not a local "
                f"path; expected a folder such as data or /mnt/shared/activation-compare.\n"
                f"{_LOCAL_ONLY}"
            )


class DataSourceSplitError(UserError):
    """A ``data.*`` value set for the parameters alone, which the catalog does not read."""


# The data values both the parameters and the catalog's raw_images need: one value,
# set in globals.yml (or --params), which both read.
SHARED_DATA_KEYS = ("source", "path", "max_images")
_RAW_IMAGES = "raw_images"


def _parameter_files(conf_source: Path, env: str) -> list[Path]:
    """An environment's parameters files (Kedro's patterns ``parameters*``, ``**/parameters*``)."""
    folder = conf_source / env
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix in (".yml", ".yaml", ".json")
        and any(part.startswith("parameters") for part in path.relative_to(folder).parts)
    )


def _sets_data_key(path: Path, key: str) -> bool:
    """Whether a parameters file gives ``data.<key>`` its own value (not the globals')."""
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # Kedro reports an unreadable file itself
    data = content.get("data") if isinstance(content, dict) else None
    if not isinstance(data, dict) or key not in data:
        return False
    value = data[key]
    return not (isinstance(value, str) and f"globals:data.{key}" in value.replace(" ", ""))


def check_data_source_agrees(config_loader: Any) -> None:
    """Refuse a ``data.source``/``path``/``max_images`` set where only the parameters read it.

    The catalog's ``raw_images`` reads these from ``--params`` or ``globals.yml``
    (a catalog cannot read parameters); ``parameters_data.yml`` reads the same
    globals. A value put in ``conf/<env>/parameters*.yml`` would reach the
    parameters (MLflow params, provenance, figures) and not the catalog: the run
    would load one source and call it another.
    """
    try:
        entry = config_loader["catalog"].get(_RAW_IMAGES)
    except Exception:  # noqa: BLE001 - Kedro reports a broken catalog itself
        return
    data = (config_loader["parameters"] or {}).get("data")
    if not isinstance(entry, dict) or not isinstance(data, dict):
        return
    conf_source = Path(str(config_loader.conf_source))
    run_env = config_loader.env or getattr(config_loader, "default_run_env", None)
    envs = [env for env in (config_loader.base_env, run_env) if env]
    for key in SHARED_DATA_KEYS:
        if key not in data or key not in entry or data[key] == entry[key]:
            continue
        files = [
            path
            for env in envs
            for path in _parameter_files(conf_source, env)
            if _sets_data_key(path, key)
        ]
        if files:  # the environment's file wins over base's, as Kedro merges them
            where = str(files[-1].relative_to(conf_source.parent))
            env = files[-1].relative_to(conf_source).parts[0]
        else:
            where, env = f"{conf_source.name}/<env>/parameters*.yml", run_env or "base"
        value = yaml.safe_dump(data[key], default_flow_style=True).strip()
        value = value.removesuffix("...").strip()
        raise DataSourceSplitError(
            f"data.{key} = {data[key]!r} is set in {where}, but the catalog's {_RAW_IMAGES} reads "
            f"data.{key} from globals.yml or --params only (there: {entry[key]!r}), so the run "
            f"would load {entry[key]!r} and report {data[key]!r}.\n"
            f"Set it in {conf_source.name}/{env}/globals.yml instead (data: {{{key}: {value}}}) or "
            f"pass --params data.{key}={value}, and remove it from {where}."
        )


def _dataset_config(catalog: Any, name: str) -> dict[str, Any]:
    """A dataset's catalog entry (patterns resolved), without building the dataset."""
    try:
        config = catalog.config_resolver.resolve_pattern(name)
    except Exception:  # noqa: BLE001 - Kedro reports unknown datasets itself
        return {}
    return config if isinstance(config, dict) else {}


def _is_checkpoints(config: dict[str, Any]) -> bool:
    """Whether a catalog entry is a model's checkpoint folder (:class:`CheckpointsDataset`)."""
    return str(config.get("type", "")).endswith(CheckpointsDataset.__name__) and "path" in config


def check_local_outputs(pipeline: Any, catalog: Any) -> None:
    """Refuse, before the run, an output or checkpoint entry whose path is a URL.

    Read from the catalog's entries, so a dataset whose filesystem package (s3fs,
    gcsfs, adlfs) is missing is refused with this message rather than an import error.
    """
    outputs = set(pipeline.all_outputs())
    remote = []
    for name in sorted(pipeline.datasets()):
        config = _dataset_config(catalog, name)
        if name not in outputs and not _is_checkpoints(config):
            continue
        for key in ("filepath", "path"):
            scheme = _url_scheme(config.get(key))
            if scheme:
                remote.append(f"  - {name}: {key}={config[key]!r} ({scheme}://)")
    if remote:
        shown = "\n".join(remote[:10])
        more = f"\n  … and {len(remote) - 10} more" if len(remote) > 10 else ""
        raise NonLocalStorageError(
            f"{len(remote)} output or checkpoint path(s) in the catalog are not local:\n"
            f"{shown}{more}\n{_LOCAL_ONLY}"
        )


def _trains_from_source(pipeline: Any) -> bool:
    """Whether the pipeline reads the image source and trains on what it makes of it."""
    datasets = pipeline.datasets()
    # only_nodes_with_inputs raises for a dataset the pipeline lacks (data_ingestion alone).
    return "raw_images" in datasets and TRAIN_SET in datasets and bool(
        pipeline.only_nodes_with_inputs(TRAIN_SET).nodes
    )


class ProjectHooks:
    """Validate the run's parameters once and shape the pipelines; fail early on unwritable outputs.

    Args:
        parameters: Already validated parameters (tools and tests that run
            without a Kedro context); a context's replace them.
    """

    def __init__(self, parameters: ProjectParameters | None = None) -> None:
        self._parameters = parameters

    @property
    def parameters(self) -> ProjectParameters | None:
        """The validated parameters of the current context (None before one exists)."""
        return self._parameters

    @property
    def plan(self) -> ComparePlan | None:
        """Every model of the current run (None before a context exists)."""
        return None if self._parameters is None else ComparePlan.from_params(self._parameters)

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # Fails fast, naming every bad parameter, before a byte of data is read.
        check_environment_outputs(context.env, context.config_loader["globals"])
        check_local_paths(context.config_loader["globals"], context.env)
        check_data_source_agrees(context.config_loader)
        self._parameters = validate_parameters(context.config_loader["parameters"])
        # Kedro caches the registered pipelines per process; a second session in
        # the same process (tests, notebooks) may have other activations or seeds.
        project_pipelines.configure(kedro_pipelines_module(project_pipelines))

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        # tryfirst: before the MLflow hook opens runs for a pipeline that cannot run.
        check_local_outputs(pipeline, catalog)
        if self._parameters is not None and "raw_images" in pipeline.datasets():
            # data.limit_* against the source's class count, before a byte is loaded.
            check_subsample(self._parameters, catalog.get("raw_images").class_count())
        if self._parameters is not None and _trains_from_source(pipeline):
            # The batch against the source's known size (CIFAR-10's 50,000, a synthetic
            # n_train, a listed folder), as the other parameter errors: before the run.
            check_batch_size(self._parameters, catalog.get("raw_images").train_images())
            # A compared {type: custom} layer imports, builds and saves (in a child process).
            check_custom_layers(self._parameters)
        check_writable(output_folders(pipeline, catalog))
        check_no_unversioned_leftovers(pipeline, catalog)
