"""The package's layers (docs/design/layout.md, "Layout of this repository"): no module imports
one from a layer above its own, there is no import circle, and only the pytest side imports
pytest."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_deploycheck"
# Bottom to top, as docs/design/layout.md lists them; a module may import from its own layer
# and below.
LAYERS = (
    {"__init__", "errors", "units", "jsondoc", "secrets", "settings", "deploy"},
    {"inputs"},
    {"runtime"},
    {"metrics", "actions"},
    {"environments"},
    {"checklist"},
    {"checks"},
    {"rollout"},
    {"deployrun"},
    {"gate"},
    {"report"},
    {"cli"},
    {"adapter"},
    {"plugin", "hookspecs", "htmlreport"},
    {"demo", "__main__", "webhook"},
)
PYTEST_SIDE = ("plugin", "hookspecs", "adapter")


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, tuple[set[str], set[str]]]:
    """Each module -> (the package's modules it imports, the top-level packages it imports)."""
    found: dict[str, tuple[set[str], set[str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        if "compiled_schemas" in path.parts:
            continue  # generated
        module = _module(path)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        inner: set[str] = set()
        outer: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                parts = package.split(".")
                base = ".".join([*parts[:len(parts) - node.level + 1],
                                 *([node.module] if node.module else [])])
                for alias in node.names:
                    name = f"{base}.{alias.name}"
                    is_module = (PACKAGE.parent / (name.replace(".", "/") + ".py")).is_file() \
                        or (PACKAGE.parent / name.replace(".", "/")).is_dir()
                    inner.add(name if is_module else base)
            elif isinstance(node, ast.ImportFrom):
                outer.add((node.module or "").split(".")[0])
            elif isinstance(node, ast.Import):
                outer.update(alias.name.split(".")[0] for alias in node.names)
        found[module] = (inner, outer)
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    return next(index for index, names in enumerate(LAYERS) if _top(module) in names)


def test_every_module_has_a_layer() -> None:
    assert [m for m in _imports() if not any(_top(m) in names for names in LAYERS)] == []


def test_no_module_imports_from_a_layer_above_its_own() -> None:
    upward = [f"{module} -> {target}" for module, (inner, _) in sorted(_imports().items())
              for target in sorted(inner)
              if target != "pytest_deploycheck" and _layer(target) > _layer(module)]
    assert upward == []


def test_no_import_circle() -> None:
    graph = {module: {t for t in inner if t != "pytest_deploycheck"}
             for module, (inner, _) in _imports().items()}
    graph = {m: {t if t in graph else t.rpartition(".")[0] for t in targets}
             for m, targets in graph.items()}
    done: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                circles.append([*path[path.index(target):], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert circles == []


def test_only_the_pytest_side_imports_pytest() -> None:
    importers = sorted(module for module, (_, outer) in _imports().items()
                       if outer & {"pytest", "_pytest"})
    assert importers, "no module imports pytest: the test reads the wrong folder"
    assert [m for m in importers if _top(m) not in PYTEST_SIDE] == []


# The keys every check has, whatever its type (read by checks/suites.py).
COMMON_CHECK_KEYS = {"name", "kind", "phase", "if", "service", "description", "envs", "skip_envs", "marks", "on_fail",
                     "severity", "runbook", "timeout", "parametrize"}


def test_the_suite_schema_has_the_keys_of_every_check_type_and_no_other() -> None:
    """A new check type's keys go in the published suite schema (what editors and the
    reference read); this names what is missing or left over."""
    from pytest_deploycheck.checks.registry import CHECK_TYPES
    from pytest_deploycheck.inputs.validation import packaged_schema

    in_schema = set(packaged_schema("suite")["$defs"]["check"]["properties"])
    by_types = {key: name for name, one in CHECK_TYPES.items() for key in one.keys}
    missing = {key: name for key, name in by_types.items() if key not in in_schema}
    assert not missing, f"check keys of these types are not in suite.schema.json: {missing}"
    unclaimed = in_schema - COMMON_CHECK_KEYS - set(by_types)
    assert not unclaimed, f"suite.schema.json has check keys no check type reads: {unclaimed}"
