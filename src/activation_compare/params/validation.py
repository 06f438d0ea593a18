"""Checking a parameter tree: one message listing every problem, and checks against the data's size.

The messages name the parameter, the value and what is allowed, and suggest the
right name for a misspelt one (from the schema's own names).
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from typing import Any

from pydantic import BaseModel, ValidationError

from activation_compare.errors import UserError

from .activations import KERAS_ACTIVATIONS, SENTENCE_ERRORS, CustomSpec
from .schema import ACTIVATION_SPECS, ACTIVATION_TYPES, DataParams, ProjectParameters, Protocol

_WHERE_PARAMETERS_LIVE = (
    "Parameters live in conf/<env>/parameters*.yml and can be overridden with "
    "kedro run --params 'key=value'."
)


class InvalidParametersError(UserError, ValueError):
    """Raised with one line per problem: the parameter, the value, what is allowed."""


def _location(loc: tuple[Any, ...]) -> str:
    """The dotted parameter name of a pydantic error location.

    Drops the discriminator tag pydantic adds inside ``activations.<name>``
    (``('activations', 'rrelu', 'rrelu', 'lower')`` is ``activations.rrelu.lower``).
    """
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "activations" and parts[2] in ACTIVATION_TYPES:
        del parts[2]
    return ".".join(str(part) for part in parts)


def _schema_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted parameter name the schema declares (activations by their type's fields)."""
    paths = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.append(path)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths.extend(_schema_paths(annotation, f"{path}."))
    return paths


_ACTIVATION_SPECS = tuple(ACTIVATION_SPECS.values())


def _suggestion(location: str) -> str:
    """' — did you mean x.y?' for a misspelt parameter, from the schema's names."""
    candidates = _schema_paths(ProjectParameters)
    parts = location.split(".")
    if parts[0] == "activations" and len(parts) >= 3:
        # activations.<name>.<option>: the options of every activation type.
        head = ".".join(parts[:2])
        candidates = [
            f"{head}.{field}" for spec in _ACTIVATION_SPECS for field in spec.model_fields
        ]
    leaf = parts[-1]
    # A right name in the wrong place of its section (training.learning_rate) first:
    # a similar name of another section (tuning.learning_rates) is a worse guess.
    close = [p for p in candidates if p.split(".")[0] == parts[0] and p.split(".")[-1] == leaf][:1]
    close = close or difflib.get_close_matches(location, candidates, n=1, cutoff=0.6)
    if not close:  # a right name in the wrong section
        close = [path for path in candidates if path.split(".")[-1] == leaf][:1]
    return f"; did you mean {close[0]}?" if close else ""


def _describe_error(error: dict[str, Any]) -> str:
    location = _location(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown parameter{_suggestion(location) or ' (is it misspelt?)'}"
    # Our own validators' messages already name the parameter and the value.
    message = error["msg"].removeprefix("Value error, ")
    if not location:
        return message
    value = error.get("input")
    if error["type"] in SENTENCE_ERRORS:  # activations.x.name='gelux' is not a Keras activation; …
        return f"{location}={value!r} {message}"
    if error["type"] == "union_tag_invalid":  # an activation's unknown type
        return _unknown_activation_type(location, error.get("ctx", {}).get("tag"))
    shown = "" if isinstance(value, dict) else f" = {value!r}"
    return f"{location}{shown}: {message}"


def _unknown_activation_type(location: str, tag: Any) -> str:
    """``activations.<name>: type='gelu' …``: the types, and the Keras entry a Keras name needs."""
    text = f"{location}: type={tag!r} is not an activation type; expected one of {', '.join(map(repr, ACTIVATION_TYPES))}"
    if isinstance(tag, str) and tag in KERAS_ACTIVATIONS:
        return f"{text}; for Keras' own, write {{type: keras, name: {tag}}}"
    close = difflib.get_close_matches(str(tag), ACTIVATION_TYPES, n=1, cutoff=0.6)
    return f"{text}; did you mean {close[0]!r}?" if close else text


def check_custom_layers(params: ProjectParameters, *, timeout: float = 600) -> None:
    """Refuse, before training, a compared custom layer that cannot be imported, built or saved.

    For each compared ``{type: custom}`` activation: its module imports, the
    class exists, is a ``keras.layers.Layer`` registered with
    ``keras.saving.register_keras_serializable``, its constructor accepts the
    entry's arguments, and the layer runs and survives a ``get_config`` round
    trip (:func:`activation_compare.layers.custom.layer_problem`). Checked in a
    child process with this one's import path: importing the layer imports
    TensorFlow, which the process that validates the parameters must not
    (ParallelRunner forks its workers from it). Costs one TensorFlow import,
    only when a custom layer is compared.

    Raises:
        InvalidParametersError: one line per custom layer that fails, naming
            ``activations.<name>.layer``, the import path and what is wrong.
    """
    custom = {
        name: spec
        for name in params.compare.activations
        if isinstance(spec := params.activations.get(name), CustomSpec)
    }
    if not custom:
        return
    request = json.dumps({name: {"layer": spec.layer, "kwargs": spec.kwargs} for name, spec in custom.items()})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "activation_compare.layers.custom"],
        input=request, capture_output=True, text=True, env=env, timeout=timeout, check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        found = {name: f"could not be checked: the checking process failed ({last})" for name in custom}
    else:
        found = json.loads(lines[-1])
    problems = [
        f"  - activations.{name}.layer={custom[name].layer!r} {problem}"
        for name, problem in found.items()
        if problem
    ]
    if problems:
        raise InvalidParametersError(
            f"Invalid parameters ({len(problems)}):\n" + "\n".join(problems) + "\n"
            "A custom layer must be importable (in the project's src/ folder or installed), "
            "a keras.layers.Layer subclass registered with "
            "@keras.saving.register_keras_serializable(), with a get_config() returning its "
            "constructor's arguments (docs/activations.md)."
        )


def training_images(
    data: DataParams, source_images: int | None, held_out: int | None = None
) -> int | None:
    """How many images a run trains on, from the source's count and ``data.*``, if known.

    ``data.limit_train`` caps the count; ``data.validation_split`` holds out a
    fraction of it (rounded per class at run time, so this is the count to within
    a few images), or ``held_out`` images (the rigorous protocol's
    ``tuning.validation_size``) are held out.
    """
    images = source_images
    if data.limit_train is not None:
        images = data.limit_train if images is None else min(images, data.limit_train)
    if images is None:
        return None
    if held_out is not None:
        return images - held_out
    return images - round(images * data.validation_split)


def subsample_problems(data: Any, classes: int) -> list[str]:
    """``data.limit_train``/``data.limit_test`` below the class count, one line each."""
    problems = []
    for split in ("train", "test"):
        limit = getattr(data, f"limit_{split}")
        if limit is not None and limit < classes:
            problems.append(
                f"  - data.limit_{split} = {limit}: smaller than the {classes} classes of "
                f"data.source={data.source!r}; a stratified subsample keeps at least one image "
                f"per class, so expected at least {classes} (or null for every image)"
            )
    return problems


def check_subsample(params: ProjectParameters, classes: int | None) -> None:
    """Refuse, before anything is loaded, a ``data.limit_*`` below the source's class count.

    Args:
        params: the run's validated parameters.
        classes: the source's class count when known without loading it
            (``ImageSourceDataset.class_count()``), else None.
    """
    problems = [] if classes is None else subsample_problems(params.data, classes)
    if problems:
        raise InvalidParametersError(
            f"Invalid parameters ({len(problems)}):\n" + "\n".join(problems) + "\n"
            + _WHERE_PARAMETERS_LIVE
        )


def check_batch_size(params: ProjectParameters, source_images: int | None) -> None:
    """Refuse, before the run, a batch larger than the training set the run will have.

    Args:
        params: the run's validated parameters.
        source_images: the training images the configured source holds, when it is
            known without loading it (``ImageSourceDataset.train_images()``).

    Raises:
        InvalidParametersError: naming training.batch_size, the training set's size
            and where that size comes from.
    """
    rigorous = params.compare.protocol is Protocol.RIGOROUS
    held_out = params.tuning.validation_size if rigorous else None
    images = training_images(params.data, source_images, held_out)
    if rigorous and images is not None and images <= 0:
        available = images + params.tuning.validation_size
        raise InvalidParametersError(
            "Invalid parameters (1):\n"
            f"  - tuning.validation_size = {params.tuning.validation_size}: leaves no training "
            f"images of the {available:,} the run has (data.source={params.data.source!r}"
            + (f", data.limit_train={params.data.limit_train}" if params.data.limit_train else "")
            + f"); expected fewer than {available:,}\n{_WHERE_PARAMETERS_LIVE}"
        )
    if images is None or params.training.batch_size <= images:
        return
    data = params.data
    origin = [f"data.source={data.source!r}"]
    if source_images is not None:
        origin.append(f"{source_images:,} training images")
    if data.limit_train is not None:
        origin.append(f"data.limit_train={data.limit_train}")
    if data.validation_split:
        origin.append(f"data.validation_split={data.validation_split}")
    if rigorous:
        origin.append(f"tuning.validation_size={held_out} held out")
    raise InvalidParametersError(
        "Invalid parameters (1):\n"
        f"  - training.batch_size = {params.training.batch_size}: larger than the "
        f"{images:,} images the run trains on ({', '.join(origin)}); expected at most "
        f"{images:,}\n{_WHERE_PARAMETERS_LIVE}"
    )


def validate_parameters(raw: dict[str, Any]) -> ProjectParameters:
    """Check the whole parameter tree; raise one error that lists every problem."""
    try:
        params = ProjectParameters.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe_error(e)}" for e in exc.errors())
        raise InvalidParametersError(
            f"Invalid parameters ({exc.error_count()}):\n{problems}\n{_WHERE_PARAMETERS_LIVE}"
        ) from None
    # data.limit_train alone can tell that a batch cannot fit; the source's own
    # count is checked once the catalog exists (check_batch_size's other caller).
    check_batch_size(params, None)
    return params
