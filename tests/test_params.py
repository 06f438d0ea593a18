import pytest

from activation_compare.params import (
    InvalidParametersError,
    ProjectParameters,
    RReLUSpec,
    check_batch_size,
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
        ({"training__seeds": [0, 0]}, r"training.seeds = \[0, 0\]: seeds must be distinct"),
        ({"training__seeds": ["a"]}, r"training.seeds.0 = 'a': Input should be a valid integer"),
        ({"training__seeds": [1.5]}, r"training.seeds.0 = 1.5"),
        ({"training__seeds": [-1]}, r"training.seeds.0 = -1: a seed must be from 0 to 4294967295 \(2\*\*32 - 1\)"),
        ({"training__seeds": [0, 2**32]}, r"training.seeds.1 = 4294967296: a seed must be from 0 to 4294967295"),
        ({"training__seeds": "1 100000000000000000000000"}, r"training.seeds.1 = 100000000000000000000000: a seed must be"),
        ({"data__split_seed": -5}, r"data.split_seed = -5: a seed must be from 0 to 4294967295"),
        ({"tuning__seed": 2**32}, r"tuning.seed = 4294967296: a seed must be from 0 to 4294967295"),
        ({"training__epochs": True}, r"training.epochs = True: Input should be an integer, not true or false"),
        ({"training__batch_size": False}, r"training.batch_size = False: Input should be an integer, not true or false"),
        ({"training__trainig": 1}, r"training.trainig: unknown parameter"),
        ({"model__precision": "fp8"}, r"model.precision = 'fp8': Input should be 'auto', 'float32', 'bfloat16' or 'float16'"),
        ({"compare__activations": []}, r"compare.activations is empty; name one or more .*\['elu', 'leaky_relu', 'prelu', 'relu', 'rrelu'\]"),
        ({"compare__activations": None}, r"compare.activations is empty"),
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


def test_seeds_at_the_edges_of_their_range_pass():
    params = validate_parameters(_valid(training__seeds=[0, 2**32 - 1], data__split_seed=2**32 - 1, tuning__seed=0))
    assert params.training.seeds == [0, 4294967295] and params.data.split_seed == 4294967295


def test_bad_seeds_and_a_boolean_epoch_count_are_refused_up_front_in_one_message():
    """What ``kedro run`` prints (the project hook validates before any data loads or run starts)."""
    from types import SimpleNamespace

    from activation_compare.hooks.project import ProjectHooks

    raw = _valid(training__seeds="-1 4294967296 100000000000000000000000", data__split_seed=-5, training__epochs=True)
    context = SimpleNamespace(env=None, config_loader={"globals": {}, "parameters": raw})
    with pytest.raises(InvalidParametersError) as raised:
        ProjectHooks().after_context_created(context)
    problems = [line for line in str(raised.value).splitlines() if line.startswith("  - ")]
    assert problems == [
        "  - data.split_seed = -5: a seed must be from 0 to 4294967295 (2**32 - 1)",
        "  - training.epochs = True: Input should be an integer, not true or false",
        "  - training.seeds.0 = -1: a seed must be from 0 to 4294967295 (2**32 - 1)",
        "  - training.seeds.1 = 4294967296: a seed must be from 0 to 4294967295 (2**32 - 1)",
        "  - training.seeds.2 = 100000000000000000000000: a seed must be from 0 to 4294967295 (2**32 - 1)",
    ]


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
    with pytest.raises(InvalidParametersError, match=r"training.seeds = '0 x': expected integers"):
        validate_parameters(_valid(training__seeds="0 x"))


def test_no_message_starts_with_a_pydantic_prefix():
    with pytest.raises(InvalidParametersError) as info:
        validate_parameters(_valid(data__source="image_folder"))
    lines = str(info.value).splitlines()[1:-1]
    assert lines and all(not line.lstrip(" -").startswith(("<root>", "Value error")) for line in lines)
    assert "Value error," not in str(info.value)


def test_rrelu_bounds_error_names_the_activation():
    raw = _valid()
    raw["activations"] = {"relu": {"type": "relu"}, "rrelu": {"type": "rrelu", "lower": 0.5, "upper": 0.2}}
    with pytest.raises(InvalidParametersError, match=r"  - activations\.rrelu: RReLU needs 0 <= lower"):
        validate_parameters(raw)
    raw["activations"]["rrelu"] = {"type": "rrelu", "lower": "x"}
    with pytest.raises(InvalidParametersError, match=r"activations\.rrelu\.lower = 'x'"):
        validate_parameters(raw)


@pytest.mark.parametrize(
    ("section", "key", "suggestion"),
    [
        ("training", "learning_rate", "training.optimizer.learning_rate"),
        ("training", "epoch", "training.epochs"),
        ("data", "validation_splt", "data.validation_split"),
        ("compare", "activation", "compare.activations"),
    ],
)
def test_a_misspelt_parameter_suggests_the_schema_name(section, key, suggestion):
    raw = _valid()
    raw[section][key] = 1
    with pytest.raises(InvalidParametersError, match=rf"{section}\.{key}: unknown parameter; did you mean {suggestion}\?"):
        validate_parameters(raw)


def test_a_misspelt_activation_option_suggests_the_option():
    raw = _valid()
    raw["activations"] = {"relu": {"type": "relu"}, "rrelu": {"type": "rrelu", "lowr": 0.1}}
    with pytest.raises(InvalidParametersError, match=r"activations\.rrelu\.lowr: unknown parameter; did you mean activations\.rrelu\.lower\?"):
        validate_parameters(raw)


@pytest.mark.parametrize(
    ("given", "seeds"), [(5, [5]), ("5", [5]), ("0 1 2", [0, 1, 2]), ([3, 4], [3, 4])]
)
def test_one_seed_on_the_command_line_is_a_one_element_list(given, seeds):
    assert validate_parameters(_valid(training__seeds=given)).training.seeds == seeds


def test_one_activation_on_the_command_line_is_a_one_element_list():
    params = validate_parameters(_valid(compare__activations="rrelu", compare__baseline="rrelu"))
    assert params.compare.activations == ["rrelu"]


# --- the batch size against the data, before the run ------------------------


def test_a_batch_larger_than_limit_train_is_refused_at_validation():
    with pytest.raises(InvalidParametersError, match=r"training.batch_size = 500: larger than the 300 images .*data.limit_train=300"):
        validate_parameters(_valid(training__batch_size=500, data__limit_train=300))


@pytest.mark.parametrize(
    ("data", "source_images", "batch", "fits"),
    [
        ({"source": "cifar10"}, 50_000, 50_000, True),
        ({"source": "cifar10"}, 50_000, 50_001, False),
        ({"source": "cifar10", "validation_split": 0.2}, 50_000, 40_001, False),
        ({"source": "cifar10", "validation_split": 0.2}, 50_000, 40_000, True),
        ({"source": "synthetic", "limit_train": 500}, 600, 501, False),
        ({"source": "synthetic"}, 600, 601, False),
        ({"source": "synthetic"}, None, 10**6, True),  # unknown until loaded: the node checks
    ],
)
def test_check_batch_size_uses_every_known_size(data, source_images, batch, fits):
    params = ProjectParameters.model_validate({"data": data, "training": {"batch_size": batch}})
    if fits:
        check_batch_size(params, source_images)
        return
    with pytest.raises(InvalidParametersError) as info:
        check_batch_size(params, source_images)
    message = str(info.value)
    assert f"training.batch_size = {batch}: larger than the" in message
    assert f"data.source={data['source']!r}" in message
    if source_images is not None:
        assert f"{source_images:,} training images" in message


def test_sources_report_their_training_size_without_loading(tmp_path):
    from activation_compare.datasets import ImageSourceDataset

    assert ImageSourceDataset("cifar10", download_dir=str(tmp_path)).train_images() == 50_000
    synthetic = ImageSourceDataset("synthetic", synthetic={"n_train": 30, "n_test": 10})
    assert synthetic.train_images() == 30
    for split, count in (("train", 3), ("test", 1)):
        for cls in ("a", "b"):
            folder = tmp_path / "images" / split / cls
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"{index}.png").write_bytes(b"")
    folder_source = ImageSourceDataset("image_folder", path=str(tmp_path / "images"))
    assert folder_source.train_images() == 6
    archive = ImageSourceDataset("image_folder", path=str(tmp_path / "images.tar.gz"))
    assert archive.train_images() is None
