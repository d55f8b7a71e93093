"""``type: http``: a number at a JMESPath (the check's ``query``) in the JSON of a GET of ``url``.

For services that publish their own figures (the demo's ``/stats``, a ``/metrics.json``). It
knows only the current value, so it cannot answer ``window`` checks. A path that selects a list
of numbers gives one series per element (``series: max`` then judges the worst).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..inputs.endpoints import Service, parse_endpoint
from ..inputs.expectations import JsonPathError, compile_jmespath, evaluate, missing_element
from ..inputs.templating import names_in
from ..inputs.yamlfile import YamlMap
from .base import Fetch, MetricQueryError, NoHistory, Sample, Series, SourceContext, number

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "url"],
    "properties": {
        "type": {"enum": ["http"]},
        "url": {"type": "string"},
        "headers": {"type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "timeout": {"type": ["string", "number"]},
        "verify_tls": {"type": ["boolean", "string"]},
    },
}


def parse(name: str, node: YamlMap, context: SourceContext) -> HttpSource:
    return HttpSource(name=name, endpoint=parse_endpoint(
        f"metrics.{name}", node, node.file, context.where, context.timeout, context.base_dir))


@dataclass(frozen=True)
class HttpSource:
    name: str
    endpoint: Service
    history: bool = False

    @property
    def timeout(self) -> float:
        return self.endpoint.timeout

    def describe(self) -> str:
        return f"http {self.endpoint.url}"

    def query_error(self, query: str) -> str | None:
        if names_in(query):
            return None  # a JMESPath once rendered
        try:
            compile_jmespath(query)
        except ValueError as exc:
            return str(exc)
        return None

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        try:
            expression = compile_jmespath(query)
        except ValueError as exc:
            raise MetricQueryError(str(exc)) from None
        answer = fetch(self.endpoint, "", {}, {}, timeout)
        if answer.status >= 300:
            raise MetricQueryError(f"{self.endpoint.url} answered {answer.status}")
        document = answer.json(self.endpoint.url)
        try:
            # A projection drops null and missing elements, also before a function sees them:
            # the component that reports no latency would be left out of `series: max`.
            absent = missing_element(expression.parsed, document)
            found = evaluate(expression.parsed, document)
        except JsonPathError as exc:
            raise MetricQueryError(str(exc)) from None
        if absent is not None:
            raise MetricQueryError(f"{query}: {absent}")
        if found is None:
            return []
        if isinstance(found, list):
            if None in found:
                raise MetricQueryError(f"{query}[{found.index(None)}] is null")
            return [Series(f"[{index}]", (Sample(at, number(value, f"{query}[{index}]")),))
                    for index, value in enumerate(found)]
        return [Series("", (Sample(at, number(found, query)),))]

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        raise NoHistory(f"source '{self.name}' (http) knows only the current value; use "
                        f"'observe' instead of 'window', or a prometheus or datadog source")
