"""The contract: what a model is called, and where a run's outputs live.

Every trained model is one :class:`ModelKey`: an activation (the Kedro
namespace), a seed and, for a learning-rate tuning trial, the trial's index.
Everything that has to find a model (the pipelines that create its nodes and
datasets, the tracking that opens its MLflow run, the progress log, the
report) derives the names from the key with the methods below, and looks a
node or dataset up in a :class:`ComparePlan`; nothing parses a name back into
its parts.

Where outputs live (the catalog implements it, ``conf/base/catalog.yml``):

- Each Kedro environment has its own outputs folder (``globals`` ``paths.outputs``:
  ``data`` for the default environment, ``data/<env>`` for the others), so a
  smoke run never touches a real run's files. Inputs and caches
  (``paths.inputs``) are shared: they are checked against their checksums or
  fingerprints when read.
- Within it, every file a run writes is saved as a Kedro version named after
  the run (``06_models/relu_seed0.keras/<run>/relu_seed0.keras``), and a run
  loads the version it saved itself (``datasets.atomic``): no run overwrites
  another's results or evaluates another's model, concurrent runs included.
- Checkpoints, the one thing runs share on purpose, are kept per model *and*
  per training fingerprint (``06_models/checkpoints/relu_seed0/<fingerprint>/``):
  a run resumes or reuses only a checkpoint trained on exactly its settings
  and data, and never deletes one trained on others.

Epochs are numbered from 1 everywhere a person or a tool sees them: logs,
figures, ``history.csv``, reports and MLflow steps (:data:`FIRST_EPOCH`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from activation_compare.params.schema import Protocol

#: The number of the first epoch, in every output (Keras counts from 0 inside ``fit``).
FIRST_EPOCH = 1

# Datasets shared by every model (the normalized data), by their catalog names.
TRAIN_SET = "train_set"
VALIDATION_SET = "validation_set"
TEST_SET = "test_set"
CLASS_NAMES = "class_names"

# The comparison over all models (the reporting pipeline).
COMPARE_NODE = "compare_activations_node"

# The rigorous protocol's learning-rate choice, one per activation, inside its
# namespace: ``tuning_name(activation, SELECT_NODE)`` is ``relu.select_learning_rate_node``.
SELECT_NODE = "select_learning_rate_node"
# The chosen learning rate (a float) and the record of why (every trial's score).
LEARNING_RATE = "learning_rate"
LEARNING_RATE_SELECTION = "learning_rate_selection"


def tuning_name(activation: str, local: str) -> str:
    """The full name of an activation's tuning node or dataset, e.g. ``relu.learning_rate``."""
    return f"{activation}.{local}"


class Role(StrEnum):
    """What a per-model dataset holds; its catalog name is ``key.dataset(role)``."""

    UNTRAINED_MODEL = "untrained_model"
    CHECKPOINTS = "training_state"
    MODEL = "model"
    HISTORY = "history"
    REPORT = "report"
    ACCURACY_CURVES = "accuracy_curves"
    CONFUSION_MATRIX = "confusion_matrix"
    # A tuning trial's score on the validation split (rigorous protocol).
    TRIAL_SCORE = "trial_score"


class Step(StrEnum):
    """The nodes every model has; the node's name is ``key.node(step)``."""

    BUILD = "build_model"
    TRAIN = "train_model"
    EVALUATE = "evaluate_model"
    PLOT = "plot_model_figures"
    # A tuning trial's score from its validation curve (rigorous protocol).
    SCORE = "score_trial"


class ComparisonOutput(StrEnum):
    """The outputs of the comparison node, by catalog name."""

    TABLE = "comparison_table"
    MARKDOWN = "comparison_markdown"
    CURVES = "comparison_curves"
    SUMMARY = "comparison_summary"


# MLflow tags that name a model's run (tracking sets them; any process can
# search for them, so a worker finds its model's run without shared state).
TAG_MODEL = "activation_compare.model"
TAG_ACTIVATION = "activation"
TAG_SEED = "seed"
TAG_TRIAL = "trial"
# The MLflow run that holds one activation's tuning trials (rigorous protocol).
TAG_TUNING = "activation_compare.tuning"


@dataclass(frozen=True, order=True)
class ModelKey:
    """One trained model: an activation, a seed and, for a tuning trial, its index.

    Example: ``ModelKey("relu", 0)`` is the model ``relu_seed0``: datasets
    ``relu.model_seed0``, ``relu.history_seed0`` …, nodes
    ``relu.train_model_relu_seed0_node`` …, MLflow run ``relu-seed0``.
    ``ModelKey("relu", 0, trial=2)`` is ``relu_trial2_seed0``.
    """

    activation: str
    seed: int
    trial: int | None = None

    @property
    def token(self) -> str:
        """The part of every name that tells this model from the others in its namespace."""
        trial = "" if self.trial is None else f"trial{self.trial}_"
        return f"{trial}seed{self.seed}"

    @property
    def name(self) -> str:
        """The model's name in file names and logs, e.g. ``relu_seed0``."""
        return f"{self.activation}_{self.token}"

    @property
    def namespace(self) -> str:
        """The Kedro namespace the model's nodes and datasets live in."""
        return self.activation

    @property
    def run_name(self) -> str:
        """The model's MLflow run name, e.g. ``relu-seed0``."""
        return self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """How logs and figures name the model, e.g. ``relu, seed 0``."""
        trial = "" if self.trial is None else f", trial {self.trial}"
        return f"{self.activation}{trial}, seed {self.seed}"

    def local_dataset(self, role: Role) -> str:
        """The dataset's name inside the model's namespace (for the template pipeline)."""
        return f"{Role(role).value}_{self.token}"

    def dataset(self, role: Role) -> str:
        """The dataset's full catalog name, e.g. ``relu.model_seed0``."""
        return f"{self.namespace}.{self.local_dataset(role)}"

    def local_node(self, step: Step) -> str:
        """The node's name inside the model's namespace (for the template pipeline).

        It names the activation too, although the namespace does: kedro-viz labels a
        node with this name alone, and two blocks' ``train_model_seed0_node`` would
        look the same.
        """
        return f"{Step(step).value}_{self.name}_node"

    def node(self, step: Step) -> str:
        """The node's full name, e.g. ``relu.train_model_relu_seed0_node``."""
        return f"{self.namespace}.{self.local_node(step)}"

    def node_tags(self) -> list[str]:
        """Kedro tags for ``kedro run --tags``: ``activation.relu``, ``seed.0`` (and ``trial.2``)."""
        tags = [f"activation.{self.activation}", f"seed.{self.seed}"]
        if self.trial is not None:
            tags.append(f"trial.{self.trial}")
        return tags

    def run_tags(self) -> dict[str, str]:
        """MLflow tags that identify the model's run in any process."""
        tags = {TAG_MODEL: self.name, TAG_ACTIVATION: self.activation, TAG_SEED: str(self.seed)}
        if self.trial is not None:
            tags[TAG_TRIAL] = str(self.trial)
        return tags


@dataclass(frozen=True)
class ComparePlan:
    """Every model of one ``compare`` run, and the lookups from Kedro's names to them.

    Built from the run's validated parameters by :meth:`from_params` (the
    pipeline registry builds the pipelines from it; hooks in any process build
    the same plan from the same parameters).
    """

    models: tuple[ModelKey, ...]
    baseline: str | None = None
    # compare.protocol: whether the models include tuning trials.
    protocol: Protocol = Protocol.ORIGINAL
    _by_node: Mapping[str, tuple[ModelKey, Step]] = field(init=False, repr=False, compare=False)
    _by_dataset: Mapping[str, tuple[ModelKey, Role]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        names = [key.name for key in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"a compare plan names a model twice: {names}")
        by_node = {key.node(step): (key, step) for key in self.models for step in Step}
        by_dataset = {key.dataset(role): (key, role) for key in self.models for role in Role}
        object.__setattr__(self, "_by_node", by_node)
        object.__setattr__(self, "_by_dataset", by_dataset)

    @classmethod
    def of(
        cls, activations: Iterable[str], seeds: Iterable[int], baseline: str | None = None
    ) -> ComparePlan:
        """Final models: every activation with every seed, in that order."""
        seeds = list(seeds)
        return cls(tuple(ModelKey(a, s) for a in activations for s in seeds), baseline)

    @classmethod
    def from_params(cls, params: Any) -> ComparePlan:
        """The plan of a run with these validated parameters (``params.ProjectParameters``).

        Under ``compare.protocol=rigorous`` every activation first has one trial
        model per ``tuning.learning_rates`` entry (trial ``i`` trains with the
        ``i``-th rate, seed ``tuning.seed``), then its final models.
        """
        plan = cls.of(params.compare.activations, params.training.seeds, params.compare.baseline)
        if params.compare.protocol is not Protocol.RIGOROUS:
            return plan
        trials = range(len(params.tuning.learning_rates))
        models = [
            key
            for activation in params.compare.activations
            for key in (
                *(ModelKey(activation, params.tuning.seed, trial=i) for i in trials),
                *plan.models_of(activation),
            )
        ]
        return cls(tuple(models), params.compare.baseline, Protocol.RIGOROUS)

    @property
    def activations(self) -> list[str]:
        """The activations compared, in the order of the parameters."""
        return list(dict.fromkeys(key.activation for key in self.models))

    def models_of(self, activation: str) -> list[ModelKey]:
        """The models of one activation (one namespace)."""
        return [key for key in self.models if key.activation == activation]

    @property
    def final_models(self) -> list[ModelKey]:
        """The models the comparison is made on (every model but the tuning trials)."""
        return [key for key in self.models if key.trial is None]

    def trials_of(self, activation: str) -> list[ModelKey]:
        """The tuning trials of one activation, by trial index (none under the original protocol)."""
        return sorted((k for k in self.models_of(activation) if k.trial is not None), key=lambda k: k.trial)

    def tuning_node(self, name: str) -> str | None:
        """The activation whose learning-rate choice the node ``name`` is, else None."""
        for activation in self.activations:
            if self.trials_of(activation) and name == tuning_name(activation, SELECT_NODE):
                return activation
        return None

    def node(self, name: str) -> tuple[ModelKey, Step] | None:
        """The model and step of a node, by the node's full name; None for shared nodes."""
        return self._by_node.get(name)

    def dataset(self, name: str) -> tuple[ModelKey, Role] | None:
        """The model and role of a dataset, by its catalog name; None for shared datasets."""
        return self._by_dataset.get(name)

    def datasets(self, role: Role) -> list[str]:
        """The catalog names of one role for every model, in plan order."""
        return [key.dataset(role) for key in self.models]
