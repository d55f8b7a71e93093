"""Suite files (SPEC §4): parsed and validated once, at collection, into frozen checks."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checklist
from .checklist import Entry
from .checklist.command import EXPECT_KEYS as COMMAND_EXPECT_KEYS
from .environments import Environment
from .errors import ConfigError
from .expectations import Expectation, compile_jmespath, parse_expectation
from .metricspec import METRIC_KEYS, MetricSpec, parse_metric
from .templating import names_in
from .units import parse_duration
from .validation import suggest, validate
from .yamlfile import YamlMap, error_at, gc_paused, load_file

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 9110's methods and PATCH; CONNECT opens a tunnel, which no check means to do.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


@dataclass(frozen=True)
class Kind:
    """What a kind of check means for gating and selection (SPEC §1)."""

    name: str
    on_fail: str
    markers: tuple[str, ...]


KINDS: Mapping[str, Kind] = {
    "checklist": Kind("checklist", "block", ("checklist", "predeploy")),
    "health": Kind("health", "rollback", ("health", "postdeploy")),
    "smoke": Kind("smoke", "rollback", ("smoke", "postdeploy")),
    "metric": Kind("metric", "rollback", ("metric", "postdeploy")),
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str | None
    url: str | None
    service: str | None
    headers: Mapping[str, str]
    params: Mapping[str, Any]
    json: Any
    has_json: bool
    body: str | None
    timeout: float | None


@dataclass(frozen=True)
class Retry:
    until: float | None
    interval: float
    attempts: int | None
    stop_if: Expectation | None


@dataclass(frozen=True)
class Step:
    """One request, what it must answer, and the values saved from the answer."""

    name: str
    request: Request
    expect: Expectation
    save: Mapping[str, Any]  # name -> compiled JMESPath
    allow_write: bool
    retry: Retry | None
    line: int
    names: frozenset[str]  # the template names its request and expectation use


@dataclass(frozen=True)
class ParamSet:
    id: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """One check of a suite, before it is paired with environments."""

    suite: str
    name: str
    kind: str
    steps: tuple[Step, ...]
    envs: tuple[str, ...] | None
    skip_envs: tuple[str, ...]
    marks: tuple[str, ...]
    on_fail: str
    severity: str
    runbook: str | None
    description: str
    timeout: float | None
    retry: Retry | None
    params: tuple[ParamSet, ...]
    suite_vars: Mapping[str, Any]
    file: str
    line: int
    metric: MetricSpec | None = None
    checklist: Entry | None = None

    @property
    def id(self) -> str:
        """``suite::name``: how users name a check (``--ack``, reports, baselines)."""
        return f"{self.suite}::{self.name}"

    def applies_to(self, env: str) -> bool:
        return (self.envs is None or env in self.envs) and env not in self.skip_envs


@dataclass(frozen=True)
class Suite:
    name: str
    file: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class CheckInstance:
    """A check paired with one environment and one parametrize value: what one item runs."""

    check: Check
    env: Environment
    params: ParamSet | None

    @property
    def name(self) -> str:
        suffix = self.env.name + (f"-{self.params.id}" if self.params else "")
        return f"{self.check.name}[{suffix}]"

    def failure_header(self) -> list[str]:
        """The first lines of any failure message: which check, where, with what, runbook."""
        check = self.check
        lines = [f"{check.kind} check '{check.name}' failed in environment '{self.env.name}'",
                 f"  at {check.file}:{check.line}"]
        if self.params:
            lines.append(f"  parameters: {json.dumps(dict(self.params.values), default=str)}")
        if check.runbook:
            lines.append(f"  runbook: {check.runbook}")
        return lines

    def scope(self) -> dict[str, Any]:
        """Template names before any step has saved anything (lowest precedence first)."""
        scope: dict[str, Any] = {"env": {"name": self.env.name}, "env.name": self.env.name}
        scope.update(self.env.vars)
        scope.update(self.check.suite_vars)
        if self.params:
            scope.update(self.params.values)
        return scope


def _duration(node: YamlMap, key: str, where: str) -> float | None:
    if key not in node:
        return None
    try:
        return parse_duration(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None


def _request(node: YamlMap, where: str, default_service: str | None) -> Request:
    if ("path" in node) == ("url" in node):
        raise error_at("a request needs exactly one of 'path' (on a service) or 'url'", node, None,
                   where)
    service = node.get("service", default_service)
    if "path" in node and not service:
        raise error_at("no service for this path: set 'service' on the suite, the check or the "
                   "request, or use 'url'", node, "path", where)
    if "json" in node and "body" in node:
        raise error_at("use either 'json' or 'body', not both", node, "body", where)
    method = str(node.get("method", "GET")).upper()
    if method not in METHODS:
        raise error_at(f"unknown HTTP method {method!r}{suggest(method, METHODS)}; methods: "
                       f"{', '.join(METHODS)}", node, "method", where)
    return Request(
        method=method, path=node.get("path"), url=node.get("url"),
        service=service if "path" in node else None,
        headers={k: str(v) for k, v in node.get("headers", {}).items()},
        params=dict(node.get("params", {})), json=node.get("json"), has_json="json" in node,
        body=node.get("body"), timeout=_duration(node, "timeout", where))


def _save(node: YamlMap | None, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, expr in (node or {}).items():
        try:
            out[name] = compile_jmespath(expr)
        except ValueError as exc:
            assert isinstance(node, YamlMap)
            raise error_at(str(exc), node, name, where) from None
    return out


def _retry(node: YamlMap | None, where: str, base_dir: Path) -> Retry | None:
    if node is None:
        return None
    retry = Retry(until=_duration(node, "until", where),
                  interval=_duration(node, "interval", where) or 1.0,
                  attempts=node.get("attempts"),
                  stop_if=parse_expectation(node["stop_if"], f"{where}.stop_if", base_dir)
                  if "stop_if" in node else None)
    if retry.until is None and retry.attempts is None:
        raise error_at("retry needs 'until' or 'attempts'", node, None, where)
    return retry


def _step(node: YamlMap, where: str, name: str, default_service: str | None,
          base_dir: Path) -> Step:
    """A step; a single-request check is parsed as its own only step (``retry`` included)."""
    expect = node.get("expect", YamlMap())
    for key in COMMAND_EXPECT_KEYS:
        if key in expect:
            raise error_at(f"'{key}' is an expectation of a checklist command, not of a request",
                       expect, key, f"{where}.expect")
    request = _request(node["request"], f"{where}.request", default_service)
    # As in Tavern, an answer is expected to succeed unless the check says otherwise: a health
    # check without `status` must not pass on a 503.
    expectation = parse_expectation(expect, f"{where}.expect", base_dir, default_status=("2xx",))
    names = names_in([request.path, request.url, dict(request.headers), dict(request.params),
                      request.json, request.body]) | expectation.names()
    return Step(
        name=name, request=request, expect=expectation,
        save=_save(node.get("save"), f"{where}.save"),
        allow_write=bool(node.get("allow_write", False)),
        retry=_retry(node.get("retry"), f"{where}.retry", base_dir),
        line=node.line, names=frozenset(names))


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


_HTTP_KEYS = ("request", "expect", "save", "allow_write", "steps", "retry", "service")
# The keys each kind of check may have besides the common ones.
_OWN_KEYS: Mapping[str, frozenset[str]] = {
    "health": frozenset(_HTTP_KEYS), "smoke": frozenset(_HTTP_KEYS),
    "metric": frozenset(METRIC_KEYS), "checklist": frozenset((*_HTTP_KEYS, *checklist.KEYS)),
}
_KIND_KEYS = frozenset().union(*_OWN_KEYS.values())


def _kind_keys(node: YamlMap, where: str) -> None:
    """Keys that belong to another kind are an error, not silently ignored."""
    kind = node["kind"]
    for key in node:
        if key in _KIND_KEYS and key not in _OWN_KEYS[kind]:
            raise error_at(f"'{key}' does not apply to a {kind} check", node, key, where)
    if kind == "metric" and "query" not in node:
        raise error_at("a metric check needs 'query'", node, None, where)


def _steps(node: YamlMap, where: str, service: str | None, base_dir: Path) -> tuple[Step, ...]:
    if node["kind"] == "metric" or (node["kind"] == "checklist" and "request" not in node
                                    and "steps" not in node):
        return ()
    if "steps" in node:
        for key in ("request", "expect", "save", "allow_write"):
            if key in node:
                raise error_at(f"'{key}' belongs in a step when a check has 'steps'", node, key,
                               where)
        return tuple(_step(step, f"{where}.steps[{i}]", step.get("name", f"step {i + 1}"),
                           service, base_dir) for i, step in enumerate(node["steps"]))
    if "request" in node:
        return (_step(node, where, node["name"], service, base_dir),)
    raise error_at("a health or smoke check needs 'request' or 'steps'", node, None, where)


def _check(node: YamlMap, where: str, suite: YamlMap, suite_name: str, file: str,
           base_dir: Path) -> Check:
    _kind_keys(node, where)
    kind = KINDS[node["kind"]]
    entry = checklist.parse_entry(node, where) if kind.name == "checklist" else None
    steps = _steps(node, where, node.get("service", suite.get("service")), base_dir)
    timeout = _duration(node, "timeout", where)
    envs = node.get("envs", suite.get("envs"))
    return Check(
        suite=suite_name, name=node["name"], kind=kind.name, steps=steps,
        envs=tuple(envs) if envs is not None else None,
        skip_envs=tuple(node.get("skip_envs", suite.get("skip_envs", ()))),
        marks=tuple(dict.fromkeys([*suite.get("marks", ()), *node.get("marks", ())])),
        on_fail=node.get("on_fail", kind.on_fail), severity=node.get("severity", "normal"),
        runbook=node.get("runbook"), description=node.get("description", ""),
        timeout=timeout,
        retry=_retry(node.get("retry"), f"{where}.retry", base_dir) if "steps" in node else None,
        metric=parse_metric(node, where, timeout) if kind.name == "metric" else None,
        checklist=entry,
        params=_params(node.get("parametrize"), f"{where}.parametrize", node),
        suite_vars=dict(suite.get("vars", {})), file=file, line=node.line)


def load_suite(path: Path, display: str) -> Suite:
    """Parse and validate the suite file at ``path``; errors name ``display`` and the line."""
    with gc_paused():
        return _load_suite(path, display)


def _load_suite(path: Path, display: str) -> Suite:
    doc = load_file(path, display)
    if not isinstance(doc, YamlMap):
        raise ConfigError("a suite file must be a mapping with a 'checks' list", file=display,
                          line=1)
    validate(doc, "suite", display)
    name = doc.get("suite", path.stem)
    checks: list[Check] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(doc["checks"]):
        where = f"checks[{index}]"
        if node["name"] in seen:
            raise error_at(f"duplicate check name {node['name']!r} (first at line "
                       f"{seen[node['name']]})", node, "name", where)
        seen[node["name"]] = node.line
        checks.append(_check(node, where, doc, name, display, path.parent))
    return Suite(name=name, file=display, checks=tuple(checks))


def instances(check: Check, env: Environment) -> list[CheckInstance]:
    """The items ``check`` makes in ``env``; raises :class:`ConfigError` for names it cannot
    resolve there (an unknown service, an undefined template name)."""
    if not check.applies_to(env.name):
        return []
    made = [CheckInstance(check, env, p) for p in check.params] or [CheckInstance(check, env, None)]
    for instance in made[:1]:
        if check.metric is not None:
            _check_metric(check, check.metric, env, set(instance.scope()))
            continue
        if check.checklist is not None:
            _check_names(check.checklist.names(), set(instance.scope()), env, check.file,
                         check.line, f"checks.{check.name}.{check.checklist.key}")
            continue
        known = set(instance.scope())
        for index, step in enumerate(check.steps):
            where = f"checks.{check.name}" + (f".steps[{index}]" if len(check.steps) > 1 else "")
            if step.request.service is not None and step.request.service not in env.services:
                try:
                    env.service(step.request.service)
                except ConfigError as exc:
                    raise ConfigError(exc.message, file=check.file, line=step.line,
                                      key=f"{where}.service") from None
            _check_names(step.names, known, env, check.file, step.line, where)
            known |= set(step.save)
    return made


def _check_names(used: Set[str], known: set[str], env: Environment, file: str, line: int,
                 where: str) -> None:
    for name in sorted(used):
        if name not in known and name.split(".")[0] not in known:
            raise ConfigError(f"template '{{{{ {name} }}}}' is not defined in environment "
                              f"'{env.name}'; defined: {', '.join(sorted(known))}",
                              file=file, line=line, key=where)


def _check_metric(check: Check, spec: MetricSpec, env: Environment, known: set[str]) -> None:
    where = f"checks.{check.name}"
    try:
        source = env.metric_source(spec.source)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=check.file, line=check.line,
                          key=f"{where}.source") from None
    if spec.window is not None and not source.history:
        raise ConfigError(f"'window' needs a source with history, and '{spec.source}' in "
                          f"environment '{env.name}' is {source.describe()}; use 'observe' to "
                          f"watch it live instead", file=check.file, line=check.line,
                          key=f"{where}.window")
    used = names_in(spec.query)
    _check_names(used, known, env, check.file, check.line, f"{where}.query")
    problem = None if used else source.query_error(spec.query)
    if problem:
        raise ConfigError(f"{problem} (for source '{spec.source}', {source.describe()})",
                          file=check.file, line=check.line, key=f"{where}.query")
