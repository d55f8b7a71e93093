"""The check type ``http``: checks that send requests (health, smoke, checklist requests).

Parsed from a check's ``request`` or ``steps`` into an :class:`HttpSpec`; run with requests,
expectations, ``save``, ``retry`` and deadlines.

Plain Python over :mod:`httpx`; the pytest items only ask for a :class:`Result`. A check never
blocks past its deadline: every request gets the time that is left, and bodies are read in chunks
so that a slow or endless body is cut off by time and by size.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from ..checklist.command import EXPECT_KEYS as COMMAND_EXPECT_KEYS
from ..errors import CheckError, ConfigError
from ..inputs.endpoints import describe_error
from ..inputs.expectations import (
    Expectation,
    JsonPathError,
    Mismatch,
    Response,
    compile_jmespath,
    evaluate,
    missing_element,
    parse_expectation,
)
from ..inputs.located import duration_at, error_at
from ..inputs.templating import names_in, render
from ..inputs.validation import suggest
from ..inputs.yamlfile import YamlMap
from ..jsondoc import loads, readings
from ..runtime.clients import (
    ALLOW_WRITE,
    SAFE_METHODS,
    BodyError,
    ClientPool,
    ProtectedEnvironmentError,
    leaves_service,
    origin,
    read_body,
    service_origin,
)
from ..secrets import Redactor, is_secret_header, is_secret_query_parameter, is_secret_variable
from ..units import format_duration
from .base import (
    Attachment,
    Check,
    CheckInstance,
    CheckResult,
    Evidence,
    EvidenceStep,
    ParseContext,
    RunContext,
    Templates,
    check_names,
)
from .retry import Retry, parse_retry, retrying
from .sql import EXPECT_KEYS as SQL_EXPECT_KEYS

if TYPE_CHECKING:
    from ..environments import Environment

SNIPPET_CHARS = 1500
MAX_BODY = 64 * 1024  # characters of a body kept in an attachment
# RFC 9110's methods and PATCH; CONNECT opens a tunnel, which no check means to do.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


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
class HttpSpec:
    """A check that sends requests: its steps (one for a single-request check) and the
    check-wide ``retry`` of a check with ``steps``."""

    steps: tuple[Step, ...]
    retry: Retry | None
    type: str = "http"

    @property
    def read_only(self) -> bool:
        """Every step uses a safe method (GET, HEAD, OPTIONS) and none allows a write."""
        return all(step.request.method in SAFE_METHODS and not step.allow_write
                   for step in self.steps)

    @property
    def waits(self) -> bool:
        return self.retry is not None or any(step.retry is not None for step in self.steps)

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset().union(*(step.names for step in self.steps))

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        """Each step's service exists in ``env``, and each template name is known there or
        saved by an earlier step."""
        known = set(known)
        for step in self.steps:
            if step.request.service is not None and step.request.service not in env.services:
                try:
                    env.service(step.request.service)
                except ConfigError as exc:
                    line, key = step.service_at
                    raise ConfigError(exc.message, file=check.file, line=line,
                                      key=key) from None
            check_names(step.names_at, known, env, check.file)
            self._check_write(check, step, env)
            known |= set(step.save)

    def _check_write(self, check: Check, step: Step, env: Environment) -> None:
        """A write the protected ``env`` would refuse is a collection error: refused at run
        time, it failed a rollback gate and rolled back a deploy that nothing was wrong with."""
        if env.protected and step.request.method not in SAFE_METHODS and not step.allow_write:
            line, key = step.method_at
            where = "the step" if len(self.steps) > 1 else "the check"
            raise ConfigError(f"environment '{env.name}' is protected: {step.request.method} "
                              f"would be refused; set 'allow_write: true' on {where} if it must "
                              f"write there, or leave '{env.name}' out with 'skip_envs'",
                              file=check.file, line=line, key=key)

    def services(self) -> list[str]:
        return sorted({s.request.service for s in self.steps if s.request.service})

    def companion(self, name: str) -> None:
        return None

    def calls(self) -> list[str] | None:
        if any(not s.request.service for s in self.steps):
            return None  # an absolute url: a failure there is not one service's
        return sorted({s.request.service for s in self.steps if s.request.service})

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        """Each request and response; with several steps, one Allure step each."""
        if not isinstance(result, Result):
            return []
        if len(self.steps) <= 1:
            return [one for e in result.exchanges for one in _exchange_evidence(e, redactor)]
        steps: list[Evidence] = []
        for exchange in result.exchanges:
            status = exchange.response.status if exchange.response else exchange.error
            failure = exchange.error or "; ".join(str(m) for m in exchange.mismatches)
            steps.append(EvidenceStep(
                f"{exchange.step}: {exchange.method} {redactor.redact(exchange.url)} -> {status}",
                redactor.redact(failure) if failure else None,
                _exchange_evidence(exchange, redactor)))
        # A flow that stopped early still shows the steps it never got to.
        ran = {exchange.step for exchange in result.exchanges}
        steps += [EvidenceStep(f"{step.name}: not run (an earlier step failed)", None, [],
                               skipped=True) for step in self.steps if step.name not in ran]
        return steps


def _exchange_evidence(exchange: Exchange, redactor: Redactor) -> list[Attachment]:
    request = [f"{exchange.method} {exchange.url}"]
    request += [f"{name}: {value}" for name, value in exchange.headers]
    if exchange.body:
        request += ["", pretty_body(exchange.body, MAX_BODY)]
    shown = [Attachment("request", redactor.redact("\n".join(request)))]
    response = exchange.response
    if exchange.error:
        text = f"no answer: {exchange.error}"
    elif response is not None:
        lines = [f"{response.status} in {response.elapsed * 1000:.0f}ms"]
        lines += [f"{name}: {value}"
                  for name, value in redactor.redact_headers(response.headers.items())]
        lines += ["", pretty_body(response.text, MAX_BODY)]
        text = "\n".join(lines)
    else:
        return shown
    return [*shown, Attachment("response", redactor.redact(text))]


def _spec(check: Check) -> HttpSpec:
    assert isinstance(check.spec, HttpSpec)
    return check.spec


_EXPECT_FIELDS = ("status", "status/[]", "json/**", "headers/*", "headers/*/regex",
                  "body/contains", "body/regex")


class _HttpType:
    """Checks that send requests: health and smoke checks, and checklist requests."""

    name = "http"
    templates = Templates(
        values=("request/path", "request/url", "request/headers/*", "request/params/*",
                "request/params/*/[]", "request/json", "request/json/**", "request/body",
                *(f"expect/{field}" for field in _EXPECT_FIELDS),
                *(f"retry/stop_if/{field}" for field in _EXPECT_FIELDS), "save/*"),
        keys=("request/headers/*", "request/params/*", "request/json/**", "expect/json/**",
              "expect/headers/*", "retry/stop_if/json/**", "retry/stop_if/headers/*"))
    keys = frozenset(("request", "expect", "save", "allow_write", "steps", "retry"))

    def keys_for(self, kind: str) -> frozenset[str]:
        return self.keys if kind in ("health", "smoke", "checklist") else frozenset()

    def parse(self, node: YamlMap, at: ParseContext) -> HttpSpec:
        where, suite = at.where, at.suite
        service: ServiceRef = (node["service"], node.line_of("service"),
                               f"{where}.service") if "service" in node else \
            (suite.get("service"), suite.line_of("service"), "service")
        steps = _steps(node, where, service, at.base_dir)
        return HttpSpec(steps=steps, retry=_retry(node.get("retry"), f"{where}.retry",
                                                  at.base_dir) if "steps" in node else None)

    def runner(self, context: RunContext) -> HttpCheckRunner:
        return HttpCheckRunner(context.pool, context.redactor, sleep=context.sleep)


TYPE = _HttpType()


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
        body=node.get("body"), timeout=duration_at(node, "timeout", where))


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
    stop_if = parse_expectation(node["stop_if"], f"{where}.stop_if", base_dir) \
        if node is not None and "stop_if" in node else None
    return parse_retry(node, where, stop_if)


def _step(node: YamlMap, where: str, name: str, default_service: ServiceRef,
          base_dir: Path) -> Step:
    """A step; a single-request check is parsed as its own only step (``retry`` included).
    ``where`` is its key path (``checks[0]``, ``checks[0].steps[1]``), kept for the errors
    found per environment."""
    expect = node.get("expect", YamlMap())
    for key in COMMAND_EXPECT_KEYS:
        if key in expect:
            raise error_at(f"'{key}' is an expectation of a checklist command, not of a request",
                       expect, key, f"{where}.expect")
    for key in SQL_EXPECT_KEYS:
        if key in expect:
            raise error_at(f"'{key}' is an expectation of a sql check, not of a request",
                           expect, key, f"{where}.expect")
    if "request" not in node:
        raise error_at("a step needs 'request' (or, in a browser check, 'browser')", node, None,
                       where)
    raw = node["request"]
    request = _request(raw, f"{where}.request", default_service[0])
    # As in Tavern, an answer is expected to succeed unless the check says otherwise: a health
    # check without `status` must not pass on a 503.
    expectation = parse_expectation(expect, f"{where}.expect", base_dir, default_status=("2xx",))
    names_at: dict[str, tuple[int, str]] = {}
    for key in _REQUEST_FIELDS:
        if key in raw:
            at = (raw.line_of(key), f"{where}.request.{key}")
            for used in names_in(raw[key]):
                names_at.setdefault(used, at)
    for used in expectation.names():
        names_at.setdefault(used, (node.line_of("expect"), f"{where}.expect"))
    save = _save(node.get("save"), f"{where}.save")
    for used in names_in([expr for expr in save.values() if isinstance(expr, str)]):
        names_at.setdefault(used, (node.line_of("save"), f"{where}.save"))
    retry = _retry(node.get("retry"), f"{where}.retry", base_dir)
    for used in retry.stop_if.names() if retry and retry.stop_if else ():
        names_at.setdefault(used, (node.line_of("retry"), f"{where}.retry.stop_if"))
    service_at = (raw.line_of("service"), f"{where}.request.service") if "service" in raw \
        else default_service[1:]
    return Step(
        name=name, request=request, expect=expectation,
        save=save, allow_write=bool(node.get("allow_write", False)), retry=retry,
        line=node.line, names=frozenset(names_at), names_at=names_at, service_at=service_at,
        method_at=(raw.line_of("method"), f"{where}.request.method"))


def _steps(node: YamlMap, where: str, service: ServiceRef, base_dir: Path) -> tuple[Step, ...]:
    if "steps" in node:
        for key in ("request", "expect", "save", "allow_write"):
            if key in node:
                raise error_at(f"'{key}' belongs in a step when a check has 'steps'", node, key,
                               where)
        return tuple(_step(step, f"{where}.steps[{i}]", step.get("name", f"step {i + 1}"),
                           service, base_dir)
                     for i, step in enumerate(node["steps"]))
    if "request" in node:
        return (_step(node, where, node["name"], service, base_dir),)
    raise error_at("a health or smoke check needs 'request' or 'steps'", node, None, where)


@dataclass
class Exchange:
    """One request and what came of it, kept for the failure message and for reports."""

    step: str
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: str | None
    response: Response | None = None
    error: str | None = None
    fatal: bool = False  # retrying cannot help (a refused write, an undefined template name)
    attempts: int = 1
    mismatches: list[Mismatch] = field(default_factory=list)


@dataclass
class _Attempt:
    """What the latest pass over a check's steps produced."""

    exchanges: list[Exchange] = field(default_factory=list)
    reason: str | None = None
    stop: bool = False

    def reset(self) -> None:
        self.exchanges, self.reason, self.stop = [], None, False


@dataclass
class Result:
    """The outcome of one check instance."""

    passed: bool
    reason: str
    exchanges: list[Exchange]
    attempts: int
    duration: float
    note: str = ""

    @property
    def outcome(self) -> str:
        return "passed" if self.passed else "failed"

    def details(self) -> dict[str, Any]:
        """Plain data for reports: each exchange's request line, status and timing."""
        return {"attempts": self.attempts, "version": self.reported_version(), "exchanges": [
            {"step": e.step, "method": e.method, "url": e.url, "error": e.error,
             "status": e.response.status if e.response else None,
             "elapsed": e.response.elapsed if e.response else None}
            for e in self.exchanges]}

    def reported_version(self) -> str | None:
        """The ``version`` a JSON answer reports (a health endpoint's), for reports."""
        for exchange in self.exchanges:
            if exchange.response is None:
                continue
            try:
                body = exchange.response.json()
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get("version"), str):
                return str(body["version"])
        return None

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        """The failure message: what was asked, expected and seen, and where in the YAML."""
        check = instance.check
        lines = instance.failure_header()
        for exchange in self.exchanges:
            lines.append("")
            label = f"[{exchange.step}] " if len(_spec(check).steps) > 1 else ""
            lines.append(f"{label}{exchange.method} {exchange.url}")
            lines.extend(f"  {name}: {value}" for name, value in exchange.headers)
            if exchange.body:
                lines.append(f"  body: {_snippet(exchange.body, 300)}")
            if exchange.error:
                lines.append(f"  -> {exchange.error}")
            elif exchange.response is not None:
                response = exchange.response
                lines.append(f"  -> {response.status} in {format_duration(response.elapsed)}")
            for mismatch in exchange.mismatches:
                lines.append(f"  FAILED {mismatch}")
            if exchange.attempts > 1:
                lines.append(f"  (last of {exchange.attempts} attempts)")
            if exchange.mismatches and exchange.response is not None:
                lines.append("  response body:")
                body = pretty_body(exchange.response.text)
                lines.extend(f"    {line}" for line in body.splitlines())
        if self.attempts > 1:
            lines.append(f"\n(last of {self.attempts} attempts of the whole check, "
                         f"{format_duration(self.duration)})")
        return redactor.redact("\n".join(lines))


def _save_expression(expr: Any, scope: Mapping[str, Any]) -> Any:
    """A save's compiled JMESPath: one with templates is kept as text and compiled once
    rendered."""
    return compile_jmespath(str(render(expr, scope))) if isinstance(expr, str) else expr


def _snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def pretty_body(text: str, limit: int = SNIPPET_CHARS) -> str:
    """A body for people: JSON indented, anything else as it is; cut at ``limit``
    characters. A body with a repeated key or nested too deep is shown as it came."""
    with contextlib.suppress(ValueError):
        text = json.dumps(loads(text), indent=2, ensure_ascii=False)
    return _snippet(text, limit) if text else "(empty)"


def _cert_not_after(response: httpx.Response) -> float | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if ssl_object is None:
        return None
    cert = ssl_object.getpeercert()
    # getpeercert() is empty when verification is off: expiry is known only for verified certs.
    return ssl.cert_time_to_seconds(cert["notAfter"]) if cert and "notAfter" in cert else None


def secret_names(check: Check) -> frozenset[str]:
    """The template names whose values a check sends as secrets: in a secret header, a
    credential query parameter or a secret-named field of a JSON body, or named like a secret.

    A step saving one of these must treat the value as a secret from the moment it reads it
    (the step may yet fail and show its response), not only once a later step sends it.
    """
    names: set[str] = set()
    for step in _spec(check).steps:
        request = step.request
        names |= names_in([value for name, value in request.headers.items()
                           if is_secret_header(name)])
        names |= names_in([value for name, value in request.params.items()
                           if is_secret_query_parameter(name)])
        names |= names_in(_secret_fields(request.json))
        names |= {name for name in step.save if is_secret_variable(name)}
    return frozenset(names)


def _secret_fields(value: Any) -> list[Any]:
    """The values of the secret-named fields anywhere in a JSON body (``password``,
    ``api_key``)."""
    found: list[Any] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and is_secret_variable(key) \
                    and isinstance(item, (str, int, float)):
                found.append(item)
            else:
                found += _secret_fields(item)
    elif isinstance(value, list):
        for item in value:
            found += _secret_fields(item)
    return found


class HttpCheckRunner:
    """Runs health and smoke check instances with a shared :class:`ClientPool`."""

    def __init__(self, pool: ClientPool, redactor: Redactor,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.pool = pool
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self._secret_names: dict[int, frozenset[str]] = {}  # by id() of the check

    def run(self, instance: CheckInstance) -> Result:
        check = instance.check
        start = self.clock()
        deadline = start + check.timeout if check.timeout is not None else None
        attempt = _Attempt()

        def once() -> tuple[bool, bool]:
            attempt.reset()
            ok, stop = self._steps(instance, _spec(check).retry, deadline, attempt)
            return ok, stop

        attempts = self._retrying(once, _spec(check).retry, deadline)
        return Result(passed=attempt.reason is None, reason=attempt.reason or "",
                      exchanges=attempt.exchanges, attempts=attempts,
                      duration=self.clock() - start)

    def _retrying(self, once: Callable[[], tuple[bool, bool]], retry: Retry | None,
                  deadline: float | None) -> int:
        return retrying(once, retry, deadline, self.clock, self.sleep)

    def _steps(self, instance: CheckInstance, retry: Retry | None, deadline: float | None,
               attempt: _Attempt) -> tuple[bool, bool]:
        """One pass over the steps, each retried on its own when it has ``retry``."""
        scope = instance.scope()
        for step in _spec(instance.check).steps:
            first = len(attempt.exchanges)

            def once(step: Step = step, first: int = first) -> tuple[bool, bool]:
                del attempt.exchanges[first:]
                self._step(instance, step, scope, deadline, step.retry or retry, attempt)
                return attempt.reason is None, attempt.stop

            if step.retry is not None:
                tries = self._retrying(once, step.retry, deadline)
                attempt.exchanges[-1].attempts = tries
            else:
                once()
            if attempt.reason is not None:
                return False, attempt.stop
        return True, False

    def _step(self, instance: CheckInstance, step: Step, scope: dict[str, Any],
              deadline: float | None, retry: Retry | None, attempt: _Attempt) -> None:
        """Send one step and record on ``attempt`` why it failed and whether to give up."""
        exchange = self._send(instance, step, scope, deadline)
        attempt.exchanges.append(exchange)
        attempt.reason, attempt.stop = None, False
        if exchange.error:
            attempt.reason, attempt.stop = exchange.error, exchange.fatal
            return
        response = exchange.response
        assert response is not None
        if step.save:
            self._learn_saved_secrets(instance.check, step, response, scope)
        exchange.mismatches = step.expect.judge(response, scope) or \
            self._save(step, response, scope)
        if not exchange.mismatches:
            return
        attempt.reason = str(exchange.mismatches[0])
        if retry is not None and retry.stop_if is not None \
                and not retry.stop_if.judge(response, scope):
            attempt.reason += " (gave up: the answer matches retry.stop_if)"
            attempt.stop = True

    def _learn_saved_secrets(self, check: Check, step: Step, response: Response,
                             scope: dict[str, Any]) -> None:
        """Teach the redactor the values this step saves for secret use, before its
        expectations are judged: a failing step shows its response."""
        secret = self._secret_names.get(id(check))
        if secret is None:
            secret = self._secret_names[id(check)] = secret_names(check)
        wanted = []
        for name, expr in step.save.items():
            if name in secret:
                with contextlib.suppress(ValueError, CheckError):  # the save reports it
                    wanted.append(_save_expression(expr, scope))
        if not wanted:
            return
        try:
            documents = [response.json()]
        except ValueError:
            # The save will fail, and the failure shows the body: mask what any reading of a
            # body with a repeated key would have saved.
            documents = readings(response.body)
        for document in documents:
            for expr in wanted:
                with contextlib.suppress(JsonPathError):  # the save reports it
                    value = evaluate(expr.parsed, document)
                    if value is not None:
                        self.redactor.add(value if isinstance(value, str) else json.dumps(value))

    def _learn_sent_secrets(self, url: str, payload: Any) -> None:
        """Teach the redactor the credentials in the URL as written (its query string may
        not be what is sent) and in the secret-named fields of a JSON body (``password``):
        they are shown, and the server may echo them back. Headers and the URL sent are
        learned as the request goes out (see ``runtime/clients.py``)."""
        if "?" in url or "@" in url:
            self.redactor.add_url(url)
        for value in _secret_fields(payload):
            self.redactor.add(str(value))

    def _save(self, step: Step, response: Response, scope: dict[str, Any]) -> list[Mismatch]:
        if not step.save:
            return []
        try:
            document = response.json()
        except ValueError as exc:
            return [Mismatch("save", "a JSON body", str(exc))]
        missing = []
        for name, expr in step.save.items():
            try:
                expr = _save_expression(expr, scope)
            except (ValueError, CheckError) as exc:
                missing.append(Mismatch(f"save {name}", "a JMESPath expression", str(exc)))
                continue
            try:
                # A projection saved without its missing elements would be sent as if whole.
                absent = missing_element(expr.parsed, document)
                value = evaluate(expr.parsed, document)
            except JsonPathError as exc:
                missing.append(Mismatch(f"save {name}", f"a value at {expr.expression}",
                                        str(exc)))
                continue
            if absent is not None:
                missing.append(Mismatch(f"save {name}", f"a value at {expr.expression}", absent))
                continue
            if value is None:
                missing.append(Mismatch(f"save {name}", f"a value at {expr.expression}", "null"))
                continue
            scope[name] = value
        return missing

    def _send(self, instance: CheckInstance, step: Step, scope: dict[str, Any],
              deadline: float | None) -> Exchange:
        env, request = instance.env, step.request
        try:
            url = str(render(request.url if request.url is not None else request.path, scope))
            headers = {k: str(v) for k, v in render(dict(request.headers), scope).items()}
            params = render(dict(request.params), scope)
            payload = render(request.json, scope) if request.has_json else None
            content = render(request.body, scope) if request.body is not None else None
        except CheckError as exc:
            return Exchange(step.name, request.method, str(request.path or request.url), [], None,
                            error=str(exc), fatal=True)
        service = env.service(request.service) if request.service else None
        refused = leaves_service(url, service) if service else None
        if refused:
            self._learn_sent_secrets(url, None)  # it is shown: mask credentials in its query
            return Exchange(step.name, request.method, url, [], None, error=refused, fatal=True)
        client = self.pool.client(env, service)
        timeout = request.timeout or (service.timeout if service else env.timeout)
        if deadline is not None:
            timeout = max(min(timeout, deadline - self.clock()), 0.001)
        shown = dict(service.headers) if service else {}
        shown.update(headers)
        body_text = json.dumps(payload) if request.has_json else content
        # What httpx sends: a relative URL goes after the service URL's path (string joining,
        # since URL.join would parse both for a line of text).
        shown_url = f"{service.url.rstrip('/')}/{url.lstrip('/')}" \
            if service and "://" not in url else url
        self._learn_sent_secrets(shown_url, payload)
        exchange = Exchange(step.name, request.method, shown_url,
                            self.redactor.redact_headers(shown), body_text)
        started = time.perf_counter()
        try:
            # An empty params mapping would drop a query string written in the path.
            built = client.build_request(
                request.method, url, headers=headers, params=params or None,
                json=payload if request.has_json else None, content=content, timeout=timeout,
                extensions={ALLOW_WRITE: True} if step.allow_write else None)
            if service and origin(built.url) != service_origin(service.url):
                # What httpx would send, whatever the path looked like.
                exchange.error = leaves_service(str(built.url), service) or \
                    f"refused: {built.url} is not on service '{service.name}'"
                exchange.fatal = True
                return exchange
            with contextlib.closing(client.send(built, stream=True)) as answer:
                # Read the certificate before the body: the connection may close after it.
                cert_not_after = _cert_not_after(answer)
                body = read_body(answer, started, timeout)
                exchange.response = Response(
                    status=answer.status_code, headers=answer.headers, body=body,
                    elapsed=time.perf_counter() - started, cert_not_after=cert_not_after)
        except ProtectedEnvironmentError as exc:
            exchange.error, exchange.fatal = str(exc), True
        except BodyError as exc:
            exchange.error = str(exc)
        except httpx.HTTPError as exc:
            exchange.error = describe_error(exc, timeout)
        except (OSError, ValueError, ssl.SSLError) as exc:
            exchange.error = f"{exc} ({exc.__class__.__name__})"
        return exchange
