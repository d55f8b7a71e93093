"""``type: prometheus``: PromQL through the HTTP API (``/api/v1/query``, ``/api/v1/query_range``).

Also fits what speaks that API (Thanos, Mimir, VictoriaMetrics): ``headers`` carry a tenant or a
bearer token, ``username``/``password`` basic auth.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..inputs.endpoints import Service, parse_endpoint
from ..inputs.yamlfile import YamlMap
from .base import (
    Alert,
    Fetch,
    Fetched,
    MetricQueryError,
    Sample,
    Series,
    SourceContext,
    number,
    snippet,
    text_of,
    timestamp,
)

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "url"],
    "properties": {
        "type": {"enum": ["prometheus"]},
        "url": {"type": "string"},
        "headers": {"type": "object",
                    "additionalProperties": {"type": ["string", "number", "boolean"]}},
        "username": {"type": "string"},
        "password": {"type": "string"},
        "timeout": {"type": ["string", "number"]},
        "verify_tls": {"type": ["boolean", "string"]},
    },
}


def parse(name: str, node: YamlMap, context: SourceContext) -> PrometheusSource:
    endpoint, auth = parse_auth(name, node, context)
    return PrometheusSource(name=name, endpoint=endpoint, auth=auth)


def parse_auth(name: str, node: YamlMap, context: SourceContext
               ) -> tuple[Service, dict[str, str]]:
    """The endpoint and basic-auth header of a source that speaks Prometheus' way (also
    Alertmanager)."""
    endpoint = parse_endpoint(f"metrics.{name}", node, node.file, context.where,
                              context.timeout, context.base_dir)
    if ("username" in node) != ("password" in node):
        raise context.error("basic auth needs both 'username' and 'password'", node,
                            "username" if "username" in node else "password")
    auth = {}
    if "username" in node:
        pair = f"{node['username']}:{node['password']}".encode()
        auth["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return endpoint, auth


def labels_of(metric: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{key}="{value}"' for key, value in sorted(metric.items())) + "}"


@dataclass(frozen=True)
class PrometheusSource:
    name: str
    endpoint: Service
    auth: Mapping[str, str]
    history: bool = True

    @property
    def timeout(self) -> float:
        return self.endpoint.timeout

    def describe(self) -> str:
        return f"prometheus {self.endpoint.url}"

    def query_error(self, query: str) -> str | None:
        return None  # only the server can tell

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        return self._get(fetch, "/api/v1/query", {"query": query, "time": f"{at:.3f}"}, timeout)

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        return self._get(fetch, "/api/v1/query_range",
                         {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                          "step": f"{step:g}"}, timeout)

    alert_states = ("firing", "pending")
    default_states = ("firing",)

    def alerts(self, timeout: float, fetch: Fetch) -> list[Alert]:
        """The alerting rules' alerts (``/api/v1/alerts``): pending and firing."""
        answer = fetch(self.endpoint, "/api/v1/alerts", {}, self.auth, timeout)
        body = answer.json("Prometheus")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(body, dict) or body.get("status") != "success" or answer.status >= 300:
            raise MetricQueryError(f"Prometheus answered {answer.status} to /api/v1/alerts: "
                                   f"{snippet(body)}")
        found = data.get("alerts") if isinstance(data, dict) else None
        if not isinstance(found, list):
            raise MetricQueryError(f"Prometheus /api/v1/alerts has no list of alerts: "
                                   f"{snippet(body)}")
        return [alert_of(item, str(item.get("state", "")) if isinstance(item, dict) else "",
                         "activeAt") for item in found]

    def _get(self, fetch: Fetch, path: str, params: dict[str, str],
             timeout: float) -> list[Series]:
        # Ask Prometheus to give up at our timeout too, so an expensive query does not keep
        # running on the server after the check has moved on.
        params["timeout"] = f"{max(int(timeout * 1000), 1)}ms"
        answer = fetch(self.endpoint, path, params, self.auth, timeout)
        return parse_answer(answer)


def parse_answer(answer: Fetched) -> list[Series]:
    """Series from a query API answer; Prometheus' own error text when it refused the query.

    Whatever else came back (a proxy's page, JSON of another shape) is a
    :class:`MetricQueryError` saying what was wrong with it, never a crash of the check.
    """
    body = answer.json("Prometheus")
    if not isinstance(body, dict):
        raise MetricQueryError(f"Prometheus answered {answer.status} with unexpected JSON: "
                               f"{snippet(body)}")
    if body.get("status") != "success":
        detail = body.get("error") or "no error text"
        kind = body.get("errorType", "error")
        raise MetricQueryError(f"Prometheus refused the query ({answer.status} {kind}): {detail}")
    if answer.status >= 300:
        raise MetricQueryError(f"Prometheus answered {answer.status}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise MetricQueryError(f"Prometheus answered {answer.status} without a 'data' object: "
                               f"{snippet(body)}")
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "scalar":
        return [Series("", (_sample(result),))]
    if result_type not in ("vector", "matrix"):
        raise MetricQueryError(f"Prometheus answered a {result_type!r} result; a metric check "
                               f"needs a number (a scalar, or a vector or matrix of one series)")
    if not isinstance(result, list):
        raise MetricQueryError(f"Prometheus {result_type} result is not a list: "
                               f"{snippet(result)}")
    out = []
    for item in result:
        metric = item.get("metric", {}) if isinstance(item, dict) else None
        if not isinstance(metric, dict):
            raise MetricQueryError(f"Prometheus {result_type} item is not a series with "
                                   f"labels: {snippet(item)}")
        assert isinstance(item, dict)
        if result_type == "vector":
            samples: tuple[Sample, ...] = (_sample(item.get("value")),)
        else:
            values = item.get("values")
            if not isinstance(values, list):
                raise MetricQueryError(f"Prometheus matrix series has no list of values: "
                                       f"{snippet(item)}")
            samples = tuple(_sample(pair) for pair in values)
        out.append(Series(labels_of(metric), samples))
    return out


def alert_of(item: Any, state: str, since_key: str) -> Alert:
    """An alert of Prometheus' or Alertmanager's API (labels, annotations, a start time)."""
    labels = item.get("labels") if isinstance(item, dict) else None
    if not isinstance(labels, dict):
        raise MetricQueryError(f"an alert without labels: {snippet(item)}")
    assert isinstance(item, dict)
    annotations = item.get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    text = {str(k): text_of(v) for k, v in labels.items()}
    summary = annotations.get("summary") or annotations.get("description") or ""
    return Alert(name=text.get("alertname", ""), labels=text, state=state,
                 since=str(item.get(since_key) or ""), summary=text_of(summary))


def _sample(pair: Any) -> Sample:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise MetricQueryError(f"Prometheus sample is not [time, value]: {snippet(pair)}")
    return Sample(timestamp=timestamp(pair[0], "Prometheus sample time"),
                  value=number(pair[1], "Prometheus sample value"))
