"""Suite files (SPEC §4): parsed and validated once, at collection, into frozen checks."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..environments import NO_ENVIRONMENTS, Environment, UnknownEnvironment, environment_names
from ..errors import ConfigError
from ..inputs.located import duration_at, error_at
from ..inputs.templating import check_site, matches, names_in, sites
from ..inputs.validation import suggest, validate
from ..inputs.yamlfile import YamlMap, gc_paused, load_file
from .base import (
    KINDS,
    Check,
    CheckInstance,
    CheckType,
    ParamSet,
    ParseContext,
    check_names,
    default_on_fail,
)
from .conditions import CONDITION_FIELDS, parse_condition
from .registry import CHECK_TYPES


@dataclass(frozen=True)
class Suite:
    name: str
    file: str
    checks: tuple[Check, ...]


def _params(node: Any, where: str, parent: YamlMap) -> tuple[ParamSet, ...]:
    if node is None:
        return ()
    if isinstance(node, Mapping):
        keys = list(node)
        combos = [dict(zip(keys, values, strict=True))
                  for values in itertools.product(*(node[k] for k in keys))]
    else:
        combos = [dict(item) for item in node]
        keys = list(combos[0])
        for index, combo in enumerate(combos):
            if list(combo) != keys:
                raise error_at(f"every parametrize entry needs the keys {keys}", node, index, where)
    sets, seen = [], set()
    for index, combo in enumerate(combos):
        parts = [str(v) if isinstance(v, (str, int, float, bool)) else f"{k}{index}"
                 for k, v in combo.items()]
        pid = "-".join(parts)
        if pid in seen:
            pid = f"{pid}{index}"
        seen.add(pid)
        sets.append(ParamSet(id=pid, values=combo))
    return tuple(sets)


# The keys each kind of check may have besides the common ones: those of the check types
# that may run it.
_OWN_KEYS: Mapping[str, frozenset[str]] = {
    kind: frozenset().union(*(t.keys_for(kind) for t in CHECK_TYPES.values()))
    for kind in KINDS}
_KIND_KEYS = frozenset().union(*_OWN_KEYS.values())


def _kind_keys(node: YamlMap, where: str) -> None:
    """Keys that belong to another kind are an error, not silently ignored."""
    kind = node["kind"]
    for key in node:
        if key in _KIND_KEYS and key not in _OWN_KEYS[kind]:
            raise error_at(f"'{key}' does not apply to a {kind} check", node, key, where)


def _foreign_keys(node: YamlMap, where: str, check_type: CheckType) -> None:
    """A key of another check type that the one running the check would not read (``query``
    beside ``sql``) is an error, not silently ignored."""
    for key in node:
        if key in _KIND_KEYS and key not in check_type.keys:
            has = " and ".join(f"'{one}'" for one in sorted(check_type.keys & set(node)))
            raise error_at(f"'{key}' does not apply to a {node['kind']} check with {has}",
                           node, key, where)


def _environments(node: YamlMap, key: str, where: str, known: Sequence[str] | None
                  ) -> tuple[str, ...] | None:
    """``envs`` or ``skip_envs`` of a suite or check (None when absent), every name one of
    ``known`` (the environments file's; None when no environment is selected)."""
    if key not in node:
        return None
    value = node[key]
    if known is None:
        return tuple(value)
    inner = f"{where}.{key}" if where else key
    try:
        names = environment_names(value, known)
    except UnknownEnvironment as exc:
        if exc.index is None:
            raise error_at(str(exc), node, key, where) from None
        raise error_at(str(exc), value, exc.index, inner) from None
    if key == "envs" and not names:
        raise error_at(NO_ENVIRONMENTS, node, key, where)
    return names


def _check(node: YamlMap, where: str, suite: YamlMap, suite_name: str, file: str,
           base_dir: Path, known: Sequence[str] | None) -> Check:
    _kind_keys(node, where)
    kind = KINDS[node["kind"]]
    timeout = duration_at(node, "timeout", where)
    at = ParseContext(where, base_dir, suite=suite, timeout=timeout)
    # The first type that takes the check (the last, http, takes every check left).
    for check_type in CHECK_TYPES.values():
        spec = check_type.parse(node, at)
        if spec is not None:
            break
    assert spec is not None
    _foreign_keys(node, where, check_type)
    envs = _environments(node, "envs", where, known)
    skip_envs = _environments(node, "skip_envs", where, known)
    phase = node.get("phase", suite.get("phase", kind.phase))
    conditions = tuple(one for one in (parse_condition(suite, ""), parse_condition(node, where))
                       if one is not None)
    return Check(
        suite=suite_name, name=node["name"], kind=kind.name, phase=phase, spec=spec,
        envs=envs if envs is not None else _environments(suite, "envs", "", known),
        skip_envs=skip_envs if skip_envs is not None else
        _environments(suite, "skip_envs", "", known) or (),
        marks=tuple(dict.fromkeys([*suite.get("marks", ()), *node.get("marks", ())])),
        on_fail=node.get("on_fail", default_on_fail(kind.name, phase)),
        severity=node.get("severity", "normal"),
        runbook=node.get("runbook"), description=node.get("description", ""),
        timeout=timeout,
        params=_params(node.get("parametrize"), f"{where}.parametrize", node),
        suite_vars=dict(suite.get("vars", {})), file=file, line=node.line, where=where,
        conditions=conditions, service=node.get("service", suite.get("service")),
        key_lines=node.key_lines)


# The fields of a check (or of one of its steps) whose templates are rendered, and those whose
# keys are (each check type names its own); every other {{ in a suite is a collection error,
# never text sent as written.
RENDERED_VALUES = ("parametrize/**", *CONDITION_FIELDS,
                   *(f for t in CHECK_TYPES.values() for f in t.templates.values))
RENDERED_KEYS = tuple(f for t in CHECK_TYPES.values() for f in t.templates.keys)
# Where ${...} belongs to the program run, not to this plugin (a checklist command's text).
_PROGRAM_TEXT = tuple(f for t in CHECK_TYPES.values() for f in t.templates.program_text)
_NO_INTERPOLATION = ("${...} is not interpolated in suite files (only the environments file "
                     "reads environment variables): set it in the environment's vars (name: "
                     "\"${VAR}\", or \"$${...}\" for the text itself) and write {{ name }}")


def _field(path: tuple[str, ...]) -> tuple[str, ...] | None:
    """``path`` relative to its check or step, or None outside the checks."""
    if path[:2] != ("checks", "[]"):
        return None
    return path[4:] if path[2:4] == ("steps", "[]") else path[2:]


def _check_templates(doc: YamlMap, file: str) -> None:
    """Every ``{{`` of a suite is a template in a field that is rendered, and no ``${``
    stands where nothing would interpolate it."""
    for site in sites(doc):
        field = _field(site.path)
        if "${" in site.text and not (
                field is not None and not site.is_key and matches(field, _PROGRAM_TEXT)):
            raise ConfigError(_NO_INTERPOLATION, file=file, line=site.line, key=site.key)
        rendered = matches(site.path, CONDITION_FIELDS) and not site.is_key if field is None \
            else matches(field, RENDERED_KEYS if site.is_key else RENDERED_VALUES)
        check_site(site, rendered, file)



def load_suite(path: Path, display: str, environments: Sequence[str] | None = None) -> Suite:
    """Parse and validate the suite file at ``path``; errors name ``display`` and the line.

    ``environments`` are the names ``envs`` and ``skip_envs`` may use (not checked if None).
    """
    with gc_paused():
        return _load_suite(path, display, environments)


def _load_suite(path: Path, display: str, known: Sequence[str] | None) -> Suite:
    doc = load_file(path, display)
    if not isinstance(doc, YamlMap):
        raise ConfigError("a suite file must be a mapping with a 'checks' list", file=display,
                          line=1)
    validate(doc, "suite", display)
    # The suite's own lists once, so that an error in them names their line, not a check's.
    _environments(doc, "envs", "", known)
    _environments(doc, "skip_envs", "", known)
    _check_templates(doc, display)
    name = doc.get("suite", path.stem)
    checks: list[Check] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(doc["checks"]):
        where = f"checks[{index}]"
        if node["name"] in seen:
            raise error_at(f"duplicate check name {node['name']!r} (first at line "
                       f"{seen[node['name']]})", node, "name", where)
        seen[node["name"]] = node.line
        check = _check(node, where, doc, name, display, path.parent, known)
        companion = check.spec.companion(check.name)
        if companion is not None:
            if check.phase != "postdeploy":
                raise error_at("a baseline 'from: predeploy' compares the value after the "
                               "deploy with the one before it: the check belongs to the "
                               "postdeploy phase", node, "phase" if "phase" in node else
                               "baseline", where)
            # Before its check, as the deploy orders them.
            checks.append(replace(check, name=f"{check.name} (before the deploy)",
                                  phase="predeploy", spec=companion,
                                  on_fail=default_on_fail(check.kind, "predeploy")))
        checks.append(check)
    return Suite(name=name, file=display, checks=tuple(checks))


def claim_ids(suite: Suite, seen: dict[str, tuple[str, int]]) -> None:
    """Record the ids of ``suite``'s checks in ``seen`` (id -> file and line of its check).

    Raises :class:`ConfigError` for an id a check of another file already has: the id keys
    the check's baseline (two checks would overwrite each other's, so that neither is ever
    judged against its own), ``--ack`` and reports. Each xdist worker collects every suite,
    so each finds the duplicate itself.
    """
    for index, check in enumerate(suite.checks):
        here = (check.file, check.line_of("name"))
        # With its parameters too: a check named 'p99[eu]' and a check 'p99' parametrized
        # with 'eu' would share the baseline 'suite::p99[eu]'.
        for key in (check.id, *(f"{check.id}[{p.id}]" for p in check.params)):
            file, line = seen.setdefault(key, here)
            if (file, line) != here:
                raise ConfigError(f"check id '{key}' is also defined at {file}:{line}; a check "
                                  f"id (suite::name) must be unique across suite files (it "
                                  f"keys baselines, --ack and reports): rename the check or "
                                  f"set another 'suite:' in one of the files",
                                  file=check.file, line=here[1], key=f"checks[{index}].name")


def instances(check: Check, env: Environment) -> list[CheckInstance]:
    """The items ``check`` makes in ``env``; raises :class:`ConfigError` for names it cannot
    resolve there (an unknown service, an undefined template name)."""
    if not check.applies_to(env.name):
        return []
    made = [CheckInstance(check, env, p) for p in check.params] or [CheckInstance(check, env, None)]
    for instance in made[:1]:
        check_names(dict.fromkeys(names_in([dict(p.values) for p in check.params]),
                                  (check.line_of("parametrize"),
                                   f"{check.where}.parametrize")),
                    set(instance.base_scope()), env, check.file)
        if check.service and check.spec.calls() == [] and check.service not in env.services:
            key = "service" if "service" in check.key_lines else None
            raise ConfigError(f"unknown service '{check.service}' in environment '{env.name}'"
                              f"{suggest(check.service, env.services)}; its services: "
                              f"{', '.join(env.services) or 'none'}", file=check.file,
                              line=check.line_of("service") if key else check.line,
                              key=f"{check.where}.service" if key else "service")
        for condition in check.conditions:
            check_names(dict.fromkeys(condition.names(), (condition.line, condition.key)),
                        set(instance.scope()), env, condition.file)
        check.spec.resolve(check, env, set(instance.scope()))
    return made
