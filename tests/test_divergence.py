"""The divergence check: a loss that explodes without becoming NaN stops the run."""

import math

import pytest

from activation_compare.divergence import (
    LossDivergedError,
    check_divergence,
    divergence,
)
from activation_compare.errors import UserError


@pytest.mark.parametrize(
    "losses",
    [[], [2.3], [2.3, 1.9, 1.5], [2.3, 2.5, 40.0], [2.3, math.nan], [2.3, math.inf], [5e5]],
)
def test_a_learning_or_merely_noisy_run_is_not_diverging(losses):
    assert divergence(losses) is None


def test_a_loss_above_the_ceiling_is_diverging():
    problem = divergence([2.3, 8e22])
    assert problem == "the training loss reached 8e+22 at epoch 2, above 1e+06"
    assert divergence([2e6]) is not None  # already at epoch 1


def test_a_loss_grown_a_thousandfold_is_diverging():
    problem = divergence([0.5, 3.0, 600.0])
    assert problem is not None and "grew from 0.5 at epoch 1 to 600 at epoch 3" in problem
    assert divergence([0.5, 3.0, 499.0]) is None


def test_check_divergence_names_the_model_the_epoch_and_what_to_do():
    check_divergence("relu seed 0", [2.3, 1.8], 0.001)
    with pytest.raises(LossDivergedError) as info:
        check_divergence("relu seed 0", [2.3, 1e8], 10.0)
    message = str(info.value)
    assert message.startswith("Training relu seed 0 stopped: the training loss reached 1e+08 at epoch 2")
    assert "training.optimizer.learning_rate=1" in message
    assert isinstance(info.value, UserError)
