"""The one report of a trained model's evaluation: its metrics, its curves, and what produced it.

:class:`Report` is what the evaluation node returns, what the catalog saves as
``{activation}.report_seed{seed}`` (:class:`ReportDataset`, a versioned JSON
file), what the comparison, the MLflow artifacts and the Model Registry read.
Besides the metrics it carries the identity of the model (activation, seed)
and the settings that trained it (:class:`TrainingSettings`) and the data it
was trained and tested on (:class:`DataIdentity`), so that reports that do not
belong together are never put side by side (:func:`mismatches`).

The file format is versioned (``format``); a report written before the format
carried identity and settings is refused with :class:`OldReportError`, which
says how to regenerate it.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from activation_compare.errors import UserError

REPORT_FORMAT = 2
# The settings that may differ between reports of one comparison, by protocol:
# the rigorous protocol chooses a learning rate per activation.
_PER_ACTIVATION = frozenset({"activation_spec"})
_PER_ACTIVATION_RIGOROUS = frozenset({"activation_spec", "learning_rate"})
REGENERATE = (
    "rerun the `kedro run` command that made it: the evaluation runs again on the trained "
    "models (finished training is reused, not repeated) and writes a report in the current format"
)


class OldReportError(UserError, ValueError):
    """A report file written by an older version of the project (no identity or settings)."""


class ReportMismatchError(UserError, ValueError):
    """Reports that do not belong in one comparison (other settings or data than the run's)."""


@dataclass(frozen=True)
class TrainingSettings:
    """How the model was trained: what makes two models comparable, besides data and seed."""

    architecture: str
    activation_spec: Mapping[str, Any]
    epochs: int
    learning_rate: float
    batch_size: int
    optimizer: str
    protocol: str
    precision: str
    """``model.precision`` as requested (``auto``, ``float32``, ``bfloat16``, ``float16``)."""
    dtype_policy: str
    """The Keras dtype policy the model's layers computed in (``auto`` resolved on the machine)."""


@dataclass(frozen=True)
class DataIdentity:
    """Where the data came from (the ``data`` parameters) and a digest of the test set scored."""

    source: str
    path: str | None
    limit_train: int | None
    limit_test: int | None
    validation_split: float
    split_seed: int
    max_images: int
    test_images: int
    test_digest: str


@dataclass(frozen=True)
class Curves:
    """The per-epoch history (epochs numbered from 1, as in ``history.csv``)."""

    epoch: tuple[int, ...]
    loss: tuple[float, ...]
    accuracy: tuple[float, ...]
    val_loss: tuple[float, ...]
    val_accuracy: tuple[float, ...]
    epoch_time_s: tuple[float, ...]


@dataclass(frozen=True)
class Report:
    """A trained model's evaluation on the test set, with the run and settings that produced it."""

    model: str
    activation: str
    seed: int
    settings: TrainingSettings
    data: DataIdentity
    epochs_trained: int
    parameter_count: int
    test_accuracy: float
    best_val_accuracy: float
    best_epoch: int
    final_train_accuracy: float
    final_val_accuracy: float
    mean_epoch_time_s: float
    per_class_accuracy: Mapping[str, float]
    class_names: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    curves: Curves
    format: int = field(default=REPORT_FORMAT)

    @property
    def train_test_gap(self) -> float:
        """Final training accuracy minus test accuracy: how much the model overfits."""
        return self.final_train_accuracy - self.test_accuracy

    @property
    def median_epoch_time_s(self) -> float:
        times = [t for t in self.curves.epoch_time_s if math.isfinite(t)]
        return float(statistics.median(times)) if times else float("nan")

    @property
    def training_time_s(self) -> float:
        """The sum of the epochs' times: what training this model took (resumed epochs included)."""
        return float(math.fsum(t for t in self.curves.epoch_time_s if math.isfinite(t)))

    def metrics(self) -> dict[str, float]:
        """The final metrics, by name (MLflow's metric keys, the comparison table's columns)."""
        return {
            "test_accuracy": self.test_accuracy,
            "final_train_accuracy": self.final_train_accuracy,
            "final_val_accuracy": self.final_val_accuracy,
            "best_val_accuracy": self.best_val_accuracy,
            "best_epoch": float(self.best_epoch),
            "train_test_gap": self.train_test_gap,
            "mean_epoch_time_s": self.mean_epoch_time_s,
        }

    def settings_id(self) -> str:
        """A short id of the training settings and data, the same for every model of one comparison."""
        return settings_id(self.settings, self.data)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON values, ``format`` first (what ``report.json`` files hold)."""
        value = asdict(self)
        value.pop("format")
        return {"format": self.format, **_plain(value), "train_test_gap": self.train_test_gap}

    @classmethod
    def from_json(cls, value: Mapping[str, Any], source: str = "the report") -> Report:
        """The report saved by :meth:`to_json`.

        Raises:
            OldReportError: If ``value`` is a report of another format (one written
                before reports carried their settings), naming ``source``.
        """
        found = value.get("format") if isinstance(value, Mapping) else None
        if found != REPORT_FORMAT:
            what = "has no format field" if found is None else f"has format {found!r}, not {REPORT_FORMAT}"
            raise OldReportError(
                f"{source} {what}: it was written by an older activation-compare, without the "
                f"settings and data that produced it, so it cannot be compared; {REGENERATE}."
            )
        try:
            curves = Curves(**{f.name: tuple(value["curves"][f.name]) for f in fields(Curves)})
            settings = TrainingSettings(**value["settings"])
            data = DataIdentity(**value["data"])
            plain = {
                f.name: value[f.name]
                for f in fields(cls)
                if f.name not in {"settings", "data", "curves", "format"}
            }
        except (KeyError, TypeError) as exc:
            raise OldReportError(f"{source} is not a complete report (format {REPORT_FORMAT}): {exc}; {REGENERATE}.") from None
        plain["class_names"] = tuple(plain["class_names"])
        plain["confusion_matrix"] = tuple(tuple(row) for row in plain["confusion_matrix"])
        return cls(**plain, settings=settings, data=data, curves=curves)


def _plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts: what JSON holds."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def settings_id(settings: TrainingSettings, data: DataIdentity) -> str:
    """A 12-character digest of training settings (the activation's own spec left out) and data."""
    shared = {k: v for k, v in _plain(asdict(settings)).items() if k not in _PER_ACTIVATION}
    text = json.dumps({"settings": shared, "data": _plain(asdict(data))}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _differences(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str, skip: frozenset[str]) -> list[str]:
    return [
        f"{prefix}{name} {a.get(name)!r} vs {b.get(name)!r}"
        for name in sorted(set(a) | set(b))
        if name not in skip and a.get(name) != b.get(name)
    ]


def mismatches(
    reports: Sequence[Report],
    expected: Mapping[str, Any],
    *,
    rigorous: bool,
    learning_rates: Mapping[str, float] | None = None,
) -> list[str]:
    """Why ``reports`` do not belong in one comparison with the run's parameters ``expected``.

    Args:
        reports: The reports to compare.
        expected: What the comparison prints as its settings, with the report's
            field names: ``settings.epochs``, ``settings.batch_size``,
            ``settings.learning_rate``, ``settings.protocol``, ``data.source`` …
        rigorous: The rigorous protocol: learning rates differ per activation
            (each must be ``learning_rates[activation]``, the rate its tuning chose).
        learning_rates: The chosen rate per activation (rigorous protocol).

    Returns:
        One line per report that disagrees: its model, what differs and the value expected.
        Empty when they all belong together.
    """
    skip = _PER_ACTIVATION_RIGOROUS if rigorous else _PER_ACTIVATION
    problems = []
    for report in reports:
        found = {
            **{f"settings.{k}": v for k, v in _plain(asdict(report.settings)).items() if k not in skip},
            **{f"data.{k}": v for k, v in _plain(asdict(report.data)).items()},
        }
        wrong = [
            f"{name} is {found[name]!r}, the comparison's is {value!r}"
            for name, value in expected.items()
            if name in found and found[name] != value
        ]
        if rigorous and learning_rates and report.activation in learning_rates:
            chosen = learning_rates[report.activation]
            if not math.isclose(report.settings.learning_rate, chosen, rel_tol=1e-12):
                wrong.append(f"settings.learning_rate is {report.settings.learning_rate!r}, its tuning chose {chosen!r}")
        if wrong:
            problems.append(f"{report.model} ({report.settings_id()}): {'; '.join(wrong)}")
    if not problems and reports:
        first = reports[0]
        first_settings = {k: v for k, v in _plain(asdict(first.settings)).items() if k not in skip}
        for report in reports[1:]:
            other = {k: v for k, v in _plain(asdict(report.settings)).items() if k not in skip}
            wrong = _differences(first_settings, other, "settings.", frozenset())
            wrong += _differences(_plain(asdict(first.data)), _plain(asdict(report.data)), "data.", frozenset())
            if wrong:
                problems.append(f"{first.model} and {report.model} differ: {'; '.join(wrong)}")
    return problems

