"""What a response must look like (``expect:``), parsed at collection and judged at run time."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
from httpx import Headers
from jmespath.visitor import TreeInterpreter

from ..jsondoc import json_path, loads
from ..units import Threshold, format_duration
from .located import error_at, matches_any_text, regex_at, threshold_at
from .templating import names_in, render
from .validation import suggest
from .yamlfile import YamlMap, load_file

MATCHERS = ("eq", "ne", "lt", "lte", "gt", "gte", "regex", "one_of", "exists", "type", "contains")
_PROJECTIONS = frozenset({"projection", "value_projection", "filter_projection", "flatten"})
# What a path shows for a part that is not a key or an index (a function, a projection).
_OPAQUE = "(…)"
# Nodes whose right side runs on what their left side gives: `a.b`, `a | b`.
_CHAINS = frozenset({"subexpression", "pipe"})
_JSON_TYPES = {"string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
               "array": (list,), "object": (dict,), "null": (type(None),)}


@dataclass
class Response:
    """What came back from one request, as the expectations see it."""

    status: int
    headers: Headers
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
                self._json = loads(self.body)
            except ValueError as exc:
                self._json_error = str(exc)
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
        if self.compiled is None:  # an expression with templates, compiled once rendered
            expr = str(render(self.expr, scope))
            try:
                compiled = compile_jmespath(expr)
            except ValueError as exc:
                return Mismatch(f"json {expr}", "a JMESPath expression", str(exc))
            return replace(self, expr=expr, compiled=compiled,
                           projection=_is_projection(compiled.parsed)).judge(document, scope)
        expected = render(self.expected, scope)
        every = self.projection and self.matcher != "contains"
        try:
            if every:
                return self._judge_every(document, expected)
            gap = _function_gap(self.compiled.parsed, document, "")
            if gap is not None:
                return self._mismatch(expected, every, gap)
            actual = evaluate(self.compiled.parsed, document)
            if actual is None and self.matcher != "exists":
                # JMESPath gives null for a missing key too: only a value that is there and
                # null can satisfy an expectation of null, and nothing else is evidence.
                where, state = _trace(self.compiled.parsed, document, "", self.expr)
                if state != "null" or not _expects_null(self.matcher, expected):
                    return self._mismatch(expected, every, f"{where} is {state}")
            if self.matcher == "eq" and not isinstance(self.expected, Mapping):
                if isinstance(actual, list) and not isinstance(expected, list):
                    if not actual or not all(_equal(item, expected) for item in actual):
                        return self._mismatch(expected, True, _short(actual))
                    return None
                return None if _equal(actual, expected) else \
                    self._mismatch(expected, every, _short(actual))
            if _match(self.matcher, actual, expected):
                return None
            return self._mismatch(expected, every, _short(actual))
        except (JsonPathError, re.error) as exc:
            return self._mismatch(expected, every, _bad_regex(expected, exc))

    def _mismatch(self, expected: Any, every: bool, actual: str) -> Mismatch:
        # The texts are made only for a failure: most expectations hold.
        if self.matcher != "eq":
            shown = ("every element " if every else "") + f"{self.matcher} {_short(expected)}"
        elif every and not isinstance(expected, list):
            shown = f"every element == {_short(expected)}"
        else:
            shown = _short(expected)
        return Mismatch(f"json {self.expr}", shown, actual)

    def _judge_every(self, document: Any, expected: Any) -> Mismatch | None:
        """Judge each element the projection ran over, including those JMESPath drops because
        they are null: ``checks.*`` over ``{"db": null}`` is not "every component healthy"."""
        elements, problem = _elements(self.compiled.parsed, document, "")
        if self.matcher == "exists" and not expected:
            # Absence holds over no elements too: `items[*].deleted: {exists: false}` on an
            # empty list; but not over a base that is missing or of the wrong type (`itmes`),
            # where there is nothing the rule could have been about.
            if problem and not _no_elements(problem):
                return self._mismatch(expected, True, problem)
            present = next((e for e in elements if e.value is not None), None)
            return self._mismatch(expected, True, f"{present.where} is "
                                  f"{_short(present.value)}") if present else None
        if problem:
            return self._mismatch(expected, True, problem)
        for element in elements:
            if element.value is None and (element.state != "null" or self.matcher == "exists"
                                          or not _expects_null(self.matcher, expected)):
                return self._mismatch(expected, True, f"{element.where} is {element.state}")
        values = [element.value for element in elements]
        if self.matcher == "exists":
            return None
        if self.matcher == "eq" and isinstance(expected, list):
            return None if _equal(values, expected) else \
                self._mismatch(expected, True, _short(values))
        if all(_match(self.matcher, value, expected) for value in values):
            return None
        return self._mismatch(expected, True, _short(values))


def _no_elements(problem: str) -> bool:
    """Whether an :func:`_elements` problem says the base is there with nothing in it."""
    return problem.endswith(" is empty") or problem.startswith("no element of ")


def _bad_regex(pattern: Any, exc: Exception) -> str:
    # A pattern with a template is compiled only once rendered, at run time.
    return f"bad regex {str(pattern)!r}: {exc}" if isinstance(exc, re.error) else str(exc)


# One for all: the interpreter keeps no state between visits but a cache of its methods.
_INTERPRETER = TreeInterpreter()


class JsonPathError(ValueError):
    """A JMESPath expression failed on the document (a function given the wrong type); the
    message is one line."""


def evaluate(node: Any, value: Any) -> Any:
    """The value of ``node`` (``compiled.parsed`` or one of its nodes) on ``value``; a JMESPath
    runtime error becomes a one-line :class:`JsonPathError`."""
    try:
        return _INTERPRETER.visit(node, value)
    except jmespath.exceptions.JMESPathTypeError as exc:
        wanted = ", ".join(exc.expected_types)
        raise JsonPathError(f"JMESPath error: {exc.function_name}() expects {wanted}, got "
                            f"{exc.actual_type}") from None
    except jmespath.exceptions.JMESPathError as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        raise JsonPathError(f"JMESPath error: {first} (on {_json_type(value)})") from None


def _json_type(value: Any) -> str:
    for name, kinds in _JSON_TYPES.items():
        if isinstance(value, kinds) and not (name in ("number", "integer")
                                             and isinstance(value, bool)):
            return name
    return type(value).__name__


def _a_json_type(value: Any) -> str:
    name = _json_type(value)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _expects_null(matcher: str, expected: Any) -> bool:
    return (matcher == "eq" and expected is None) or (matcher == "type" and expected == "null") \
        or (matcher == "one_of" and any(option is None for option in expected))


def _is_projection(node: Mapping[str, Any]) -> bool:
    """Whether ``node`` ends in a projection (``data.items[*].status`` and ``checks | *`` do),
    so that its value is a list of one result per element."""
    while node["type"] in _CHAINS:
        node = node["children"][-1]
    return node["type"] in _PROJECTIONS


@dataclass(frozen=True)
class _Element:
    value: Any
    at: str  # the path of the collection it is in: items
    key: str | int  # its key or index there
    absent_at: str = ""  # where the path broke, when the value is None: items[2].status
    state: str = ""  # why the value is None: "missing", "null", "not an object (a string)"

    @property
    def where(self) -> str:
        return self.absent_at or _item_where(self.at, self.key)


def _item_where(at: str, key: str | int) -> str:
    # Built only when a message needs it: most elements pass.
    if isinstance(key, int):
        return f"{at}[{key}]"
    return f"{at}.{json_path((key,))}" if at else json_path((key,))


def _elements(node: Mapping[str, Any], value: Any, where: str
              ) -> tuple[list[_Element], str | None]:
    """Every element the projection ``node`` runs over ``value``, with the path of each, or
    why there is nothing to run over (``items is missing``, ``checks is empty``)."""
    kind, children = node["type"], node["children"]
    if kind in _CHAINS:
        # `a.b.c[*].d` is one subexpression of four children, each run on what the one before
        # gave: follow them to the projection at the end.
        *path, last = children
        for part in path:
            found = evaluate(part, value)
            if found is None:
                at, state = _trace(part, value, where, where)
                return [], f"{at or '(root)'} is {state}"
            value, where = found, _join(where, part)
        return _elements(last, value, where)
    left, right = children[0], children[1]
    base = evaluate(left, value)
    at = _join(where, left)
    named = at or "(root)"
    if base is None:
        at, state = _trace(left, value, where, at)
        return [], f"{at or '(root)'} is {state}"
    items: list[tuple[str | int, Any]]
    if kind == "value_projection":
        if not isinstance(base, dict):
            return [], f"{named} is not an object ({_a_json_type(base)})"
        items = list(base.items())
    else:
        if not isinstance(base, list):
            return [], f"{named} is not a list ({_a_json_type(base)})"
        items = list(enumerate(base))
    if not items:
        return [], f"{named} is empty"
    if kind == "filter_projection":
        items = [(key, item) for key, item in items if _truthy(evaluate(children[2], item))]
        if not items:
            return [], f"no element of {named} passes the filter"
    elements: list[_Element] = []
    nested = _is_projection(right)
    for key, item in items:
        if nested:
            inner, problem = _elements(right, item, _item_where(at, key))
            if problem:
                return [], problem
            elements.extend(inner)
            continue
        result = evaluate(right, item)
        if result is None:
            item_where = _item_where(at, key)
            absent_at, state = _trace(right, item, item_where, item_where)
            elements.append(_Element(None, at, key, absent_at, state))
        else:
            elements.append(_Element(result, at, key))
    return elements, None


def missing_element(node: Mapping[str, Any], value: Any) -> str | None:
    """Where an element that ``node`` (a whole expression) would silently leave out is: a
    null or missing element of a projection at its end, or of a projection a function is
    given (``items[2].latency is missing``); ``None`` when there is none."""
    if _is_projection(node):
        elements, _ = _elements(node, value, "")
        absent = next((e for e in elements if e.value is None), None)
        if absent is not None:
            return f"{absent.where} is {absent.state}"
    return _function_gap(node, value, "")


# Nodes whose children all run on the value the node runs on.
_SAME_VALUE = frozenset({"comparator", "and_expression", "or_expression", "not_expression",
                         "multi_select_list", "multi_select_dict", "key_val_pair"})


def _function_gap(node: Mapping[str, Any], value: Any, where: str) -> str | None:
    """Where a function given a projection (``max(items[*].latency)``) would not see an
    element: JMESPath drops null results from a projection before the function runs, so the
    maximum of the latencies that are there passed for the slowest item. ``None`` when every
    element is there (a filter that keeps none is a count of 0, not a gap)."""
    kind, children = node["type"], node["children"]
    if kind == "function_expression":
        for argument in children:
            if _is_projection(argument):
                elements, _ = _elements(argument, value, where)
                absent = next((e for e in elements if e.value is None), None)
                if absent is not None:
                    return f"{absent.where} is {absent.state}"
            gap = _function_gap(argument, value, where)
            if gap is not None:
                return gap
        return None
    if kind in _CHAINS:
        for part in children:
            gap = _function_gap(part, value, where)
            if gap is not None or value is None:
                return gap
            value, where = evaluate(part, value), _join(where, part)
        return None
    if kind in _SAME_VALUE:
        for child in children:
            gap = _function_gap(child, value, where)
            if gap is not None:
                return gap
    return None


def _truthy(value: Any) -> bool:
    # JMESPath's truth: false, null and empty strings, lists and objects are false; 0 is true.
    return value is not None and value is not False \
        and not (isinstance(value, (str, list, dict)) and not value)


def _trace(node: Mapping[str, Any], value: Any, where: str, fallback: str) -> tuple[str, str]:
    """Where following ``node`` from ``value`` (at ``where``) gave null, and why: a key that is
    not there, a null value, or a value that has no keys or indexes at all. ``fallback`` names
    the place when the path goes through something else (a function, a projection)."""
    kind, children = node["type"], node["children"]
    if kind == "field":
        if value is None:
            return where or "(root)", "null"
        if not isinstance(value, dict):
            return where or "(root)", f"not an object ({_a_json_type(value)})"
        return _join(where, node), "null" if node["value"] in value else "missing"
    if kind == "index":
        if not isinstance(value, list):
            return where or "(root)", f"not a list ({_a_json_type(value)})"
        inside = -len(value) <= node["value"] < len(value)
        return _join(where, node), "null" if inside else "missing"
    if kind in _CHAINS or kind == "index_expression":
        # Each child runs on what the one before gave (`items[0].status` is one subexpression
        # of an index expression and a field; `a[0][1]` one index expression of three).
        for part in children:
            found = evaluate(part, value)
            if found is None:
                return _trace(part, value, where, fallback)
            where = _join(where, part)
            if _OPAQUE in where:
                return fallback or where, "null"
            value = found
        return where or fallback, "null"
    if kind in ("identity", "current"):
        return where or "(root)", "null"
    return fallback or _join(where, node), "null"


def _join(where: str, node: Mapping[str, Any]) -> str:
    """The path text of ``node`` after ``where``, as in the expression (``items[0].id``)."""
    kind, children = node["type"], node["children"]
    if kind == "field":
        name = json_path((node["value"],))
        return f"{where}.{name}" if where else name
    if kind in _CHAINS or kind == "index_expression":
        for part in children:
            where = _join(where, part)
        return where
    if kind == "index":
        return f"{where}[{node['value']}]"
    if kind == "slice":
        return where + "[" + ":".join("" if part is None else str(part) for part in children) + "]"
    if kind == "flatten":
        return _join(where, children[0]) + "[]"
    if kind in ("identity", "current"):
        return where
    return f"{where}.{_OPAQUE}" if where else _OPAQUE


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
        return isinstance(actual, str) and _search(str(expected), actual)
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
            # Every text contains "": a template that rendered empty would always pass.
            return isinstance(expected, str) and expected != "" and expected in actual
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

    def judge(self, headers: Headers, scope: Mapping[str, Any]) -> Mismatch | None:
        expected = str(render(self.expected, scope))
        name = str(render(self.name, scope))
        # A header sent twice is judged line by line, each must match: joined with ", " (as
        # headers.get does) an exact value could never match and /ok/ would pass "ok, down".
        values = headers.get_list(name)
        what = f"header {name}"
        shown = f"/{expected}/" if self.regex else repr(expected)
        if not values:
            return Mismatch(what, shown, "no such header")
        try:
            if all(_search(expected, value) if self.regex else value == expected
                   for value in values):
                return None
        except re.error as exc:
            return Mismatch(what, shown, _bad_regex(expected, exc))
        if len(values) == 1:
            return Mismatch(what, shown, repr(values[0]))
        return Mismatch(what, f"every value {shown}", " and ".join(map(repr, values)))


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
                        + [r.expr for r in self.json] + [r.name for r in self.headers]
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
            if not needle:  # every body contains "": a template that rendered empty
                out.append(Mismatch("body", "to contain a text", "an empty text to look for"))
            elif needle not in response.text:
                out.append(Mismatch("body", f"to contain {needle!r}", "no such text"))
        if self.body_regex is not None:
            pattern = str(render(self.body_regex, scope))
            try:
                if not _search(pattern, response.text):
                    out.append(Mismatch("body", f"to match /{pattern}/", "no match"))
            except re.error as exc:
                out.append(Mismatch("body", f"to match /{pattern}/", _bad_regex(pattern, exc)))
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
        compiled = jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0].rstrip(":")
        position = getattr(exc, "lex_position", None)
        at = f" at column {position + 1}" if isinstance(position, int) else ""
        hint = " (quote names with '-' or '.': headers.\"X-Id\")" if "-" in expr else ""
        raise ValueError(f"bad JMESPath expression {expr!r}: {first}{at}{hint}") from None
    problem = _function_problem(compiled.parsed)
    if problem:
        raise ValueError(f"bad JMESPath expression {expr!r}: {problem}")
    return compiled


_FUNCTIONS: Mapping[str, Any] = jmespath.functions.Functions().FUNCTION_TABLE


def _function_problem(node: Any) -> str | None:
    """An unknown function or a wrong number of arguments: JMESPath only finds these when the
    expression runs, and they can never work, so they are collection errors."""
    if not isinstance(node, Mapping):
        return None  # a slice's bounds
    if node["type"] == "function_expression":
        name, given = node["value"], len(node["children"])
        if name not in _FUNCTIONS:
            return f"unknown function {name}(){suggest(name, _FUNCTIONS)}"
        signature = _FUNCTIONS[name]["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if given < len(signature) or (given > len(signature) and not variadic):
            least = "at least " if variadic else ""
            plural = "" if len(signature) == 1 else "s"
            return f"{name}() takes {least}{len(signature)} argument{plural}, got {given}"
    for child in node["children"]:
        problem = _function_problem(child)
        if problem:
            return problem
    return None


def _search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` is found in ``text``; raises ``re.error`` for a pattern that would
    be found in any text: one whose template rendered empty (``{{ expected_version }}`` of
    an environment that sets it to "") passed on every answer."""
    compiled = re.compile(pattern)
    if matches_any_text(compiled):
        raise re.error("it matches any text, so it asks nothing")
    return compiled.search(text) is not None


def parse_json_rules(node: YamlMap, where: str) -> tuple[JsonRule, ...]:
    rules = []
    for expr, expected in node.items():
        compiled, projection = None, False
        if "{{" not in expr:  # an expression with templates is compiled once rendered
            try:
                compiled = compile_jmespath(expr)
            except ValueError as exc:
                raise error_at(str(exc), node, expr, where) from None
            projection = _is_projection(compiled.parsed)
        matcher, value = "eq", expected
        if isinstance(expected, Mapping) and len(expected) == 1:
            (name, value), = expected.items()
            if name not in MATCHERS:
                raise error_at(f"unknown matcher '{name}'{suggest(name, MATCHERS)}; matchers: "
                            f"{', '.join(MATCHERS)}", node, expr, where)
            matcher = name
            if matcher == "regex":
                value = regex_at(node, expr, where, pattern=str(value))
            elif matcher == "contains" and value == "":
                raise error_at("contains needs a non-empty value (every text contains '')",
                               node, expr, where)
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


# Schema keywords that describe and validate nothing.
_ANNOTATIONS = frozenset({"$schema", "$id", "id", "title", "description", "$comment",
                          "examples", "default", "deprecated", "readOnly", "writeOnly"})


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
    if not set(schema) - _ANNOTATIONS:
        # `{}` (or a file left empty but for its title) validates any JSON: a check resting
        # on it would pass on whatever came back.
        raise error_at("the schema has no rules (it accepts any JSON, so it asks nothing of "
                       "the body)", node, "schema", where)
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
            # bool is an int to Python, and 600 or 99 can never come back: both would make a
            # check that can never pass, or a stop_if that never stops.
            number = isinstance(item, int) and not isinstance(item, bool)
            if not ((number and 100 <= item <= 599) or (isinstance(item, str) and (
                    "{{" in item or re.fullmatch(r"[1-5]xx|[1-5]\d\d", item)))):
                raise error_at(f"{item!r} is not a status (use e.g. 200 or 2xx)", node, "status",
                            where)
        status = tuple(int(s) if str(s).isdigit() else str(s) for s in raw)
    headers = []
    for name, value in node.get("headers", {}).items():
        if isinstance(value, Mapping):
            if set(value) != {"regex"}:
                raise error_at(f"header {name}: use a value or {{regex: ...}}", node, "headers",
                               where)
            pattern = regex_at(node, "headers", where, pattern=str(value["regex"]))
            headers.append(HeaderRule(name, pattern, True))
        else:
            headers.append(HeaderRule(name, str(value), False))
    if "json" in node and not node["json"]:
        raise error_at("json needs at least one expression (an empty one asks nothing of the "
                       "body)", node, "json", where)
    body = node.get("body", {})
    if body.get("contains") == "":
        raise error_at("contains needs a non-empty text (every body contains '')", body,
                       "contains", f"{where}.body")
    cert = node.get("certificate")
    return Expectation(
        status=status,
        json=parse_json_rules(node["json"], f"{where}.json") if "json" in node else (),
        headers=tuple(headers),
        body_contains=body.get("contains"),
        body_regex=regex_at(body, "regex", f"{where}.body") if "regex" in body
        else None,
        schema=load_schema(node["schema"], node, where, base_dir) if "schema" in node else None,
        latency=threshold_at(node, "latency", where, duration=True) if "latency" in node else None,
        certificate=threshold_at(cert, "expires_in", f"{where}.certificate", duration=True)
        if cert else None,
    )

