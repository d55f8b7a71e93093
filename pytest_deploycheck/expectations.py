"""What a response must look like (``expect:``), parsed at collection and judged at run time."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath
import jmespath.exceptions

from .templating import names_in, render
from .units import Threshold, format_duration, parse_threshold
from .validation import suggest
from .yamlfile import YamlMap, error_at, load_file

MATCHERS = ("eq", "ne", "lt", "lte", "gt", "gte", "regex", "one_of", "exists", "type", "contains")
# Matchers that judge each element of a projection (``checks.*``) rather than the whole list.
_PER_ELEMENT = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "regex", "one_of", "type"})
_PROJECTIONS = frozenset({"projection", "value_projection", "filter_projection", "flatten"})
_JSON_TYPES = {"string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
               "array": (list,), "object": (dict,), "null": (type(None),)}


@dataclass
class Response:
    """What came back from one request, as the expectations see it."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float
    cert_not_after: float | None = None
    _json: Any = field(default=None, repr=False)
    _json_error: str | None = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The parsed body; raises ``ValueError`` with a one-line reason when it is not JSON."""
        if not self._parsed:
            self._parsed = True
            try:
                self._json = json.loads(self.body)
            except ValueError as exc:
                self._json_error = f"body is not JSON ({exc.__class__.__name__}: {exc})"
        if self._json_error:
            raise ValueError(self._json_error)
        return self._json


@dataclass(frozen=True)
class Mismatch:
    """One expectation that did not hold."""

    what: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.what}: expected {self.expected}, got {self.actual}"


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) \
        else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass(frozen=True)
class JsonRule:
    expr: str
    compiled: Any = field(repr=False)
    projection: bool
    matcher: str
    expected: Any

    def judge(self, document: Any, scope: Mapping[str, Any]) -> Mismatch | None:
        expected = render(self.expected, scope)
        actual = self.compiled.search(document)
        what = f"json {self.expr}"
        if self.matcher == "eq" and not isinstance(self.expected, Mapping):
            if isinstance(actual, list) and not isinstance(expected, list):
                if not actual or not all(_equal(item, expected) for item in actual):
                    return Mismatch(what, f"every element == {_short(expected)}", _short(actual))
                return None
            return None if _equal(actual, expected) else \
                Mismatch(what, _short(expected), _short(actual))
        if self.projection and self.matcher in _PER_ELEMENT:
            items = actual if isinstance(actual, list) else [actual]
            bad = [item for item in items if not _match(self.matcher, item, expected)]
            if not items or bad:
                return Mismatch(what, f"every element {self.matcher} {_short(expected)}",
                                _short(actual))
            return None
        if _match(self.matcher, actual, expected):
            return None
        return Mismatch(what, f"{self.matcher} {_short(expected)}", _short(actual))


def _equal(a: Any, b: Any) -> bool:
    # JSON true is not 1: keep booleans apart from numbers, unlike Python's ==.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _match(matcher: str, actual: Any, expected: Any) -> bool:
    if matcher == "eq":
        return _equal(actual, expected)
    if matcher == "ne":
        return not _equal(actual, expected)
    if matcher in ("lt", "lte", "gt", "gte"):
        if not (_number(actual) and _number(expected)):
            return False
        return bool({"lt": actual < expected, "lte": actual <= expected,
                     "gt": actual > expected, "gte": actual >= expected}[matcher])
    if matcher == "regex":
        return isinstance(actual, str) and re.search(str(expected), actual) is not None
    if matcher == "one_of":
        return any(_equal(actual, option) for option in expected)
    if matcher == "exists":
        return (actual is not None) == bool(expected)
    if matcher == "type":
        kinds = _JSON_TYPES[expected]
        return isinstance(actual, kinds) and (expected in ("boolean", "null")
                                              or not isinstance(actual, bool))
    if matcher == "contains":
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list):
            return any(_equal(item, expected) for item in actual)
        if isinstance(actual, dict):
            return expected in actual
        return False
    raise AssertionError(matcher)


@dataclass(frozen=True)
class HeaderRule:
    name: str
    expected: Any
    regex: bool

    def judge(self, headers: Mapping[str, str], scope: Mapping[str, Any]) -> Mismatch | None:
        expected = str(render(self.expected, scope))
        actual = headers.get(self.name)
        what = f"header {self.name}"
        if actual is None:
            shown = f"/{expected}/" if self.regex else repr(expected)
            return Mismatch(what, shown, "no such header")
        ok = re.search(expected, actual) is not None if self.regex else actual == expected
        return None if ok else Mismatch(what, f"/{expected}/" if self.regex else repr(expected),
                                        repr(actual))


@dataclass(frozen=True)
class Expectation:
    """Everything an ``expect:`` block asks of one response."""

    status: tuple[int | str, ...] = ()
    json: tuple[JsonRule, ...] = ()
    headers: tuple[HeaderRule, ...] = ()
    body_contains: str | None = None
    body_regex: str | None = None
    schema: Any = None  # a jsonschema validator, built once at collection
    latency: Threshold | None = None
    certificate: Threshold | None = None

    def names(self) -> set[str]:
        """Template names used by this expectation (checked at collection)."""
        return names_in([r.expected for r in self.json] + [r.expected for r in self.headers]
                        + [self.body_contains or "", self.body_regex or "", *self.status])

    def status_ok(self, status: int, scope: Mapping[str, Any]) -> bool:
        if not self.status:
            return True
        for entry in self.status:
            allowed = render(entry, scope) if isinstance(entry, str) and "{{" in entry else entry
            if str(allowed).isdigit():
                allowed = int(allowed)
            if isinstance(allowed, int) and allowed == status:
                return True
            if isinstance(allowed, str) and allowed[1:] == "xx" and str(status)[0] == allowed[0]:
                return True
        return False

    def judge(self, response: Response, scope: Mapping[str, Any]) -> list[Mismatch]:
        """Every way ``response`` differs from this expectation (empty when it matches)."""
        out: list[Mismatch] = []
        if not self.status_ok(response.status, scope):
            allowed = " or ".join(str(render(s, scope)) for s in self.status)
            out.append(Mismatch("status", allowed, str(response.status)))
        for header_rule in self.headers:
            header_mismatch = header_rule.judge(response.headers, scope)
            if header_mismatch:
                out.append(header_mismatch)
        if self.body_contains is not None:
            needle = str(render(self.body_contains, scope))
            if needle not in response.text:
                out.append(Mismatch("body", f"to contain {needle!r}", "no such text"))
        if self.body_regex is not None:
            pattern = str(render(self.body_regex, scope))
            if re.search(pattern, response.text) is None:
                out.append(Mismatch("body", f"to match /{pattern}/", "no match"))
        if self.json or self.schema is not None:
            try:
                document = response.json()
            except ValueError as exc:
                out.append(Mismatch("json", "a JSON body", str(exc)))
            else:
                for rule in self.json:
                    json_mismatch = rule.judge(document, scope)
                    if json_mismatch:
                        out.append(json_mismatch)
                if self.schema is not None:
                    from jsonschema.exceptions import best_match

                    errors = list(self.schema.iter_errors(document))
                    if errors:
                        error = best_match(errors)
                        at = "/".join(str(p) for p in error.absolute_path) or "(root)"
                        out.append(Mismatch("schema", "body valid against the schema",
                                            f"at {at}: {error.message[:200]}"))
        if self.latency is not None and not self.latency.check(response.elapsed):
            out.append(Mismatch("latency", str(self.latency), format_duration(response.elapsed)))
        if self.certificate is not None:
            if response.cert_not_after is None:
                out.append(Mismatch("certificate expires_in", str(self.certificate),
                                    "no verified TLS certificate (https with verify_tls on "
                                    "is needed)"))
            else:
                left = response.cert_not_after - time.time()
                if not self.certificate.check(left):
                    out.append(Mismatch("certificate expires_in", str(self.certificate),
                                        f"{left / 86400:.1f}d"))
        return out


# --- parsing ---------------------------------------------------------------------------------

def compile_jmespath(expr: str) -> Any:
    """A compiled JMESPath; ``ValueError`` says where the expression is wrong."""
    try:
        return jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0].rstrip(":")
        position = getattr(exc, "lex_position", None)
        at = f" at column {position + 1}" if isinstance(position, int) else ""
        hint = " (quote names with '-' or '.': headers.\"X-Id\")" if "-" in expr else ""
        raise ValueError(f"bad JMESPath expression {expr!r}: {first}{at}{hint}") from None


def _regex(pattern: str, node: YamlMap, key: str, where: str) -> str:
    if "{{" not in pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise error_at(f"bad regex {pattern!r}: {exc}", node, key, where) from None
    return pattern


def _threshold(node: YamlMap, key: str, where: str, *, duration: bool) -> Threshold:
    try:
        threshold = parse_threshold(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None
    if duration and threshold.text.rstrip()[-1:] == "%":
        raise error_at(f"{threshold.text!r}: a time needs a time unit, not %", node, key, where)
    return threshold


def parse_json_rules(node: YamlMap, where: str) -> tuple[JsonRule, ...]:
    rules = []
    for expr, expected in node.items():
        try:
            compiled = compile_jmespath(expr)
        except ValueError as exc:
            raise error_at(str(exc), node, expr, where) from None
        projection = compiled.parsed.get("type") in _PROJECTIONS
        matcher, value = "eq", expected
        if isinstance(expected, Mapping) and len(expected) == 1:
            (name, value), = expected.items()
            if name not in MATCHERS:
                raise error_at(f"unknown matcher '{name}'{suggest(name, MATCHERS)}; matchers: "
                            f"{', '.join(MATCHERS)}", node, expr, where)
            matcher = name
            if matcher == "regex":
                value = _regex(str(value), node, expr, where)
            elif matcher == "one_of" and not isinstance(value, list):
                raise error_at("one_of needs a list", node, expr, where)
            elif matcher == "type" and value not in _JSON_TYPES:
                raise error_at(f"unknown type {value!r}; types: {', '.join(_JSON_TYPES)}",
                            node, expr, where)
            elif matcher in ("lt", "lte", "gt", "gte") and not (
                    _number(value) or (isinstance(value, str) and "{{" in value)):
                raise error_at(f"{matcher} needs a number, got {value!r}", node, expr, where)
        elif isinstance(expected, Mapping):
            matcher, value = "eq", expected
        rules.append(JsonRule(expr=expr, compiled=compiled, projection=projection,
                              matcher=matcher, expected=value))
    return tuple(rules)


def load_schema(value: Any, node: YamlMap, where: str, base_dir: Any) -> Any:
    """A validator for an inline schema or the JSON/YAML file ``value`` relative to ``base_dir``."""
    if isinstance(value, str):
        path = base_dir / value
        if not path.is_file():
            raise error_at(f"schema file {value!r} not found (looked at {path})", node, "schema",
                        where)
        schema = load_file(path, str(path))
    else:
        schema = value
    if not isinstance(schema, Mapping):
        raise error_at("a schema must be a mapping", node, "schema", where)
    # Imported here: most suites use no response schema, and jsonschema takes 0.1 s to import.
    import jsonschema

    schema = json.loads(json.dumps(schema, default=str))
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise error_at(f"invalid JSON Schema: {exc.message}", node, "schema", where) from None
    return cls(schema)


def parse_expectation(node: YamlMap, where: str, base_dir: Any,
                      default_status: tuple[int | str, ...] = ()) -> Expectation:
    """An :class:`Expectation` from an ``expect:`` mapping already checked by the suite schema.

    ``default_status`` applies when the mapping names no ``status``.
    """
    status_value = node.get("status")
    status = default_status
    if status_value is not None:
        raw = status_value if isinstance(status_value, list) else [status_value]
        for item in raw:
            if not (isinstance(item, int) or "{{" in str(item)
                    or re.fullmatch(r"[1-5]xx|[1-5]\d\d", str(item))):
                raise error_at(f"{item!r} is not a status (use e.g. 200 or 2xx)", node, "status",
                            where)
        status = tuple(int(s) if str(s).isdigit() else str(s) for s in raw)
    headers = []
    for name, value in node.get("headers", {}).items():
        if isinstance(value, Mapping):
            if set(value) != {"regex"}:
                raise error_at(f"header {name}: use a value or {{regex: ...}}", node, "headers",
                               where)
            headers.append(HeaderRule(name, _regex(str(value["regex"]), node, "headers", where),
                                      True))
        else:
            headers.append(HeaderRule(name, str(value), False))
    body = node.get("body", {})
    cert = node.get("certificate")
    return Expectation(
        status=status,
        json=parse_json_rules(node["json"], f"{where}.json") if "json" in node else (),
        headers=tuple(headers),
        body_contains=body.get("contains"),
        body_regex=_regex(body["regex"], body, "regex", f"{where}.body") if "regex" in body
        else None,
        schema=load_schema(node["schema"], node, where, base_dir) if "schema" in node else None,
        latency=_threshold(node, "latency", where, duration=True) if "latency" in node else None,
        certificate=_threshold(cert, "expires_in", f"{where}.certificate", duration=True)
        if cert else None,
    )

