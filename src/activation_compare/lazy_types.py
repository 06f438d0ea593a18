"""The heavy libraries' types, by name, for node signatures that must not import them.

Kedro resolves every node's annotations (``typing.get_type_hints``) when a run
starts, to turn ``params:`` inputs into the pydantic models of
:mod:`activation_compare.params`. Node modules are imported to build the
pipelines, and ``kedro registry list``, ``kedro run --help`` or a parameter
error should answer in a second, not after TensorFlow's import (tens of
seconds; README, "Speed"). So the nodes import Keras, TensorFlow, pandas and
matplotlib when they run, and annotate with these names: the real classes for
type checkers, :data:`typing.Any` at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keras import Model
    from matplotlib.figure import Figure
    from pandas import DataFrame
else:
    Model = Any
    Figure = Any
    DataFrame = Any

__all__ = ["DataFrame", "Figure", "Model"]
