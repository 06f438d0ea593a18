"""The commands of README.md and the documentation site, in the order a reader meets them.

Every fenced block whose info string is ``bash`` is a command a user may type,
and the tests run it. A block that must not run says why on the line right
before its fence, in an HTML comment (MkDocs and GitHub render it as nothing)::

    <!-- docs-test: skip=long -->          trains for hours: its smoke twin runs
    <!-- docs-test: background wait=http://127.0.0.1:5000/health -->
    <!-- docs-test: expect="predictions" -->
    <!-- docs-test: exit=1 expect="did you mean" -->   a refusal the page shows

``skip`` takes one of :data:`SKIP_REASONS`; every reason but ``suite`` needs
the block's *smoke twin*, the next ``bash`` block of the page, right beside
it. ``background`` starts a server that the next blocks of the page use,
``wait`` the address that answers once it is up; ``expect`` a text the
block's output must contain; ``exit`` the exit status it must end with (a
page that shows an error; default 0); ``timeout`` seconds (default 300).

``<CIFAR10_ARCHIVE>`` in a block stands for data the user brings (a class-folder
copy of CIFAR-10); the tests fill it with a small generated archive.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Why a block may be left to its twin: what a test machine cannot do.
SKIP_REASONS = {
    "network": "needs the network (a download or a remote service)",
    "gpu": "needs a GPU",
    "cluster": "needs a remote cluster",
    "long": "trains for more than about 5 minutes",
    "suite": "is the test suite itself, which CI runs",
}
PLACEHOLDERS = ("<CIFAR10_ARCHIVE>",)
# A twin starts within this many lines of the end of the block it stands for.
TWIN_DISTANCE = 8

_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


class MarkupError(ValueError):
    """A docs-test directive that the collector cannot follow; the message names page and line."""


@dataclass(frozen=True)
class Block:
    """One ``bash`` block: where it is, its text and what its directive says."""

    page: str
    line: int
    end: int
    code: str
    skip: str | None = None
    background: bool = False
    wait: str | None = None
    expect: tuple[str, ...] = ()
    exit: int = 0
    timeout: float = 300.0
    placeholders: tuple[str, ...] = field(default=())

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def _directive(body: str, where: str) -> dict[str, str | bool]:
    """``skip=long background wait=URL expect="some text"`` as a dict."""
    options: dict[str, str | bool] = {}
    for word in shlex.split(body):
        key, sep, value = word.partition("=")
        if key not in ("skip", "background", "wait", "expect", "exit", "timeout"):
            raise MarkupError(f"{where}: unknown docs-test option {key!r}")
        options[key] = value if sep else True
    if "skip" in options and options["skip"] not in SKIP_REASONS:
        raise MarkupError(
            f"{where}: skip={options['skip']!r}; allowed: {', '.join(SKIP_REASONS)}"
        )
    if "wait" in options and "background" not in options:
        raise MarkupError(f"{where}: wait= belongs to a background block")
    if "background" in options and "wait" not in options:
        raise MarkupError(f"{where}: a background block needs wait=<URL that answers once it is up>")
    return options


def parse_page(text: str, page: str) -> list[Block]:
    """The ``bash`` blocks of one Markdown page, with their directives."""
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[int, dict[str, str | bool]] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = _DIRECTIVE.match(line)
        if directive:
            pending = (index + 1, _directive(directive["body"], f"{page}:{index + 1}"))
            index += 1
            continue
        fence = _FENCE.match(line)
        if not fence:
            if line.strip() and pending:
                raise MarkupError(f"{page}:{pending[0]}: a docs-test directive must stand right before a fence")
            index += 1
            continue
        indent, marker, info = fence["indent"], fence["fence"], fence["info"].strip()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(marker):
            body.append(lines[index][len(indent):] if lines[index].startswith(indent) else lines[index].lstrip())
            index += 1
        directive_line, options = pending if pending else (start + 1, {})
        pending = None
        index += 1
        if info.split()[:1] != ["bash"]:
            if options:
                raise MarkupError(f"{page}:{directive_line}: a docs-test directive on a {info or 'plain'} block")
            continue
        code = "\n".join(body).strip("\n") + "\n"
        blocks.append(
            Block(
                page=page,
                line=start + 1,
                end=index,
                code=code,
                skip=options.get("skip"),  # type: ignore[arg-type]
                background=bool(options.get("background")),
                wait=options.get("wait"),  # type: ignore[arg-type]
                expect=(options["expect"],) if "expect" in options else (),  # type: ignore[arg-type]
                exit=int(options.get("exit", 0)),  # type: ignore[arg-type]
                timeout=float(options.get("timeout", 300)),  # type: ignore[arg-type]
                placeholders=tuple(p for p in PLACEHOLDERS if p in code),
            )
        )
    return blocks


def check_twins(blocks: list[Block]) -> list[str]:
    """Problems with skipped blocks: each (but the suite's) needs a runnable twin right after it."""
    problems = []
    for position, block in enumerate(blocks):
        if block.skip is None or block.skip == "suite":
            continue
        twin = blocks[position + 1] if position + 1 < len(blocks) else None
        if twin is None or twin.page != block.page:
            problems.append(f"{block.where}: skip={block.skip} but no smoke twin follows on the page")
        elif twin.skip is not None:
            problems.append(f"{block.where}: its twin at {twin.where} is skipped too")
        elif twin.line - block.end > TWIN_DISTANCE:
            problems.append(
                f"{block.where}: its twin at {twin.where} is {twin.line - block.end} lines away "
                f"(at most {TWIN_DISTANCE}: put it right beside the block it stands for)"
            )
    return problems


def reading_order(root: Path) -> list[Path]:
    """README.md, then the site's pages in the order of mkdocs.yml's nav, then any page not in it."""
    config = yaml.load((root / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    docs = root / config.get("docs_dir", "docs")
    ordered: list[Path] = [root / "README.md"]

    def walk(entries: object) -> None:
        if isinstance(entries, str):
            if entries.endswith(".md") and (docs / entries).exists():  # a missing page fails mkdocs
                ordered.append(docs / entries)
        elif isinstance(entries, list):
            for entry in entries:
                walk(entry)
        elif isinstance(entries, dict):
            for value in entries.values():
                walk(value)

    walk(config.get("nav", []))
    ordered += sorted(p for p in docs.rglob("*.md") if p not in ordered)
    return ordered


def collect(root: Path) -> list[Block]:
    """Every ``bash`` block of README.md and the site, in reading order."""
    blocks: list[Block] = []
    for path in reading_order(root):
        blocks += parse_page(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    return blocks
