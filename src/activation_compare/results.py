"""The docs' results tables and curves, generated from committed comparison summaries.

A results table in README.md or docs/*.md is a generated block between markers
naming the table and the ``comparison_summary.json`` it comes from (a path
from the repository root)::

    <!-- results: table=per_seed source=docs/results/original-50-epochs/comparison_summary.json -->
    …generated: the table, then a line naming the JSON and this command…
    <!-- /results -->

Tables: ``per_seed`` (one row per model), ``per_activation`` (mean ± s.d. over
seeds), ``comparisons`` (each activation against the baseline, raw and adjusted
for the number of comparisons, and whether the difference holds), the same
renderers as the run's own ``comparison.md``
(:mod:`activation_compare.pipelines.reporting.summary`).

Commands (from the repository root)::

    python -m activation_compare.results docs/results.md README.md   # rewrite the blocks
    python -m activation_compare.results --check                     # README.md, docs/*.md: exit 1 and a diff if any differs
    python -m activation_compare.results figure SUMMARY.json OUT.png # mean train/validation curves ± s.d.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from activation_compare.errors import UserError

COMMAND = "python -m activation_compare.results"
_BLOCK = re.compile(
    r"(?P<open><!-- results: (?P<args>[^>]*?) -->)\n(?P<body>.*?)(?P<close><!-- /results -->)", re.DOTALL
)


class ResultsError(UserError, ValueError):
    """A results block or summary that cannot be generated (unknown table, missing or old summary)."""


@dataclass(frozen=True)
class Block:
    """One generated block: which table, from which summary (a path from the repository root)."""

    table: str
    source: str


def _parse(args: str, where: str) -> Block:
    fields = dict(part.split("=", 1) for part in args.split() if "=" in part)
    from activation_compare.pipelines.reporting.summary import TABLES

    if set(fields) != {"table", "source"} or fields["table"] not in TABLES:
        raise ResultsError(
            f"{where}: a results block needs table=<{'|'.join(TABLES)}> source=<summary JSON>, got {args!r}"
        )
    return Block(fields["table"], fields["source"])


def repository_root(start: Path) -> Path:
    """The folder above ``start`` holding ``pyproject.toml`` (where block sources are relative to)."""
    for folder in [start.resolve(), *start.resolve().parents]:
        if (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def load_summary(path: Path) -> dict[str, Any]:
    """A ``comparison_summary.json`` of the current format.

    Raises:
        ResultsError: If it is missing, unreadable or of an older format.
    """
    from activation_compare.pipelines.reporting.summary import SUMMARY_FORMAT

    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read the summary {path}: {exc}") from None
    if not isinstance(summary, Mapping) or summary.get("format") != SUMMARY_FORMAT:
        found = summary.get("format") if isinstance(summary, Mapping) else None
        raise ResultsError(
            f"{path} is a comparison summary of format {found!r}, not {SUMMARY_FORMAT}: regenerate it by "
            "rerunning the `kedro run` command that made it (trained models are reused and re-evaluated)"
        )
    return dict(summary)


def render(block: Block, summary: Mapping[str, Any], markdown_file: str) -> str:
    """The body of a block: the table, a blank line, and the line saying where it comes from."""
    from activation_compare.pipelines.reporting.summary import TABLES

    provenance = summary.get("provenance") or {}
    facts = ", ".join(
        str(part)
        for part in (
            provenance.get("data_name"),
            f"{provenance['epochs']} epochs" if "epochs" in provenance else None,
            f"seeds {','.join(str(s) for s in provenance.get('seeds', []))}" if provenance.get("seeds") else None,
            provenance.get("dtype_policy"),
            provenance.get("date"),
            f"commit {provenance['git_commit'][:10]}" if provenance.get("git_commit") else None,
        )
        if part
    )
    lines = [*TABLES[block.table](summary), ""]
    if block.table == "comparisons" and summary.get("multiple_comparisons"):
        lines += [summary["multiple_comparisons"]["sentence"], ""]
    lines += [
        f"<sub>Generated from `{block.source}` ({facts}) by `{COMMAND} {markdown_file}`.</sub>",
    ]
    return "\n".join(lines) + "\n"


def regenerate(text: str, markdown_file: str, root: Path) -> str:
    """``text`` with every results block regenerated from its summary."""
    summaries: dict[str, dict[str, Any]] = {}

    def replace(match: re.Match[str]) -> str:
        line = text.count("\n", 0, match.start()) + 1
        block = _parse(match.group("args"), f"{markdown_file}:{line}")
        if block.source not in summaries:
            summaries[block.source] = load_summary(root / block.source)
        body = render(block, summaries[block.source], markdown_file)
        return f"{match.group('open')}\n{body}{match.group('close')}"

    return _BLOCK.sub(replace, text)


def default_files(root: Path) -> list[Path]:
    """README.md and every docs/*.md of the repository."""
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def update(files: Sequence[Path], root: Path, check: bool) -> int:
    """Rewrite (or, with ``check``, compare) the results blocks of ``files``; the exit status."""
    status = 0
    for path in files:
        name = str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)
        text = path.read_text(encoding="utf-8")
        new = regenerate(text, name, root)
        if new == text:
            continue
        if check:
            status = 1
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True), new.splitlines(keepends=True), f"{name} (committed)",
                    f"{name} (generated)",
                )
            )
        else:
            path.write_text(new, encoding="utf-8")
            print(f"{name}: results blocks regenerated")
    if check and status:
        print(f"\nResults tables differ from their summaries; regenerate them: {COMMAND} {' '.join(map(str, files))}")
    return status


def figure(summary_path: Path, out: Path) -> None:
    """Draw the mean train and validation accuracy ± s.d. per activation over epochs into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from activation_compare.pipelines.reporting.figures import curves_figure

    summary = load_summary(summary_path)
    drawn = curves_figure(summary["curves"], summary.get("provenance"))
    out.parent.mkdir(parents=True, exist_ok=True)
    drawn.savefig(out, dpi=120)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["figure"]:
            parser = argparse.ArgumentParser(prog=f"{COMMAND} figure", description=figure.__doc__)
            parser.add_argument("summary", type=Path)
            parser.add_argument("out", type=Path)
            options = parser.parse_args(args[1:])
            figure(options.summary, options.out)
            print(f"{options.out}: curves of {options.summary}")
            return 0
        parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
        parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md, docs/*.md)")
        parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a block differs")
        options = parser.parse_args(args)
        root = repository_root(options.files[0].parent if options.files else Path.cwd())
        return update(options.files or default_files(root), root, options.check)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
