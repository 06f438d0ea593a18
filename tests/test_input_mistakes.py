"""Every input mistake ends in one short message, no traceback (issue 22, item 6).

Each case is the real ``kedro run`` on a project copy; each is refused before
anything is loaded or trained, in a few lines that name the input and the value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from activation_compare.datasets.types import LabelledImages
from activation_compare.params import InvalidParametersError
from activation_compare.pipelines.data_ingestion.nodes import stratified_subsample
from conftest import kedro_cli

DASK = ("--runner", "activation_compare.runner.DaskRunner")

CASES = {
    "limit_train below the classes": (
        ("--env", "smoke", "--params", "data.limit_train=5,training.batch_size=2"),
        "data.limit_train = 5: smaller than the 10 classes",
    ),
    "rigorous validation_size": (
        ("--env", "smoke", "--params", "compare.protocol=rigorous,tuning.validation_size=595"),
        "tuning.validation_size=595",
    ),
    "n_workers=0": (
        ("--env", "smoke", *DASK, "--runner-params", "n_workers=0"),
        "n_workers = 0: expected a whole number of at least 1",
    ),
    "n_workers=zero": (
        ("--env", "smoke", *DASK, "--runner-params", "n_workers=zero"),
        "n_workers = 'zero': expected a whole number of at least 1",
    ),
    "address=not-a-url": (
        ("--env", "smoke", *DASK, "--runner-params", "address=not-a-url"),
        "address = 'not-a-url': expected a Dask scheduler address",
    ),
    "--env doesnotexist": (
        ("--env", "doesnotexist"),
        "--env doesnotexist: there is no configuration folder",
    ),
    "a YAML tag in --params": (
        ("--env", "smoke", "--params", "training.epochs=!!python/object:os.system 1"),
        "YAML tags (!!python/…, !tag) and aliases (*name, &name) are not allowed",
    ),
    "an undefined alias in --params": (
        ("--env", "smoke", "--params", "training.epochs=*undefined"),
        "found undefined alias",
    ),
    # Kedro's own options: each ended in a 30-45 line traceback.
    "max_workers=0": (
        ("--env", "smoke", "--runner", "ParallelRunner", "--runner-params", "max_workers=0"),
        "--runner-params max_workers = 0: expected a whole number of at least 1",
    ),
    "an unknown runner": (
        ("--env", "smoke", "--runner", "NoSuchRunner"),
        "--runner NoSuchRunner: no such runner; expected SequentialRunner",
    ),
    "an option the runner does not take": (
        ("--env", "smoke", *DASK, "--runner-params", "threads_per_worker=2"),
        "--runner-params threads_per_worker: not an option of DaskRunner; expected address, n_workers",
    ),
    "an unknown pipeline": (
        ("--env", "smoke", "--pipeline", "doesnotexist"),
        "--pipeline doesnotexist: no such pipeline; expected one of: compare, data_ingestion",
    ),
    "an unknown node": (
        ("--env", "smoke", "--from-nodes", "relu.train_model_relu_seed1_node"),
        "(did you mean relu.train_model_relu_seed0_node?)",
    ),
    "a tag no node has": (
        ("--env", "smoke", "--tags", "nope"),
        "No node of the pipeline matches the options given",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_input_mistake_is_one_short_message(project_copy: Path, case: str) -> None:
    args, fragment = CASES[case]
    result = kedro_cli(project_copy, "run", *args, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert fragment in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert len(output.strip().splitlines()) <= 8, output[-3000:]
    assert not list(project_copy.rglob("*.keras"))  # nothing was trained


def test_a_subsample_smaller_than_the_classes_is_a_parameter_error() -> None:
    """Where the class count is only known after loading (an archive), still no traceback."""
    data = LabelledImages(
        images=np.zeros((30, 32, 32, 3), dtype=np.uint8), labels=np.arange(30) % 3
    )
    with pytest.raises(InvalidParametersError, match=r"data.limit_test=2 is smaller than the 3"):
        stratified_subsample(data, 2, seed=0, split="test")
