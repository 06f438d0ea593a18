"""Every bound of the parameter schema, at its edge and just beyond, as the user meets it.

One table: per constrained parameter, the value on the edge that must still be
accepted and the value just beyond it that must be refused, with the exact
line the refusal prints (the parameter, the value, what is allowed). Floats are
probed one representable number past the edge (``math.nextafter``), integers
one past it, lists one item short or with one repeat.

Refusals go through ``ProjectHooks.after_context_created``, the hook that
validates the parameters of every ``kedro run`` (it calls
:func:`validate_parameters`), so the message checked is the one a user reads.
A last test reads the schema's own constraints (its JSON schema) and fails when
a constrained field has no row here, so a new bound comes with its edge test.
"""

from __future__ import annotations

import copy
import math
import re
from types import SimpleNamespace
from typing import Any, NamedTuple

import pytest

from activation_compare.hooks.project import ProjectHooks
from activation_compare.params import (
    ACTIVATION_SPECS,
    PRECISIONS,
    InvalidParametersError,
    ProjectParameters,
    validate_parameters,
)

# The smallest positive float, and the largest float below 1.
TINY = math.nextafter(0.0, 1.0)
BELOW_ONE = math.nextafter(1.0, 0.0)
RRELU_UPPER = 1.0 / 3.0
# Seeds are 32-bit unsigned integers (NumPy's and TensorFlow's).
SEED_MAX = 2**32 - 1

# A valid tree whose every value is as small as the schema allows, so that
# raising one bound to its edge cannot trip another check (the batch against
# data.limit_train, the rigorous protocol's validation size against it).
BASE: dict[str, Any] = {
    "data": {"source": "synthetic"},
    "training": {"epochs": 1, "batch_size": 1, "seeds": [0]},
    "activations": {
        "relu": {"type": "relu"},
        "rrelu": {"type": "rrelu"},
        "leaky_relu": {"type": "leaky_relu"},
        "prelu": {"type": "prelu"},
        "elu": {"type": "elu"},
    },
    "compare": {"activations": ["relu", "rrelu"], "baseline": "relu"},
}


class Bound(NamedTuple):
    """One edge of one parameter."""

    parameter: str  # the dotted name set in the tree
    accepted: tuple[Any, ...]  # the edge value(s) that must pass
    refused: Any  # the value just beyond the edge
    message: str  # the refusal's line, exactly as printed

    @property
    def id(self) -> str:
        return f"{self.parameter}={self.refused!r}"


def _gt0(parameter: str, refused: Any = 0) -> str:
    return f"{parameter} = {refused!r}: Input should be greater than 0"


def _seed(parameter: str, refused: int) -> str:
    return f"{parameter} = {refused!r}: a seed must be from 0 to 4294967295 (2**32 - 1)"


def _rrelu(lower: float, upper: float) -> dict[str, Any]:
    return {"type": "rrelu", "lower": lower, "upper": upper}


def _rrelu_refused(lower: float, upper: float) -> str:
    return f"activations.rrelu: RReLU needs 0 <= lower <= upper < 1, got lower={lower}, upper={upper}"


# fmt: off
BOUNDS = [
    # --- training --------------------------------------------------------------
    Bound("training.epochs", (1,), 0, _gt0("training.epochs")),
    Bound("training.batch_size", (1,), 0, _gt0("training.batch_size")),
    Bound("training.seeds", ([0],), [],
          "training.seeds = []: List should have at least 1 item after validation, not 0"),
    Bound("training.seeds", ([0, 1],), [0, 0],
          "training.seeds = [0, 0]: seeds must be distinct, got [0, 0]"),
    Bound("training.seeds", ([0],), [-1], _seed("training.seeds.0", -1)),
    Bound("training.seeds", ([SEED_MAX],), [SEED_MAX + 1], _seed("training.seeds.0", SEED_MAX + 1)),
    Bound("training.optimizer.learning_rate", (TINY,), 0.0, _gt0("training.optimizer.learning_rate", 0.0)),
    Bound("training.verbose", (0, 1, 2), 3, "training.verbose = 3: Input should be 0, 1 or 2"),
    Bound("training.verbose", (0,), -1, "training.verbose = -1: Input should be 0, 1 or 2"),
    # --- compare ---------------------------------------------------------------
    Bound("compare.confidence_level", (TINY,), 0.0, _gt0("compare.confidence_level", 0.0)),
    Bound("compare.confidence_level", (BELOW_ONE,), 1.0,
          "compare.confidence_level = 1.0: Input should be less than 1"),
    Bound("compare.activations", (["relu"],), [],
          "compare.activations is empty; name one or more of the activations defined under "
          "'activations': ['elu', 'leaky_relu', 'prelu', 'relu', 'rrelu'], e.g. "
          "--params 'compare.activations=relu rrelu'"),
    Bound("compare.activations", (["relu", "rrelu"],), ["relu", "relu"],
          "compare.activations = ['relu', 'relu']: duplicate activations ['relu'] in ['relu', 'relu']"),
    Bound("compare.protocol", ("original", "rigorous"), "strict",
          "compare.protocol = 'strict': Input should be 'original' or 'rigorous'"),
    # --- tuning ----------------------------------------------------------------
    Bound("tuning.epochs", (1, None), 0, _gt0("tuning.epochs")),
    Bound("tuning.validation_size", (1,), 0, _gt0("tuning.validation_size")),
    Bound("tuning.seed", (0,), -1, _seed("tuning.seed", -1)),
    Bound("tuning.seed", (SEED_MAX,), SEED_MAX + 1, _seed("tuning.seed", SEED_MAX + 1)),
    Bound("tuning.learning_rates", ([TINY],), [],
          "tuning.learning_rates = []: List should have at least 1 item after validation, not 0"),
    Bound("tuning.learning_rates", ([TINY],), [0.0], _gt0("tuning.learning_rates.0", 0.0)),
    Bound("tuning.learning_rates", ([0.001, 0.003],), [0.001, 0.001],
          "tuning.learning_rates = [0.001, 0.001]: learning rates must be distinct, got [0.001, 0.001]"),
    # --- data ------------------------------------------------------------------
    Bound("data.limit_train", (1, None), 0, _gt0("data.limit_train")),
    Bound("data.limit_test", (1, None), 0, _gt0("data.limit_test")),
    Bound("data.max_images", (1,), 0, _gt0("data.max_images")),
    Bound("data.split_seed", (0,), -1, _seed("data.split_seed", -1)),
    Bound("data.split_seed", (SEED_MAX,), SEED_MAX + 1, _seed("data.split_seed", SEED_MAX + 1)),
    Bound("data.validation_split", (0.0,), -TINY,
          f"data.validation_split = {-TINY!r}: Input should be greater than or equal to 0"),
    Bound("data.validation_split", (BELOW_ONE,), 1.0,
          "data.validation_split = 1.0: Input should be less than 1"),
    # image_folder also needs data.path (tests/test_params.py).
    Bound("data.source", ("cifar10", "synthetic"), "imagenet",
          "data.source = 'imagenet': Input should be 'cifar10', 'image_folder' or 'synthetic'"),
    # --- model -----------------------------------------------------------------
    Bound("model.precision", PRECISIONS, "fp8",
          "model.precision = 'fp8': Input should be 'auto', 'float32', 'bfloat16' or 'float16'"),
    Bound("model.architecture", ("seed_cnn",), "resnet",
          "model.architecture = 'resnet': Input should be 'seed_cnn'"),
    Bound("training.optimizer.name", ("adam",), "sgd",
          "training.optimizer.name = 'sgd': Input should be 'adam'"),
    # --- activations -----------------------------------------------------------
    Bound("activations.leaky_relu.slope", (0.0,), -TINY,
          f"activations.leaky_relu.slope = {-TINY!r}: Input should be greater than or equal to 0"),
    Bound("activations.leaky_relu.slope", (BELOW_ONE,), 1.0,
          "activations.leaky_relu.slope = 1.0: Input should be less than 1"),
    Bound("activations.prelu.initial_slope", (0.0,), -TINY,
          f"activations.prelu.initial_slope = {-TINY!r}: Input should be greater than or equal to 0"),
    Bound("activations.prelu.initial_slope", (BELOW_ONE,), 1.0,
          "activations.prelu.initial_slope = 1.0: Input should be less than 1"),
    Bound("activations.elu.alpha", (TINY,), 0.0, _gt0("activations.elu.alpha", 0.0)),
    # RReLU: 0 <= lower <= upper < 1, one validator over both values.
    Bound("activations.rrelu", (_rrelu(0.0, RRELU_UPPER),), _rrelu(-TINY, RRELU_UPPER),
          _rrelu_refused(-TINY, RRELU_UPPER)),
    Bound("activations.rrelu", (_rrelu(0.25, 0.25),), _rrelu(math.nextafter(0.25, 1.0), 0.25),
          _rrelu_refused(math.nextafter(0.25, 1.0), 0.25)),
    Bound("activations.rrelu", (_rrelu(0.125, BELOW_ONE),), _rrelu(0.125, 1.0),
          _rrelu_refused(0.125, 1.0)),
]
# fmt: on


def _tree(parameter: str, value: Any) -> dict[str, Any]:
    """BASE with one dotted parameter set."""
    raw = copy.deepcopy(BASE)
    *sections, leaf = parameter.split(".")
    node = raw
    for section in sections:
        node = node.setdefault(section, {})
    node[leaf] = copy.deepcopy(value)
    return raw


def _refusal(raw: dict[str, Any]) -> str:
    """The error the project hook raises for this tree, as the CLI prints it."""
    context = SimpleNamespace(env=None, config_loader={"globals": {}, "parameters": raw})
    with pytest.raises(InvalidParametersError) as caught:
        ProjectHooks().after_context_created(context)
    return str(caught.value)


def test_the_base_tree_is_valid():
    validate_parameters(BASE)


@pytest.mark.parametrize("bound", BOUNDS, ids=[b.id for b in BOUNDS])
def test_the_edge_is_accepted_and_one_step_beyond_is_refused(bound: Bound):
    for value in bound.accepted:
        validate_parameters(_tree(bound.parameter, value))
    message = _refusal(_tree(bound.parameter, bound.refused))
    problems = [line.removeprefix("  - ") for line in message.splitlines() if line.startswith("  - ")]
    assert message.startswith("Invalid parameters (1):\n")
    assert problems == [bound.message]
    assert message.endswith("can be overridden with kedro run --params 'key=value'.")


def _constrained(schema: dict[str, Any], node: dict[str, Any], path: str, found: set[str]) -> None:
    """Dotted names of every property with a bound, a length or a set of choices."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["$defs"][name]
    for key in ("exclusiveMinimum", "minimum", "exclusiveMaximum", "maximum", "minItems",
                "maxItems", "enum"):
        if key in node:
            found.add(path)
    if "const" in node and not path.endswith(".type"):  # .type: an activation's discriminator
        found.add(path)
    for child in node.get("anyOf", []) + node.get("oneOf", []):
        _constrained(schema, child, path, found)
    if isinstance(node.get("items"), dict):  # a list's items: named as the first item
        _constrained(schema, node["items"], f"{path}.0", found)
    for name, child in node.get("properties", {}).items():
        _constrained(schema, child, f"{path}.{name}" if path else name, found)


def test_every_constrained_parameter_has_a_row():
    schema = ProjectParameters.model_json_schema()
    found: set[str] = set()
    top = {k: v for k, v in schema["properties"].items() if k != "activations"}
    _constrained(schema, {"properties": top}, "", found)
    # activations.<name>: each type's options, under the name the table uses.
    for spec in ACTIVATION_SPECS.values():  # every type of the registry
        definition = schema["$defs"][spec.__name__]
        kind = definition["properties"]["type"]["const"]
        _constrained(schema, definition, f"activations.{kind}", found)
    # A row covers its parameter and the name its message gives (a list item's: x.0).
    covered = {b.parameter for b in BOUNDS} | {
        re.split(r" = |: ", b.message, maxsplit=1)[0] for b in BOUNDS
    }
    # RReLU's lower and upper are bounded together, by one validator.
    covered |= {"activations.rrelu.lower", "activations.rrelu.upper"}
    assert found, "the schema walk found no constraints; has the JSON schema's shape changed?"
    assert sorted(found - covered) == [], "constrained parameters without an edge row in BOUNDS"
