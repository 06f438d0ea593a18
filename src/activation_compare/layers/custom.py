"""A user's own Keras layer as an activation: import, check, build, fingerprint and bundle it.

An ``activations.<name>`` entry ``{type: custom, layer: "mypkg.layers:Swish", …}``
names a ``keras.layers.Layer`` subclass by import path; its other keys are the
constructor's arguments. Everything the project does with such a layer is
here:

- :func:`load_layer_class` imports it, with a one-line reason for each way that
  fails, and :func:`layer_problem` checks that it builds, runs and saves
  (run in a child process before training: ``python -m
  activation_compare.layers.custom`` reads ``{name: {"layer", "kwargs"}}`` as
  JSON and prints ``{name: problem or null}``);
- :func:`build_custom_layer` is the registry's layer factory for the type;
- :func:`layer_source` is the code a model with the layer depends on: the
  files of the layer's top-level package (or module). The training
  fingerprint includes their digest, so a changed layer is never reused
  stale, and the logged MLflow model bundles the same files, so the served
  model runs the code it was trained with;
- :func:`import_layer_modules` imports the modules a saved ``.keras`` file's
  custom objects come from: Keras finds a registered class only once its
  module has run, and never imports a module outside Keras by itself.

The project's own package (``activation_compare``: RReLU) is not "custom":
it is imported and bundled anyway.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import inspect
import json
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LayerSource",
    "build_custom_layer",
    "custom_layer_classes",
    "import_layer_modules",
    "keras_file_modules",
    "layer_problem",
    "layer_source",
    "load_layer_class",
]

# Top-level packages whose layers are not custom: Keras' own and this project's.
_NOT_CUSTOM = frozenset({"keras", "activation_compare"})
# Files of a package that are not its code.
_SKIPPED = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
# Terminal colour codes (Keras puts them in its messages).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The input a layer is tried on: (batch, height, width, channels), as after a convolution.
_TRIAL_SHAPE = (2, 5, 5, 3)


class CustomLayerError(ValueError):
    """A custom layer that cannot be imported or built; the message is one line."""


def _split(path: str) -> tuple[str, str]:
    module, _, attribute = path.partition(":")
    return module, attribute


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and (module == error.name or module.startswith(error.name + ".")):
            raise CustomLayerError(
                f"cannot be imported: no module named {error.name!r} (put the package in the "
                "project's src/ folder or install it)"
            ) from None
        raise CustomLayerError(f"cannot be imported: importing {module!r} failed: {_one_line(error)}") from None
    except Exception as error:  # noqa: BLE001 - any error of the user's module, in one line
        raise CustomLayerError(f"cannot be imported: importing {module!r} failed: {_one_line(error)}") from None


def _one_line(error: BaseException) -> str:
    """``Type: first line`` of an error; for Keras' wrapper of an error in ``call``, the error's own line."""
    lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = lines[1:]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def load_layer_class(path: str) -> type:
    """The class ``path`` (``package.module:ClassName``) names, checked to be a registered Keras layer.

    Raises:
        CustomLayerError: the module cannot be imported, has no such attribute
            (with close matches), the attribute is not a ``keras.layers.Layer``
            subclass, or is not registered with
            ``@keras.saving.register_keras_serializable()``.
    """
    import keras

    module_name, attribute = _split(path)
    found: Any = _import(module_name)
    where = module_name
    for part in attribute.split("."):
        if not hasattr(found, part):
            names = [n for n in dir(found) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CustomLayerError(f"cannot be found: {where!r} has no attribute {part!r}{hint}")
        found = getattr(found, part)
        where = f"{where}.{part}"
    if not (isinstance(found, type) and issubclass(found, keras.layers.Layer)):
        kind = "a class" if isinstance(found, type) else f"a {type(found).__name__}"
        raise CustomLayerError(f"is {kind}, not a keras.layers.Layer subclass")
    if keras.saving.get_registered_object(keras.saving.get_registered_name(found)) is not found:
        raise CustomLayerError(
            "is not registered with Keras: decorate the class with "
            "@keras.saving.register_keras_serializable(package=...) so a saved model can load it"
        )
    return found


def _accepts_seed(cls: type) -> bool:
    try:
        return "seed" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def build_custom_layer(
    path: str,
    kwargs: Mapping[str, Any],
    *,
    name: str | None = None,
    seed: int | None = None,
    dtype: str | None = None,
) -> Any:
    """A new layer of the class ``path`` names, built with ``kwargs``, ``name`` and ``dtype``.

    ``seed`` (the model's derived seed for this layer) is passed when the
    constructor has a ``seed`` argument and the entry does not set it.
    """
    cls = load_layer_class(path)
    arguments = dict(kwargs)
    if seed is not None and "seed" not in arguments and _accepts_seed(cls):
        arguments["seed"] = seed
    return cls(**arguments, name=name, dtype=dtype)


def layer_problem(path: str, kwargs: Mapping[str, Any]) -> str | None:
    """Why the layer cannot serve as an activation, in one line; None if it can.

    Imports and checks the class (:func:`load_layer_class`), checks the
    arguments against its constructor, builds it, runs it on a small batch of
    feature maps and rebuilds it from its ``get_config()`` (what loading a
    saved model does).
    """
    import keras
    import numpy as np

    try:
        cls = load_layer_class(path)
    except CustomLayerError as error:
        return str(error)
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown and not accepts_any:
            takes = [n for n, p in signature.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
            return (
                f"does not accept {', '.join(unknown)}: {cls.__name__}() takes "
                f"{', '.join(takes) or 'no arguments'}"
            )
    try:
        layer = build_custom_layer(path, kwargs, name="activation_check", seed=0)
    except Exception as error:  # noqa: BLE001 - the user's constructor, in one line
        return f"cannot be built with {dict(kwargs)!r}: {_one_line(error)}"
    trial = np.linspace(-3.0, 3.0, int(np.prod(_TRIAL_SHAPE)), dtype="float32").reshape(_TRIAL_SHAPE)
    try:
        layer(trial)
    except Exception as error:  # noqa: BLE001
        return f"fails on a batch of feature maps {_TRIAL_SHAPE}: {_one_line(error)}"
    try:
        config = layer.get_config()
        cls.from_config(json.loads(json.dumps(config)))
    except Exception as error:  # noqa: BLE001
        return (
            f"cannot be rebuilt from its get_config() as a saved model is ({_one_line(error)}); "
            "get_config() must return every constructor argument"
        )
    return None


def _top_level(module: str) -> str:
    return module.split(".", 1)[0]


def custom_layer_classes(model: Any) -> list[type]:
    """The classes of ``model``'s layers that come neither from Keras nor from this project, in order."""
    classes: list[type] = []
    for layer in model.layers:
        cls = type(layer)
        if _top_level(cls.__module__) not in _NOT_CUSTOM and cls not in classes:
            classes.append(cls)
    return classes


@dataclass(frozen=True)
class LayerSource:
    """The code a custom layer depends on: its top-level package's files (or its one module's file).

    Attributes:
        package: The top-level package or module name (``mypkg``).
        root: Its folder (a package) or file (a module).
        files: Every file of it, ``__pycache__`` and compiled files left out, sorted.
    """

    package: str
    root: Path
    files: tuple[Path, ...]

    @property
    def digest(self) -> str:
        """A digest of every file's path relative to :attr:`root` and its bytes."""
        digest = hashlib.sha256()
        for file in self.files:
            relative = file.relative_to(self.root).as_posix() if self.root.is_dir() else file.name
            digest.update(relative.encode() + b"\0")
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest()[:16]


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED for part in relative.parts) or path.suffix in _SKIPPED_SUFFIXES:
            continue
        if path.is_file():
            yield path


def layer_source(module: str) -> LayerSource:
    """The files of the top-level package (or module) that ``module`` belongs to.

    The whole package, not only the layer's own module: a layer may use its
    package's other modules, and a change there changes the layer too.
    """
    package = _top_level(module)
    top = importlib.import_module(package)
    location = getattr(top, "__file__", None)
    if location is None:  # a namespace package: its first folder
        root = Path(next(iter(top.__path__))).resolve()
    else:
        path = Path(location).resolve()
        root = path.parent if path.name == "__init__.py" else path
    return LayerSource(package, root, tuple(_files(root)))


def _custom_modules(config: Any, into: list[str]) -> None:
    """The modules of the registered objects outside Keras and this project in a serialized config."""
    if isinstance(config, Mapping):
        module = config.get("module")
        if (
            isinstance(module, str)
            and config.get("registered_name")
            and _top_level(module) not in _NOT_CUSTOM
            and module not in into
        ):
            into.append(module)
        for value in config.values():
            _custom_modules(value, into)
    elif isinstance(config, list):
        for value in config:
            _custom_modules(value, into)


def keras_file_modules(keras_file: str | Path) -> list[str]:
    """The modules of the custom objects a saved ``.keras`` file holds (from its ``config.json``)."""
    with zipfile.ZipFile(keras_file) as archive:
        config = json.loads(archive.read("config.json"))
    modules: list[str] = []
    _custom_modules(config, modules)
    return modules


def import_layer_modules(keras_file: str | Path) -> list[str]:
    """Import this project's layers and the modules of a saved model's custom layers; returns the latter.

    Keras finds a registered class by its registered name only once the
    module that registers it has run; call this before ``keras.saving.load_model``.

    Raises:
        CustomLayerError: a module cannot be imported (one line, naming it).
    """
    import activation_compare.layers  # noqa: F401 - registers RReLU

    modules = keras_file_modules(keras_file)
    for module in modules:
        try:
            _import(module)
        except CustomLayerError as error:
            raise CustomLayerError(f"The model {Path(keras_file).name}'s layer module {module!r} {error}") from None
    return modules


def _check_main() -> int:
    """``python -m activation_compare.layers.custom``: check the layers of a JSON request on stdin."""
    request = json.loads(sys.stdin.read())
    answer = {name: layer_problem(entry["layer"], entry.get("kwargs") or {}) for name, entry in request.items()}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_check_main())
