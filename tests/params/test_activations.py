"""The activation registry's parameters: Keras names and custom layers, and every way they are refused.

A Keras activation's name is checked against a static list (parameter
validation must not import TensorFlow), which the first test compares with the
installed Keras. A custom layer is checked in a child process before training
(:func:`check_custom_layers`); :func:`layer_problem` is what that process runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from custom_layer import custom_entry, write_layer_package

from activation_compare.layers.custom import layer_problem
from activation_compare.params import (
    ACTIVATION_SPECS,
    KERAS_ACTIVATIONS,
    CustomSpec,
    InvalidParametersError,
    KerasSpec,
    check_custom_layers,
    validate_parameters,
)

# Layers that are wrong in every way a user's can be, beside a right one.
BAD_LAYERS = '''\
import keras

def a_function(x):
    return x

class NotALayer:
    pass

class Unregistered(keras.layers.Layer):
    def call(self, inputs):
        return inputs

@keras.saving.register_keras_serializable(package="badlayers")
class LosesItsArgument(keras.layers.Layer):
    def __init__(self, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta
    def call(self, inputs):
        return inputs * self.beta
    def get_config(self):
        return {**super().get_config(), "b": self.beta}

@keras.saving.register_keras_serializable(package="badlayers")
class Fails(keras.layers.Layer):
    def call(self, inputs):
        raise RuntimeError("no call today")

@keras.saving.register_keras_serializable(package="badlayers")
class Strict(keras.layers.Layer):
    def __init__(self, beta, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.beta = beta
    def call(self, inputs):
        return inputs * self.beta
    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
'''


@pytest.fixture(scope="module")
def user_code(tmp_path_factory):
    """A folder on sys.path with the good package (userlayers_params) and the bad one."""
    folder = tmp_path_factory.mktemp("user_code")
    write_layer_package(folder, "userlayers_params")
    bad = folder / "badlayers"
    bad.mkdir()
    (bad / "__init__.py").write_text("")
    (bad / "layers.py").write_text(BAD_LAYERS)
    (bad / "broken.py").write_text("raise RuntimeError('this module cannot be imported')\n")
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def _tree(**activations) -> dict:
    return {"activations": {"relu": {"type": "relu"}, **activations},
            "compare": {"activations": ["relu", *activations], "baseline": "relu"}}


def _problems(raw: dict) -> list[str]:
    with pytest.raises(InvalidParametersError) as caught:
        validate_parameters(raw)
    return [line.removeprefix("  - ") for line in str(caught.value).splitlines() if line.startswith("  - ")]


# --- Keras names --------------------------------------------------------------------


def test_the_static_list_is_every_activation_keras_resolves_by_name():
    import keras

    public = {name for name in dir(keras.activations) if not name.startswith("_")}
    assert set(KERAS_ACTIVATIONS) == public - {"get", "serialize", "deserialize"}
    for name in KERAS_ACTIVATIONS:
        assert callable(keras.activations.get(name)), name


def test_gelu_silu_and_mish_are_accepted_by_name():
    params = validate_parameters(_tree(gelu={"type": "keras", "name": "gelu"}, silu={"type": "keras", "name": "silu"},
                                       mish={"type": "keras", "name": "mish"}))
    assert params.activations["gelu"] == KerasSpec(name="gelu")
    assert [params.activations[n].name for n in ("gelu", "silu", "mish")] == ["gelu", "silu", "mish"]


def test_the_base_configuration_defines_gelu_silu_and_mish():
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader("conf", base_env="base", default_run_env="local")
    params = validate_parameters(loader["parameters"])
    assert {n: params.activations[n] for n in ("gelu", "silu", "mish")} == {
        n: KerasSpec(name=n) for n in ("gelu", "silu", "mish")}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gelux", "activations.mine.name='gelux' is not a Keras activation; did you mean 'gelu'?"),
        ("Mish", "activations.mine.name='Mish' is not a Keras activation; did you mean 'mish'?"),
        ("swishy", "activations.mine.name='swishy' is not a Keras activation; did you mean 'swish'?"),
    ],
)
def test_a_misspelt_keras_name_is_one_line_with_close_matches(name, message):
    assert _problems(_tree(mine={"type": "keras", "name": name})) == [message]


def test_a_name_keras_does_not_know_lists_the_names():
    (problem,) = _problems(_tree(mine={"type": "keras", "name": "zzzz"}))
    assert problem.startswith("activations.mine.name='zzzz' is not a Keras activation; Keras knows: celu, elu,")
    assert "\n" not in problem


def test_a_keras_entry_needs_a_name():
    assert _problems(_tree(mine={"type": "keras"})) == ["activations.mine.name: Field required"]


def test_a_keras_entry_has_no_other_options():
    (problem,) = _problems(_tree(mine={"type": "keras", "name": "gelu", "approximate": True}))
    assert problem.startswith("activations.mine.approximate: unknown parameter")


def test_a_keras_name_as_a_type_says_how_to_write_it():
    assert _problems(_tree(mine={"type": "gelu"})) == [
        "activations.mine: type='gelu' is not an activation type; expected one of 'relu', 'rrelu', "
        "'leaky_relu', 'prelu', 'elu', 'keras', 'custom'; for Keras' own, write {type: keras, name: gelu}"]


def test_a_misspelt_type_suggests_the_type():
    (problem,) = _problems(_tree(mine={"type": "rrelux"}))
    assert problem.endswith("did you mean 'rrelu'?")


def test_an_entry_must_be_a_mapping_with_a_type():
    (problem,) = _problems(_tree(mine="gelu"))
    assert problem.startswith("activations.mine = 'gelu':")
    (problem,) = _problems(_tree(mine={"name": "gelu"}))
    assert problem.startswith("activations.mine: Unable to extract tag using discriminator 'type'")


def test_every_type_is_in_the_schema_once():
    from activation_compare.params import ProjectParameters

    union = ProjectParameters.model_json_schema()["$defs"]
    assert {spec.__name__ for spec in ACTIVATION_SPECS.values()} <= set(union)
    assert list(ACTIVATION_SPECS) == ["relu", "rrelu", "leaky_relu", "prelu", "elu", "keras", "custom"]


# --- custom layers: the parameters alone ------------------------------------------


def test_a_custom_entry_keeps_its_constructor_arguments():
    params = validate_parameters(_tree(swish=custom_entry("userlayers_params", beta=2.0)))
    spec = params.activations["swish"]
    assert isinstance(spec, CustomSpec)
    assert (spec.layer, spec.kwargs) == ("userlayers_params.layers:Swish", {"beta": 2.0})
    # Its arguments are params like any option (tracking logs activation.<key>).
    assert params.model_dump(mode="json")["activations"]["swish"] == custom_entry("userlayers_params", beta=2.0)


@pytest.mark.parametrize("layer", ["userlayers.layers.Swish", "userlayers/layers:Swish", "userlayers:", ":Swish",
                                   "user layers:Swish"])
def test_a_custom_layer_is_an_import_path(layer):
    assert _problems(_tree(mine={"type": "custom", "layer": layer})) == [
        f"activations.mine.layer={layer!r} is not an import path; expected 'package.module:ClassName'"]


def test_a_custom_entry_cannot_set_the_layers_name_or_dtype():
    (problem,) = _problems(_tree(mine=custom_entry(name="x", dtype="float16")))
    assert problem == ("activations.mine: dtype, name cannot be set: the model names each activation "
                       "layer and gives it model.precision's dtype policy")


def test_a_custom_entry_needs_a_layer():
    assert _problems(_tree(mine={"type": "custom"})) == ["activations.mine.layer: Field required"]


def test_validating_a_custom_or_keras_entry_imports_no_tensorflow():
    code = (
        "import json, sys\n"
        "from activation_compare.params import validate_parameters\n"
        f"validate_parameters({_tree(swish=custom_entry('not_installed_anywhere'), gelu={'type': 'keras', 'name': 'gelu'})!r})\n"
        "print(json.dumps([m for m in ('tensorflow', 'keras') if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# --- custom layers: what the check before training finds ---------------------------


@pytest.mark.parametrize(
    ("layer", "kwargs", "problem"),
    [
        ("nowhere_to_be_found.layers:Swish", {},
         "cannot be imported: no module named 'nowhere_to_be_found' (put the package in the project's src/ "
         "folder or install it)"),
        ("badlayers.nothere:Swish", {},
         "cannot be imported: no module named 'badlayers.nothere' (put the package in the project's src/ "
         "folder or install it)"),
        ("badlayers.broken:Swish", {},
         "cannot be imported: importing 'badlayers.broken' failed: RuntimeError: this module cannot be imported"),
        ("userlayers_params.layers:Swsh", {},
         "cannot be found: 'userlayers_params.layers' has no attribute 'Swsh'; did you mean 'Swish'?"),
        ("badlayers.layers:a_function", {}, "is a function, not a keras.layers.Layer subclass"),
        ("badlayers.layers:NotALayer", {}, "is a class, not a keras.layers.Layer subclass"),
        ("badlayers.layers:Unregistered", {},
         "is not registered with Keras: decorate the class with "
         "@keras.saving.register_keras_serializable(package=...) so a saved model can load it"),
        ("badlayers.layers:Strict", {"beta": 1.0, "gamma": 2}, "does not accept gamma: Strict() takes beta, name, dtype"),
        ("badlayers.layers:Fails", {}, "fails on a batch of feature maps (2, 5, 5, 3): RuntimeError: no call today"),
    ],
)
def test_every_custom_layer_problem_is_one_line(user_code, layer, kwargs, problem):
    assert layer_problem(layer, kwargs) == problem


def test_unknown_arguments_of_a_layer_taking_kwargs_are_keras_refusal(user_code):
    problem = layer_problem("userlayers_params.layers:Swish", {"gamma": 2})
    assert problem.startswith("cannot be built with {'gamma': 2}: ValueError: Unrecognized keyword arguments")
    assert "\n" not in problem


def test_a_get_config_that_loses_an_argument_is_refused(user_code):
    problem = layer_problem("badlayers.layers:LosesItsArgument", {"beta": 2.0})
    assert problem.startswith("cannot be rebuilt from its get_config() as a saved model is (")
    assert problem.endswith("get_config() must return every constructor argument")


def test_a_good_layer_has_no_problem(user_code):
    assert layer_problem("userlayers_params.layers:Swish", {"beta": 2.0}) is None


def test_the_check_before_training_names_every_bad_layer_in_one_message(user_code):
    """One child process (it imports TensorFlow) for every compared custom layer; one line each."""
    params = validate_parameters(_tree(
        good=custom_entry("userlayers_params", beta=1.5),
        missing={"type": "custom", "layer": "userlayers_params.layers:Swsh"},
        plain={"type": "custom", "layer": "badlayers.layers:NotALayer"},
    ))
    with pytest.raises(InvalidParametersError) as caught:
        check_custom_layers(params)
    lines = str(caught.value).splitlines()
    assert lines[:3] == [
        "Invalid parameters (2):",
        "  - activations.missing.layer='userlayers_params.layers:Swsh' cannot be found: 'userlayers_params.layers' "
        "has no attribute 'Swsh'; did you mean 'Swish'?",
        "  - activations.plain.layer='badlayers.layers:NotALayer' is a class, not a keras.layers.Layer subclass",
    ]
    assert "register_keras_serializable" in lines[3] and len(lines) == 4


def test_the_check_passes_good_layers_and_skips_layers_not_compared(user_code):
    raw = _tree(good=custom_entry("userlayers_params"))
    raw["activations"]["unused"] = {"type": "custom", "layer": "nowhere_to_be_found.layers:Swish"}
    check_custom_layers(validate_parameters(raw))  # the unused one would fail: it is not checked
