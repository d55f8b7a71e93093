"""The documentation site (mkdocs.yml, docs/): it builds with no broken link or anchor, its
reference lists every key of the schemas and every option the plugin registers, and the README
points into it."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SCHEMAS = ROOT / "pytest_deploycheck" / "inputs" / "schemas"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for the module as CI builds it: ``mkdocs build --strict``."""
    out = tmp_path_factory.mktemp("docs") / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return out


def test_the_site_builds_with_no_broken_link_or_anchor(site: Path) -> None:
    # mkdocs.yml makes unresolved links and anchors warnings, so --strict fails on them.
    assert (site / "index.html").is_file()
    assert (site / "reference" / "suite-file" / "index.html").is_file()


def test_the_reference_pages_are_generated_from_the_schemas_as_they_are() -> None:
    done = subprocess.run([sys.executable, "scripts/schema_docs.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _schema_keys(node: object) -> Iterator[tuple[str, str]]:
    """Every (key, description) of a schema, wherever it is declared ($defs included)."""
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            yield key, value["description"]
        for key, value in node.items():
            if key != "properties":
                yield from _schema_keys(value)
        for value in node.get("properties", {}).values():
            yield from _schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schema_keys(value)


def _table_rows(page: Path) -> set[tuple[str, str]]:
    """(first cell, last cell) of every table row of a built page, as text."""
    rows = set()
    for row in re.findall(r"<tr>(.*?)</tr>", page.read_text(), flags=re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
        if cells:
            rows.add((cells[0].removesuffix(" (required)"), cells[-1]))
    return rows


@pytest.mark.parametrize(("schema", "page"), [("suite", "suite-file"),
                                              ("environments", "environments-file")])
def test_every_key_of_the_schemas_is_in_the_reference_with_its_description(
        site: Path, schema: str, page: str) -> None:
    keys = set(_schema_keys(json.loads((SCHEMAS / f"{schema}.schema.json").read_text())))
    assert len(keys) > 40
    rows = _table_rows(site / "reference" / page / "index.html")
    assert keys - rows == set()


def _registered_options(tmp_path: Path) -> tuple[set[str], set[str]]:
    """The command-line options of the plugin's group and its ini keys, from ``pytest --help``
    with the plugin loaded by its entry point's module alone."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "pytest_deploycheck.plugin",
                           "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert done.returncode == 0, done.stderr
    group = done.stdout.split("deploy gates (pytest-deploycheck):", 1)[1].split("\n\n", 1)[0]
    options = set(re.findall(r"^\s{2}(--[a-z][a-z-]*)", group, flags=re.M))
    ini_keys = set(re.findall(r"^\s{2}(deploycheck_\w+) \(", done.stdout, flags=re.M))
    return options, ini_keys


def test_every_option_and_ini_key_the_plugin_registers_is_in_the_options_reference(
        tmp_path: Path) -> None:
    options, ini_keys = _registered_options(tmp_path)
    assert {"--env", "--rollback", "--gate-report"} <= options
    assert {"deploycheck_suites", "deploycheck_state_dir"} <= ini_keys
    reference = (ROOT / "docs" / "reference" / "options.md").read_text()
    rows = [line for line in reference.splitlines() if line.startswith("| ")]
    documented = {name for row in rows for name in re.findall(r"`(--[a-z-]+|deploycheck_\w+)",
                                                               row.split(" | ")[0] + " | "
                                                               + row.split(" | ")[1])}
    assert options - documented == set()
    assert ini_keys - documented == set()


def test_the_readme_links_to_pages_and_anchors_of_the_site(site: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+\.md)(?:#([^)]+))?\)", readme)
    assert len(links) > 25
    for path, anchor in links:
        assert (ROOT / path).is_file(), path
        if anchor:
            built = site / Path(path).relative_to("docs").with_suffix("")
            built = built.parent / "index.html" if built.name == "index" else built / "index.html"
            assert f'id="{anchor}"' in built.read_text(), f"{path}#{anchor}"
    for command in ("./dev gate", "./dev test", ".venv/bin/mkdocs serve"):
        assert command in readme


def test_every_page_of_docs_is_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(path.relative_to(ROOT / "docs")) for path in (ROOT / "docs").rglob("*.md")}
    assert {page for page in pages if f": {page}\n" not in nav} == set()


def test_the_changelog_page_is_the_changelog(site: Path) -> None:
    page = (site / "changelog" / "index.html").read_text()
    first_entry = (ROOT / "CHANGELOG.md").read_text().split("\n- ", 1)[1].split("\n", 1)[0]
    assert "Unreleased" in page
    assert html.unescape(re.sub(r"<[^>]+>", "", page)).count(
        re.sub(r"[`*]", "", first_entry).strip()) == 1
