"""What a figure or comparison was made from: data, environment, epochs, seeds, date, commit.

One description, built from the run's parameters and the catalog's
``run_provenance`` (:class:`~activation_compare.datasets.provenance.RunProvenanceDataset`),
and the two ways it is shown: a figure footer and a Markdown section. Synthetic
data is said plainly on both, so a smoke run's figure is never taken for a
result on CIFAR-10.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from activation_compare.params import DataParams, TrainingParams

SYNTHETIC_WARNING = "SYNTHETIC DATA — not CIFAR-10"
NOT_RECORDED = "provenance not recorded (a comparison written before the project recorded it)"
# The catalog entry of the run's environment, outputs folder, commit and date.
RUN_PROVENANCE = "run_provenance"
# The inputs, after the report, of every node that draws a figure or writes the comparison.
PROVENANCE_INPUTS = [RUN_PROVENANCE, "params:data", "params:training"]


def describe_run(run: dict[str, Any], data: DataParams, training: TrainingParams) -> dict[str, Any]:
    """The provenance of a run's results, JSON-serialisable.

    Args:
        run: The ``run_provenance`` dataset (environment, outputs, git commit, date).
        data: The ``data`` parameters (source, path, subsamples).
        training: The ``training`` parameters (epochs, seeds).
    """
    return {
        "data_source": data.source,
        "data_path": data.path,
        "synthetic": data.source == "synthetic",
        "limit_train": data.limit_train,
        "limit_test": data.limit_test,
        "environment": run["environment"],
        "outputs": run["outputs"],
        "epochs": training.epochs,
        "seeds": list(training.seeds),
        "date": run["date"],
        "git_commit": run["git_commit"],
        "git_local_changes": run.get("git_local_changes"),
        # The data's archive or folder name (the path may be a local one).
        "data_name": PurePath(data.path).name if data.path else data.source,
        "cpu": run.get("cpu"),
        "load_average": run.get("load_average"),
    }


def _data(provenance: dict[str, Any]) -> str:
    source = provenance["data_source"]
    text = f"{source} ({provenance['data_path']})" if provenance["data_path"] else source
    limits = [
        f"{limit} {split} images"
        for split, limit in (("train", provenance["limit_train"]), ("test", provenance["limit_test"]))
        if limit is not None
    ]
    return text + (f", at most {' and '.join(limits)}" if limits else "")


def _commit(provenance: dict[str, Any]) -> str:
    commit = provenance["git_commit"]
    if commit is None:
        return "none (not a git checkout)"
    return commit[:10] + (" + local changes" if provenance.get("git_local_changes") else "")


def provenance_text(provenance: dict[str, Any]) -> str:
    """Two lines for a figure's footer: data and environment; epochs, seeds, date and commit."""
    seeds = ",".join(str(s) for s in provenance["seeds"])
    return (
        f"data: {_data(provenance)} · environment: {provenance['environment']}\n"
        f"{provenance['epochs']} epochs · run's seeds {seeds} · {provenance['date']} · commit {_commit(provenance)}"
    )


def provenance_markdown(provenance: dict[str, Any]) -> list[str]:
    """The ``Provenance`` section of ``comparison.md`` (a warning first when the data are synthetic)."""
    lines = []
    if provenance["synthetic"]:
        lines += [f"> **{SYNTHETIC_WARNING}.** These numbers test the pipeline; they say nothing about the activations.", ""]
    seeds = ", ".join(str(s) for s in provenance["seeds"])
    lines += [
        "## Provenance",
        "",
        f"- data: {_data(provenance)}",
        f"- environment: {provenance['environment']} (outputs in `{provenance['outputs']}`)",
        f"- epochs: {provenance['epochs']}; seeds: {seeds}",
        *_settings_lines(provenance),
        f"- date: {provenance['date']}",
        f"- git commit: {_commit(provenance)}"
        + (f" (`{provenance['git_commit']}`)" if provenance["git_commit"] else ""),
        "",
    ]
    return lines


def _settings_lines(provenance: dict[str, Any]) -> list[str]:
    """Batch size, learning rate, optimizer, precision and CPU, when the provenance has them."""
    lines = []
    if "batch_size" in provenance:
        rate = provenance["learning_rate"]
        rates = (
            ", ".join(f"{name} {value:g}" for name, value in rate.items()) if isinstance(rate, dict) else f"{rate:g}"
        )
        lines.append(
            f"- batch size: {provenance['batch_size']}; {provenance['optimizer']} learning rate: {rates}; "
            f"protocol: {provenance['protocol']}"
        )
        lines.append(
            f"- precision: {provenance['precision']} requested, dtype policy {provenance['dtype_policy']}"
        )
    cpu = provenance.get("cpu")
    if cpu:
        native = "native bfloat16 (AVX512_BF16/AMX)" if cpu.get("bfloat16") else "no native bfloat16"
        lines.append(f"- CPU: {cpu.get('model') or 'unknown'}, {native}")
    if "training_time_s" in provenance:
        load = provenance.get("load_average")
        lines.append(
            f"- training time: {provenance['training_time_s'] / 60:.1f} min, all models"
            + (f"; load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at the comparison" if load else "")
        )
    return lines


def stamp_figure(figure: Any, provenance: dict[str, Any] | None) -> None:
    """Write the provenance under a figure, and SYNTHETIC DATA across it when the data are synthetic.

    ``None``: a comparison written before the project recorded provenance (the
    notebook reads such old runs); the footer says so.
    """
    # supxlabel, not a free text: the constrained layout makes room for it.
    text = provenance_text(provenance) if provenance is not None else NOT_RECORDED
    figure.supxlabel(text, fontsize=7, color="0.35")
    if provenance is not None and provenance["synthetic"]:
        figure.text(
            0.5, 0.5, SYNTHETIC_WARNING, fontsize=3 * figure.get_figwidth(), color="red", alpha=0.35,
            ha="center", va="center", rotation=20, weight="bold",
        )
