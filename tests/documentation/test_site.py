"""The documentation site builds strictly, its generated pages are current, and its commands are collectable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, PROJECT_ROOT
from documentation.doc_blocks import MarkupError, check_twins, collect, parse_page, reading_order

from activation_compare.params.reference import parameters_markdown

README_MAX_LINES = 250


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link, an unknown anchor or a missing page fails it."""
    result = subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's banner about its successor
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert (tmp_path / "site" / "parameters" / "index.html").exists()


def test_the_parameters_page_is_the_schema() -> None:
    page = PROJECT_ROOT / "docs" / "parameters.md"
    assert page.read_text(encoding="utf-8") == parameters_markdown(), (
        "docs/parameters.md differs from the schema; regenerate it with "
        "`uv run python -m activation_compare.params.reference docs/parameters.md`"
    )


def test_the_parameters_page_has_every_parameter() -> None:
    from activation_compare.params.schema import ProjectParameters

    text = parameters_markdown()
    for section, model in ProjectParameters.model_fields.items():
        if section == "activations":
            continue
        for name in model.annotation.model_fields:  # type: ignore[union-attr]
            if name == "optimizer":
                continue
            assert f"`{section}.{name}`" in text


def test_readme_is_short() -> None:
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; the details belong in docs/"


def test_every_documented_command_is_run_or_has_its_twin() -> None:
    blocks = collect(PROJECT_ROOT)
    assert check_twins(blocks) == []
    pages = {block.page for block in blocks}
    assert "README.md" in pages
    assert any(block.skip is None for block in blocks)


def test_reading_order_is_readme_then_the_nav() -> None:
    order = [str(path.relative_to(PROJECT_ROOT)) for path in reading_order(PROJECT_ROOT)]
    assert order[:3] == ["README.md", "docs/index.md", "docs/getting-started.md"]
    assert len(order) == len(set(order))


def test_blocks_and_directives_are_parsed() -> None:
    page = "\n".join([
        "Text.",
        "```bash",
        "uv run kedro run",
        "```",
        "<!-- docs-test: skip=long -->",
        "```bash",
        "uv run kedro run --params data.path=<CIFAR10_ARCHIVE>",
        "```",
        "Its twin:",
        "```bash",
        "uv run kedro run --env smoke",
        "```",
        "```text",
        "not a command",
        "```",
        "- a list item:",
        "",
        "  <!-- docs-test: background wait=http://127.0.0.1:5000/health -->",
        "  ```bash",
        "  uv run mlflow ui",
        "  ```",
        '<!-- docs-test: expect="predictions" timeout=20 exit=1 -->',
        "```bash",
        "curl -s http://127.0.0.1:5001/invocations",
        "```",
    ])
    blocks = parse_page(page, "page.md")
    assert [b.line for b in blocks] == [2, 6, 10, 19, 23]
    assert blocks[0].code == "uv run kedro run\n" and blocks[0].skip is None
    assert blocks[1].skip == "long" and blocks[1].placeholders == ("<CIFAR10_ARCHIVE>",)
    assert blocks[3].background and blocks[3].wait == "http://127.0.0.1:5000/health"
    assert blocks[3].code == "uv run mlflow ui\n"
    assert blocks[4].expect == ("predictions",) and blocks[4].timeout == 20 and blocks[4].exit == 1
    assert blocks[0].exit == 0
    assert check_twins(blocks) == []


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("<!-- docs-test: skip=slow -->\n```bash\nx\n```\n", "skip='slow'; allowed"),
        ("<!-- docs-test: frobnicate -->\n```bash\nx\n```\n", "unknown docs-test option"),
        ("<!-- docs-test: background -->\n```bash\nx\n```\n", "needs wait="),
        ("<!-- docs-test: skip=long -->\n\nsome words\n```bash\nx\n```\n", "right before a fence"),
        ("<!-- docs-test: skip=long -->\n```text\nx\n```\n", "on a text block"),
    ],
)
def test_bad_directives_name_the_line(page: str, message: str) -> None:
    with pytest.raises(MarkupError, match="page.md:1") as error:
        parse_page(page, "page.md")
    assert message in str(error.value)


def test_a_skipped_block_without_its_twin_is_reported() -> None:
    alone = parse_page("<!-- docs-test: skip=network -->\n```bash\nx\n```\n", "p.md")
    assert check_twins(alone) == ["p.md:2: skip=network but no smoke twin follows on the page"]
    far = parse_page(
        "<!-- docs-test: skip=long -->\n```bash\nx\n```\n" + "words\n" * 12 + "```bash\ny\n```\n", "p.md"
    )
    assert "lines away" in check_twins(far)[0]
    suite = parse_page("<!-- docs-test: skip=suite -->\n```bash\npytest\n```\n", "p.md")
    assert check_twins(suite) == []



def test_readme_links_point_at_files_that_exist() -> None:
    """README is read on the forge, outside the site: its relative links must resolve there too."""
    import re

    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text)
    assert targets
    missing = [target for target in targets if not (PROJECT_ROOT / target).exists()]
    assert missing == []
