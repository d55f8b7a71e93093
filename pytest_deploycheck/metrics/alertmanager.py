"""``type: alertmanager``: the alerts Alertmanager holds (``GET /api/v2/alerts``), for ``alerts``
checks only.

An alert is ``active``, ``suppressed`` (silenced or inhibited) or ``unprocessed`` (just
received); ``active`` and ``unprocessed`` count by default, so a silence someone set for a
known problem is honoured. Alertmanager has no metrics: a metric check on this source is a
collection error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..inputs.endpoints import Service
from ..inputs.yamlfile import YamlMap
from .base import (
    Alert,
    Fetch,
    MetricQueryError,
    NoHistory,
    Series,
    SourceContext,
    snippet,
)
from .prometheus import SCHEMA as PROMETHEUS_SCHEMA
from .prometheus import alert_of, parse_auth

SCHEMA: Mapping[str, Any] = {
    **PROMETHEUS_SCHEMA,
    "properties": {**PROMETHEUS_SCHEMA["properties"], "type": {"enum": ["alertmanager"]}},
}
NO_METRICS = "an alertmanager source lists alerts (for 'alerts' checks) and has no metrics"


def parse(name: str, node: YamlMap, context: SourceContext) -> AlertmanagerSource:
    endpoint, auth = parse_auth(name, node, context)
    return AlertmanagerSource(name=name, endpoint=endpoint, auth=auth)


@dataclass(frozen=True)
class AlertmanagerSource:
    name: str
    endpoint: Service
    auth: Mapping[str, str]
    history: bool = False
    alert_states = ("active", "unprocessed", "suppressed")
    default_states = ("active", "unprocessed")

    @property
    def timeout(self) -> float:
        return self.endpoint.timeout

    def describe(self) -> str:
        return f"alertmanager {self.endpoint.url}"

    def query_error(self, query: str) -> str | None:
        return NO_METRICS

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        raise MetricQueryError(NO_METRICS)

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        raise NoHistory(NO_METRICS)

    def alerts(self, timeout: float, fetch: Fetch) -> list[Alert]:
        answer = fetch(self.endpoint, "/api/v2/alerts", {}, self.auth, timeout)
        body = answer.json("Alertmanager")
        if answer.status >= 300 or not isinstance(body, list):
            raise MetricQueryError(f"Alertmanager answered {answer.status} to /api/v2/alerts: "
                                   f"{snippet(body)}")
        out = []
        for item in body:
            status = item.get("status") if isinstance(item, dict) else None
            state = status.get("state") if isinstance(status, dict) else None
            if not isinstance(state, str):
                raise MetricQueryError(f"an Alertmanager alert without a state: {snippet(item)}")
            out.append(alert_of(item, state, "startsAt"))
        return out
