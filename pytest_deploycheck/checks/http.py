"""Running health and smoke checks: requests, expectations, ``save``, ``retry``, deadlines.

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
from typing import Any

import httpx

from ..errors import CheckError
from ..inputs.endpoints import describe_error
from ..inputs.expectations import (
    JsonPathError,
    Mismatch,
    Response,
    compile_jmespath,
    evaluate,
    missing_element,
)
from ..inputs.templating import names_in, render
from ..jsondoc import loads, readings
from ..runtime.clients import (
    ALLOW_WRITE,
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
from .suites import Check, CheckInstance, Retry, Step

SNIPPET_CHARS = 1500


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
            label = f"[{exchange.step}] " if len(check.steps) > 1 else ""
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
    for step in check.steps:
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
            ok, stop = self._steps(instance, check.retry, deadline, attempt)
            return ok, stop

        attempts = self._retrying(once, check.retry, deadline)
        return Result(passed=attempt.reason is None, reason=attempt.reason or "",
                      exchanges=attempt.exchanges, attempts=attempts,
                      duration=self.clock() - start)

    def _retrying(self, once: Callable[[], tuple[bool, bool]], retry: Retry | None,
                  deadline: float | None) -> int:
        """Call ``once`` (returning ok, give-up) until it succeeds or ``retry`` runs out.

        Returns how many attempts were made. Never sleeps past ``retry.until`` or ``deadline``.
        """
        start = self.clock()
        until = start + retry.until if retry and retry.until is not None else None
        attempts = 0
        while True:
            attempts += 1
            ok, stop = once()
            if ok or stop or retry is None:
                return attempts
            if retry.attempts is not None and attempts >= retry.attempts:
                return attempts
            now = self.clock()
            limits = [limit for limit in (until, deadline) if limit is not None]
            if limits and now >= min(limits):
                return attempts
            self.sleep(max(min([retry.interval, *(limit - now for limit in limits)]), 0.0))

    def _steps(self, instance: CheckInstance, retry: Retry | None, deadline: float | None,
               attempt: _Attempt) -> tuple[bool, bool]:
        """One pass over the steps, each retried on its own when it has ``retry``."""
        scope = instance.scope()
        for step in instance.check.steps:
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
        learned as the request goes out (see ``clients``)."""
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
