import pytest

from activation_compare.params import (
    InvalidParametersError,
    ProjectParameters,
    RReLUSpec,
    validate_parameters,
)


def _valid(**overrides):
    raw = {
        "data": {"source": "synthetic"},
        "training": {"epochs": 2, "batch_size": 10, "seeds": [0, 1]},
        "compare": {"activations": ["relu", "rrelu"]},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        raw.setdefault(section, {})[key] = value
    return raw


def test_defaults_are_the_originals():
    params = ProjectParameters()
    assert params.training.epochs == 50
    assert params.training.batch_size == 100
    assert params.training.optimizer.learning_rate == 0.001
    assert params.data.validation_split == 0.0
    assert params.compare.activations == ["relu", "rrelu"]
    rrelu = params.activations["rrelu"]
    assert (rrelu.lower + rrelu.upper) / 2 == pytest.approx(11 / 48)


def test_valid_parameters_pass():
    assert validate_parameters(_valid()).training.seeds == [0, 1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"training__epochs": 0}, r"training.epochs = 0: Input should be greater than 0"),
        ({"training__batch_size": -5}, r"training.batch_size = -5"),
        ({"training__seeds": [0, 0]}, r"training.seeds = \[0, 0\]: Value error, seeds must be distinct"),
        ({"training__seeds": ["a"]}, r"training.seeds.0 = 'a': Input should be a valid integer"),
        ({"training__seeds": [1.5]}, r"training.seeds.0 = 1.5"),
        ({"training__trainig": 1}, r"training.trainig: unknown parameter"),
        ({"compare__activations": []}, r"compare.activations = \[\]"),
        ({"compare__activations": ["relu", "relu"]}, r"duplicate activations \['relu'\]"),
        ({"compare__activations": ["swish"]}, r"compare.activations names \['swish'\].*defined: \["),
        ({"data__source": "imagenet"}, r"data.source = 'imagenet': Input should be 'cifar10', 'image_folder' or 'synthetic'"),
        ({"data__source": "image_folder"}, r"data.source='image_folder' needs data.path"),
        ({"data__validation_split": 1.0}, r"data.validation_split = 1.0"),
    ],
)
def test_invalid_parameters_name_the_parameter_value_and_rule(overrides, message):
    with pytest.raises(InvalidParametersError, match=message):
        validate_parameters(_valid(**overrides))


def test_unknown_top_level_section_is_rejected():
    raw = _valid()
    raw["trainig"] = {"epochs": 3}
    with pytest.raises(InvalidParametersError, match=r"trainig: unknown parameter"):
        validate_parameters(raw)


@pytest.mark.parametrize(("lower", "upper"), [(-0.1, 0.3), (0.4, 0.3), (0.1, 1.0)])
def test_rrelu_bounds_are_checked_with_the_values_quoted(lower, upper):
    raw = _valid()
    raw["activations"] = {"relu": {"type": "relu"}, "rrelu": {"type": "rrelu", "lower": lower, "upper": upper}}
    with pytest.raises(InvalidParametersError, match=rf"lower={lower}, upper={upper}"):
        validate_parameters(raw)


def test_unknown_activation_type_lists_the_valid_ones():
    raw = _valid()
    raw["activations"] = {"relu": {"type": "relu"}, "rrelu": {"type": "swish"}}
    with pytest.raises(InvalidParametersError, match=r"'relu', 'rrelu', 'leaky_relu', 'prelu', 'elu'"):
        validate_parameters(raw)


def test_rrelu_spec_defaults_match_the_paper():
    spec = RReLUSpec()
    assert (spec.lower, spec.upper) == (1 / 8, 1 / 3)


def test_lists_can_be_written_without_commas_for_the_cli():
    """kedro run --params splits on commas, so lists are also accepted as words."""
    raw = _valid(training__seeds="0 1 2", compare__activations="relu rrelu")
    params = validate_parameters(raw)
    assert params.training.seeds == [0, 1, 2]
    assert params.compare.activations == ["relu", "rrelu"]
    assert validate_parameters(_valid(training__seeds="[3;4]")).training.seeds == [3, 4]
    with pytest.raises(InvalidParametersError, match=r"training.seeds = '0 x': Value error, expected integers"):
        validate_parameters(_valid(training__seeds="0 x"))
