"""When is a training run diverging? A pure check on the per-epoch losses.

A far too large learning rate does not always reach NaN: the cross-entropy
can climb to 1e22 and training goes on, producing a useless model with no
warning. The training node asks :func:`check_divergence` after every epoch;
NaN and infinity are the node's own check (``NonFiniteLossError``).

Thresholds: a mean training loss above ``LOSS_CEILING`` (a 10-class
cross-entropy starts near ln 10 ≈ 2.3, so 1e6 is far beyond any model that
learns), or ``GROWTH_LIMIT`` times the first epoch's loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from activation_compare.errors import UserError

LOSS_CEILING = 1e6
GROWTH_LIMIT = 1000.0


class LossDivergedError(UserError, RuntimeError):
    """The training loss exploded without becoming NaN: the run is stopped."""


def divergence(
    losses: Sequence[float],
    *,
    ceiling: float = LOSS_CEILING,
    growth: float = GROWTH_LIMIT,
) -> str | None:
    """Why the training loss is diverging, or None while it is not.

    Args:
        losses: the mean training loss of every epoch so far, epoch 1 first.
        ceiling: the largest loss accepted.
        growth: the largest accepted ratio of the last loss to the first epoch's.
    """
    if not losses:
        return None
    last, epoch = float(losses[-1]), len(losses)
    if not math.isfinite(last):
        return None  # NaN and infinity are reported as such by the training node
    if last > ceiling:
        return f"the training loss reached {last:.3g} at epoch {epoch}, above {ceiling:.0e}"
    first = float(losses[0])
    if epoch > 1 and math.isfinite(first) and first > 0 and last > growth * first:
        return (
            f"the training loss grew from {first:.3g} at epoch 1 to {last:.3g} at epoch "
            f"{epoch}, more than {growth:g} times"
        )
    return None


def check_divergence(model: str, losses: Sequence[float], learning_rate: float) -> None:
    """Raise :class:`LossDivergedError` naming ``model`` if its loss is diverging.

    Args:
        model: how messages name the model (e.g. ``rrelu seed 0``).
        losses: the mean training loss of every epoch so far, epoch 1 first.
        learning_rate: the run's ``training.optimizer.learning_rate``, quoted in the advice.
    """
    problem = divergence(losses)
    if problem is None:
        return
    raise LossDivergedError(
        f"Training {model} stopped: {problem}; the model is diverging. Allowed: a loss "
        f"below {LOSS_CEILING:.0e} and under {GROWTH_LIMIT:g} times the first epoch's. "
        f"Lower training.optimizer.learning_rate (now {learning_rate:g}), e.g. "
        f"--params training.optimizer.learning_rate={learning_rate / 10:g}, and run again."
    )
