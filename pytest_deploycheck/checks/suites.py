"""Suite files (SPEC §4): parsed and validated once, at collection, into frozen checks."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import checklist
from ..checklist import Entry
from ..checklist.command import EXPECT_KEYS as COMMAND_EXPECT_KEYS
from ..environments import NO_ENVIRONMENTS, Environment, UnknownEnvironment, environment_names
from ..errors import ConfigError
from ..inputs.expectations import Expectation, compile_jmespath, parse_expectation
from ..inputs.templating import check_site, matches, names_in, render, sites
from ..inputs.validation import suggest, validate
from ..inputs.yamlfile import YamlMap, error_at, gc_paused, load_file
from ..units import parse_duration
from .metricspec import METRIC_KEYS, MetricSpec, parse_metric

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
    save: Mapping[str, Any]  # name -> compiled JMESPath, or its text when it has templates
    allow_write: bool
    retry: Retry | None
    line: int
    names: frozenset[str]  # the template names its request and expectation use
    # Where each of ``names`` is first used, and where the request's service is named: the
    # (line, key) an error about it points at.
    names_at: Mapping[str, tuple[int, str]] = field(default_factory=dict)
    service_at: tuple[int, str] = (0, "")
    method_at: tuple[int, str] = (0, "")


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
    key_lines: Mapping[str, int] = field(default_factory=dict)  # the line of each of its keys

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

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

    def base_scope(self) -> dict[str, Any]:
        """The names parametrize values may use: ``env`` (``env.name``, the environment's name,
        as in rollback and notify actions), environment ``vars`` and suite ``vars``."""
        scope: dict[str, Any] = {"env": self.env.name, "env.name": self.env.name}
        scope.update(self.env.vars)
        scope.update(self.check.suite_vars)
        return scope

    def scope(self) -> dict[str, Any]:
        """Template names before any step has saved anything (lowest precedence first)."""
        scope = self.base_scope()
        if self.params:
            scope.update(render(dict(self.params.values), scope))
        return scope


def _duration(node: YamlMap, key: str, where: str) -> float | None:
    if key not in node:
        return None
    try:
        return parse_duration(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None


# A service name and where it was written: (name, line, key) of a suite's or check's `service`.
ServiceRef = tuple[str | None, int, str]
_REQUEST_FIELDS = ("path", "url", "headers", "params", "json", "body")


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
        if "{{" in str(expr):  # compiled once rendered, when the answer is in
            out[name] = str(expr)
            continue
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


def _step(node: YamlMap, where: str, name: str, default_service: ServiceRef,
          base_dir: Path, label: str) -> Step:
    """A step; a single-request check is parsed as its own only step (``retry`` included).

    ``label`` is the step's key path as errors found per environment name it
    (``checks.<name>``, ``checks.<name>.steps[1]``).
    """
    expect = node.get("expect", YamlMap())
    for key in COMMAND_EXPECT_KEYS:
        if key in expect:
            raise error_at(f"'{key}' is an expectation of a checklist command, not of a request",
                       expect, key, f"{where}.expect")
    raw = node["request"]
    request = _request(raw, f"{where}.request", default_service[0])
    # As in Tavern, an answer is expected to succeed unless the check says otherwise: a health
    # check without `status` must not pass on a 503.
    expectation = parse_expectation(expect, f"{where}.expect", base_dir, default_status=("2xx",))
    names_at: dict[str, tuple[int, str]] = {}
    for key in _REQUEST_FIELDS:
        if key in raw:
            at = (raw.line_of(key), f"{label}.request.{key}")
            for used in names_in(raw[key]):
                names_at.setdefault(used, at)
    for used in expectation.names():
        names_at.setdefault(used, (node.line_of("expect"), f"{label}.expect"))
    save = _save(node.get("save"), f"{where}.save")
    for used in names_in([expr for expr in save.values() if isinstance(expr, str)]):
        names_at.setdefault(used, (node.line_of("save"), f"{label}.save"))
    retry = _retry(node.get("retry"), f"{where}.retry", base_dir)
    for used in retry.stop_if.names() if retry and retry.stop_if else ():
        names_at.setdefault(used, (node.line_of("retry"), f"{label}.retry.stop_if"))
    service_at = (raw.line_of("service"), f"{label}.request.service") if "service" in raw \
        else default_service[1:]
    return Step(
        name=name, request=request, expect=expectation,
        save=save, allow_write=bool(node.get("allow_write", False)), retry=retry,
        line=node.line, names=frozenset(names_at), names_at=names_at, service_at=service_at,
        method_at=(raw.line_of("method"), f"{label}.request.method"))


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


def _steps(node: YamlMap, where: str, service: ServiceRef, base_dir: Path) -> tuple[Step, ...]:
    if node["kind"] == "metric" or (node["kind"] == "checklist" and "request" not in node
                                    and "steps" not in node):
        return ()
    if "steps" in node:
        for key in ("request", "expect", "save", "allow_write"):
            if key in node:
                raise error_at(f"'{key}' belongs in a step when a check has 'steps'", node, key,
                               where)
        label = f"checks.{node['name']}"
        many = len(node["steps"]) > 1
        return tuple(_step(step, f"{where}.steps[{i}]", step.get("name", f"step {i + 1}"),
                           service, base_dir, f"{label}.steps[{i}]" if many else label)
                     for i, step in enumerate(node["steps"]))
    if "request" in node:
        return (_step(node, where, node["name"], service, base_dir, f"checks.{node['name']}"),)
    raise error_at("a health or smoke check needs 'request' or 'steps'", node, None, where)


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
    entry = checklist.parse_entry(node, where) if kind.name == "checklist" else None
    service: ServiceRef = (node["service"], node.line_of("service"),
                           f"checks.{node['name']}.service") if "service" in node else \
        (suite.get("service"), suite.line_of("service"), "service")
    steps = _steps(node, where, service, base_dir)
    timeout = _duration(node, "timeout", where)
    envs = _environments(node, "envs", where, known)
    skip_envs = _environments(node, "skip_envs", where, known)
    return Check(
        suite=suite_name, name=node["name"], kind=kind.name, steps=steps,
        envs=envs if envs is not None else _environments(suite, "envs", "", known),
        skip_envs=skip_envs if skip_envs is not None else
        _environments(suite, "skip_envs", "", known) or (),
        marks=tuple(dict.fromkeys([*suite.get("marks", ()), *node.get("marks", ())])),
        on_fail=node.get("on_fail", kind.on_fail), severity=node.get("severity", "normal"),
        runbook=node.get("runbook"), description=node.get("description", ""),
        timeout=timeout,
        retry=_retry(node.get("retry"), f"{where}.retry", base_dir) if "steps" in node else None,
        metric=parse_metric(node, where, timeout) if kind.name == "metric" else None,
        checklist=entry,
        params=_params(node.get("parametrize"), f"{where}.parametrize", node),
        suite_vars=dict(suite.get("vars", {})), file=file, line=node.line,
        key_lines=node.key_lines)


_EXPECT_FIELDS = ("status", "status/[]", "json/**", "headers/*", "headers/*/regex",
                  "body/contains", "body/regex")
# The fields of a check (or of one of its steps) whose templates are rendered, and those whose
# keys are; every other {{ in a suite is a collection error, never text sent as written.
RENDERED_VALUES = (
    "request/path", "request/url", "request/headers/*", "request/params/*",
    "request/params/*/[]", "request/json", "request/json/**", "request/body",
    *(f"expect/{field}" for field in _EXPECT_FIELDS),
    *(f"retry/stop_if/{field}" for field in _EXPECT_FIELDS),
    "expect/stdout", "expect/stderr", "save/*", "parametrize/**",
    "command", "command/[]", "cwd", "env/*", "files/[]", "files/[]/path",
    "git/path", "git/branch", "git/tag", "git/up_to_date", "manual", "query",
)
RENDERED_KEYS = ("request/headers/*", "request/params/*", "request/json/**", "expect/json/**",
                 "expect/headers/*", "retry/stop_if/json/**", "retry/stop_if/headers/*")
# Where ${...} belongs to the program run, not to this plugin: a checklist command's text.
_PROGRAM_TEXT = ("command", "command/[]")
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
        rendered = field is not None and matches(
            field, RENDERED_KEYS if site.is_key else RENDERED_VALUES)
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
        checks.append(_check(node, where, doc, name, display, path.parent, known))
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
        _check_names(dict.fromkeys(names_in([dict(p.values) for p in check.params]),
                                   (check.line_of("parametrize"),
                                    f"checks.{check.name}.parametrize")),
                     set(instance.base_scope()), env, check.file)
        if check.metric is not None:
            _check_metric(check, check.metric, env, set(instance.scope()))
            continue
        if check.checklist is not None:
            at = (check.line_of(check.checklist.key),
                  f"checks.{check.name}.{check.checklist.key}")
            _check_names(dict.fromkeys(check.checklist.names(), at), set(instance.scope()),
                         env, check.file)
            continue
        known = set(instance.scope())
        for step in check.steps:
            if step.request.service is not None and step.request.service not in env.services:
                try:
                    env.service(step.request.service)
                except ConfigError as exc:
                    line, key = step.service_at
                    raise ConfigError(exc.message, file=check.file, line=line,
                                      key=key) from None
            _check_names(step.names_at, known, env, check.file)
            _check_write(check, step, env)
            known |= set(step.save)
    return made


def _check_write(check: Check, step: Step, env: Environment) -> None:
    """A write the protected ``env`` would refuse is a collection error: refused at run time,
    it failed a rollback gate and rolled back a deploy that nothing was wrong with."""
    if env.protected and step.request.method not in SAFE_METHODS and not step.allow_write:
        line, key = step.method_at
        where = "the step" if len(check.steps) > 1 else "the check"
        raise ConfigError(f"environment '{env.name}' is protected: {step.request.method} would be "
                          f"refused; set 'allow_write: true' on {where} if it must write there, "
                          f"or leave '{env.name}' out with 'skip_envs'", file=check.file,
                          line=line, key=key)


def _check_names(used: Mapping[str, tuple[int, str]], known: set[str], env: Environment,
                 file: str) -> None:
    """Every name in ``used`` is one of ``known``; ``used`` maps each to the (line, key) that
    uses it."""
    for name in sorted(used):
        if name not in known and name.split(".")[0] not in known:
            line, key = used[name]
            raise ConfigError(f"template '{{{{ {name} }}}}' is not defined in environment "
                              f"'{env.name}'; defined: {', '.join(sorted(known))}",
                              file=file, line=line, key=key)


def _check_metric(check: Check, spec: MetricSpec, env: Environment, known: set[str]) -> None:
    where = f"checks.{check.name}"
    try:
        source = env.metric_source(spec.source)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=check.file, line=check.line_of("source"),
                          key=f"{where}.source") from None
    if spec.window is not None and not source.history:
        raise ConfigError(f"'window' needs a source with history, and '{spec.source}' in "
                          f"environment '{env.name}' is {source.describe()}; use 'observe' to "
                          f"watch it live instead", file=check.file, line=check.line_of("window"),
                          key=f"{where}.window")
    used = names_in(spec.query)
    _check_names(dict.fromkeys(used, (check.line_of("query"), f"{where}.query")), known, env,
                 check.file)
    problem = None if used else source.query_error(spec.query)
    if problem:
        raise ConfigError(f"{problem} (for source '{spec.source}', {source.describe()})",
                          file=check.file, line=check.line_of("query"), key=f"{where}.query")
