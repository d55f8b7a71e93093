#!/usr/bin/env python3
"""Generate the documentation's file reference from the packaged JSON Schemas:
docs/reference/suite-file.md and docs/reference/environments-file.md.

    .venv/bin/python scripts/schema_docs.py          # write the pages
    .venv/bin/python scripts/schema_docs.py --check  # exit 1 when a page is out of date

The schemas are what the plugin validates against and what editors read, and every key in them
has a description; the reference is made from them so that it cannot list a key the plugin
refuses or miss one it reads. tests/test_docs.py fails until this script is run again after a
schema changes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "pytest_deploycheck" / "inputs" / "schemas"
OUT = ROOT / "docs" / "reference"

Schema = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One generated page: which schema, its file name and title, and how it introduces it."""

    schema: str
    out: str
    title: str
    intro: str


PAGES = (
    Page("suite", "suite-file.md", "The suite file",
         "Suite files are found under `suites/` (or the folders of the ini key "
         "`deploycheck_suites`). What the keys do, with examples: [Suites](../concepts/suites.md), "
         "[Check kinds and items](../concepts/check-kinds.md), "
         "[Pre-deploy checklists](../concepts/checklists.md), "
         "[Metric checks](../concepts/metrics.md) and "
         "[Databases, alerts and browser pages](../concepts/evidence.md)."),
    Page("environments", "environments-file.md", "The environments file",
         "It is `environments.yaml` at the project's root, or the file of `--environments` "
         "and the ini key `deploycheck_environments`. What the keys do, with examples: "
         "[environments.yaml](../concepts/environments.md), "
         "[Gates and rollback](../concepts/gates-and-rollback.md), "
         "[Phases, conditions and deploy facts](../concepts/phases.md) and "
         "[Deploy windows](../concepts/checklists.md#deploy-windows-and-blackouts). "
         "Rollback, notify, announce and rollout actions and the keys of each metric source "
         "type depend on their type, so the schema leaves them open: their keys are listed in "
         "those pages."),
)

_ESCAPED = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
            "{": "\\{", "}": "\\}", "<": "&lt;", "|": "\\|"}


def text(value: str) -> str:
    """A schema description as Markdown that renders to exactly that text, also in a table."""
    return "".join(_ESCAPED.get(char, char) for char in value)


@dataclass
class Section:
    """One mapping of the schema: a table of its keys under a heading of its own."""

    anchor: str
    name: str
    node: Schema
    used_in: list[str] = field(default_factory=list)


class Reference:
    """Walks one schema from its top level, giving each mapping with keys a section, in the
    order a reader meets them."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.defs: dict[str, Schema] = schema.get("$defs", {})
        self.sections: dict[str, Section] = {}
        self.value_types: dict[str, str] = {}
        self._queue: list[Section] = []
        self._add("top-level", "Top level", schema, None)
        while self._queue:
            section = self._queue.pop(0)
            for key, node in section.node.get("properties", {}).items():
                self.type_of(node, f"{section.name}.{key}" if section.anchor != "top-level"
                             else key)

    def _add(self, anchor: str, name: str, node: Schema, used_in: str | None) -> str:
        if anchor not in self.sections:
            self.sections[anchor] = Section(anchor, name, node)
            self._queue.append(self.sections[anchor])
        if used_in is not None and used_in not in self.sections[anchor].used_in:
            self.sections[anchor].used_in.append(used_in)
        return anchor

    def _ref(self, ref: str, where: str) -> str:
        name = ref.removeprefix("#/$defs/")
        node = self.defs[name]
        if _has_keys(node):
            return f"[{name}](#{self._add(name, name, node, where)})"
        if name not in self.value_types:
            self.value_types[name] = ""  # a value type that refers to itself stops here
            self.value_types[name] = self.type_of(node, name)
        return f"[{name}](#type-{name})"

    def type_of(self, node: Schema, where: str) -> str:
        """How a value's type reads in a table; mappings with keys get their own section."""
        if "$ref" in node:
            return self._ref(node["$ref"], where)
        if "enum" in node:
            return "one of " + ", ".join(f"`{json.dumps(v)}`" for v in node["enum"])
        if "const" in node:
            return f"`{json.dumps(node['const'])}`"
        for combinator in ("anyOf", "oneOf"):
            if combinator in node:
                return " or ".join(dict.fromkeys(self.type_of(alt, where)
                                                 for alt in node[combinator]))
        if "properties" in node:
            anchor = re.sub(r"[^a-z0-9_]+", "-", where.lower()).strip("-")
            return f"[mapping](#{self._add(anchor, where, node, where)})"
        kinds = node.get("type")
        names = kinds if isinstance(kinds, list) else [kinds] if kinds else []
        words = [self._type_word(kind, node, where) for kind in names]
        return " or ".join(words) if words else "any"

    def _type_word(self, kind: str, node: Schema, where: str) -> str:
        if kind == "array":
            items = node.get("items")
            if not items:
                return "list"
            element = self.type_of(items, f"{where}[]")
            return f"list of ({element})" if " or " in element else f"list of {element}"
        if kind == "object":
            values = node.get("additionalProperties")
            if isinstance(values, dict):
                return f"mapping of names to {self.type_of(values, f'{where}.<name>')}"
            return "mapping"
        return {"string": "text", "number": "number", "integer": "integer",
                "boolean": "true/false", "null": "null"}.get(kind, kind)


def _has_keys(node: Schema) -> bool:
    return bool(node.get("properties"))


def render(page: Page) -> str:
    """The Markdown of one reference page."""
    path = SCHEMAS / f"{page.schema}.schema.json"
    schema: Schema = json.loads(path.read_text(encoding="utf-8"))
    reference = Reference(schema)
    lines = [
        f"# {page.title}",
        "",
        f"<!-- Generated by scripts/schema_docs.py from "
        f"pytest_deploycheck/inputs/schemas/{page.schema}.schema.json: do not edit, change the "
        f"schema and run the script again. -->",
        "",
        f"{text(schema['description'])} {page.intro}",
        "",
        f"The schema: [`{page.schema}.schema.json`]({schema['$id']}) (`$id` {schema['$id']}); "
        f"see [JSON Schemas for editors](schemas.md).",
        "",
    ]
    for section in reference.sections.values():
        title = "Top level" if section.anchor == "top-level" else f"`{section.name}`"
        lines += [f"## {title} {{#{section.anchor}}}", ""]
        if section.used_in and section.used_in != [section.name]:
            lines += ["Used in: " + ", ".join(f"`{where}`" for where in section.used_in) + ".",
                      ""]
        if "description" in section.node and section.anchor != "top-level":
            lines += [text(section.node["description"]), ""]
        required = set(section.node.get("required", ()))
        open_keys = section.node.get("additionalProperties", True) is not False
        lines += ["| key | type | description |", "|---|---|---|"]
        for key, node in section.node["properties"].items():
            where = key if section.anchor == "top-level" else f"{section.name}.{key}"
            mark = " (required)" if key in required else ""
            lines.append(f"| `{key}`{mark} | {reference.type_of(node, where)} | "
                         f"{text(node['description'])} |")
        lines.append("")
        if open_keys and section.anchor != "top-level" and "additionalProperties" in section.node:
            lines += ["Other keys are allowed here.", ""]
    if reference.value_types:
        lines += ["## Value types", ""]
        lines += ["The shapes that several keys share.", ""]
        for name, shape in sorted(reference.value_types.items()):
            lines += [f"### `{name}` {{#type-{name}}}", "", f"{shape}.", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when a page differs from what it would be")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        target = OUT / page.out
        wanted = render(page)
        if args.check:
            if not target.is_file() or target.read_text(encoding="utf-8") != wanted:
                stale.append(target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted, encoding="utf-8")
            print(f"wrote {target.relative_to(ROOT)}")
    for target in stale:
        print(f"{target.relative_to(ROOT)} is out of date: run scripts/schema_docs.py",
              file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
