"""The parameters page of the documentation, generated from the schema.

``docs/parameters.md`` is this module's output, committed; a test regenerates it
and fails when it differs, so the page cannot drift from the code::

    uv run python -m activation_compare.params.reference docs/parameters.md

Every row comes from :class:`~activation_compare.params.schema.ProjectParameters`'
JSON schema: the key, its default, what is allowed (type, range, choices) and
the field's docstring.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from activation_compare.params.schema import ACTIVATION_SPECS, ProjectParameters

_SECTIONS = ("data", "model", "training", "compare", "tuning")

_HEADER = """\
# Parameters

<!-- Generated from src/activation_compare/params/schema.py by
`uv run python -m activation_compare.params.reference docs/parameters.md`;
tests/docs/test_site.py fails when this page differs from the schema. -->

Every parameter is declared in one schema,
`src/activation_compare/params/schema.py`, and the whole tree is checked before
any data loads: an unknown key (`trainig.epochs`), a value out of range or an
undefined activation stops the run with one line per problem naming the
parameter, the value and what is allowed. The defaults below are the schema's;
`conf/base/parameters_*.yml` sets the same values and the `smoke` and `paper`
environments (`conf/<env>/parameters.yml`) override some of them.

Override any of them on the command line. `--params` splits on commas, so a
list is written with spaces (`training.seeds=0 1 2`), and one value is a
one-element list (`training.seeds=5` trains seed 5 only):

```bash
uv run kedro run --env smoke --pipeline=compare --params "training.seeds=0 1,training.epochs=1"
```
"""

_ACTIVATIONS = """\
## activations

Every activation the comparison can use, by name: `compare.activations` picks
from these. A name becomes a Kedro namespace and part of file names (lowercase
letters, digits and underscores, starting with a letter). Each entry is a
mapping with a `type` and that type's options; the schema's default entries are
named after their type (`relu`, `rrelu`, `leaky_relu`, `prelu`, `elu`),
`conf/base/parameters_modelling.yml` adds `gelu`, `silu` and `mish` (Keras'
own, `type: keras`), and an environment may add its own
(`conf/paper/parameters.yml` adds two leaky ReLUs). Any activation Keras knows
by name is `type: keras`, and a layer of your own is `type: custom`
([Activations](activations.md) says how):

```yaml
activations:
  leaky_relu_018:
    type: leaky_relu
    slope: 0.18
  selu:
    type: keras
    name: selu
```
"""


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` replaced by its definition (other keys of ``node``, e.g. its default, kept)."""
    if "$ref" in node:
        definition = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        return {**definition, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _value(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _allowed(node: dict[str, Any]) -> str:
    """What a field accepts, in words: its type, range and choices."""
    if "anyOf" in node:
        options = [_allowed(option) for option in node["anyOf"] if option.get("type") != "null"]
        nullable = any(option.get("type") == "null" for option in node["anyOf"])
        return " or ".join(options) + (" or `null`" if nullable else "")
    if "enum" in node:
        return "one of " + ", ".join(_value(choice) for choice in node["enum"])
    if "const" in node:
        return _value(node["const"])
    kind = node.get("type")
    if kind == "array":
        text = f"a list of {_plural(_allowed(node.get('items', {})))}"
        if node.get("minItems"):
            text += f", at least {node['minItems']}"
        return text
    words = {"integer": "an integer", "number": "a number", "boolean": "`true` or `false`", "string": "text"}
    text = words.get(kind, kind or "any value")
    bounds = []
    if "exclusiveMinimum" in node:
        bounds.append(f"> {node['exclusiveMinimum']}")
    if "minimum" in node:
        bounds.append(f"≥ {node['minimum']}")
    if "exclusiveMaximum" in node:
        bounds.append(f"< {node['exclusiveMaximum']}")
    if "maximum" in node:
        bounds.append(f"≤ {node['maximum']}")
    return text + (" " + " and ".join(bounds) if bounds else "")


def _plural(text: str) -> str:
    """``an integer > 0`` as ``integers > 0``, for the items of a list."""
    for single, plural in (("an integer", "integers"), ("a number", "numbers"), ("text", "names")):
        if text.startswith(single):
            return plural + text[len(single):]
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(
    schema: dict[str, Any], node: dict[str, Any], prefix: str, defaults: dict[str, Any]
) -> Iterator[str]:
    """One table row per leaf field under ``node``, nested sections flattened to dotted keys.

    ``defaults`` are the section's values in a default instance (factories included).
    """
    for name, field in node.get("properties", {}).items():
        resolved = _resolve(schema, field)
        key = f"{prefix}.{name}"
        if resolved.get("type") == "object" and "properties" in resolved:
            yield from _rows(schema, resolved, key, defaults[name])
            continue
        default = _value(defaults[name]) if name in defaults else "(required)"
        yield (
            f"| `{key}` | {default} | {_cell(_allowed(resolved))} | "
            f"{_cell(field.get('description', ''))} |"
        )


def _table(rows: Iterator[str]) -> list[str]:
    return ["| parameter | default | allowed | meaning |", "|---|---|---|---|", *rows]


def parameters_markdown() -> str:
    """The whole ``docs/parameters.md`` page."""
    schema = ProjectParameters.model_json_schema()
    defaults = ProjectParameters().model_dump(mode="json")
    lines = [_HEADER]
    for section in _SECTIONS:
        definition = _resolve(schema, schema["properties"][section])
        lines += [f"## {section}", "", definition.get("description", ""), ""]
        lines += _table(_rows(schema, definition, section, defaults[section]))
        lines.append("")
    lines.append(_ACTIVATIONS)
    for kind, spec in ACTIVATION_SPECS.items():
        definition = _resolve(schema, {"$ref": f"#/$defs/{spec.__name__}"})
        lines += [f"### `type: {kind}`", "", definition.get("description", ""), ""]
        defaults = {
            name: field.get_default(call_default_factory=True)
            for name, field in spec.model_fields.items()
            if not field.is_required()
        }
        rows = _rows(schema, definition, "activations.<name>", defaults)
        options = [row for row in rows if not row.startswith("| `activations.<name>.type`")]
        lines += _table(iter(options)) if options else ["No options."]
        if spec.model_config.get("extra") == "allow":
            lines += ["", "Every other key is passed to the layer's constructor (`beta: 1.5`)."]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    """Write the page to the path given, or print it."""
    text = parameters_markdown()
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
