"""``type: datadog``: the metrics query API (``GET /api/v1/query?from&to&query``).

Datadog has no instant query: the current value is the last non-null point of the series over
the source's ``lookback`` (default 5m). ``site`` picks the regional API (``datadoghq.eu`` →
``https://api.datadoghq.eu``); ``url`` overrides it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..inputs.endpoints import Service, parse_endpoint
from ..inputs.located import duration_at
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

DEFAULT_SITE = "datadoghq.com"
DEFAULT_LOOKBACK = 300.0

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "api_key", "app_key"],
    "properties": {
        "type": {"enum": ["datadog"]},
        "url": {"type": "string"},
        "site": {"type": "string", "pattern": "^[a-z0-9.-]+$"},
        "api_key": {"type": "string", "minLength": 1},
        "app_key": {"type": "string", "minLength": 1},
        "lookback": {"type": ["string", "number"]},
        "timeout": {"type": ["string", "number"]},
        "verify_tls": {"type": ["boolean", "string"]},
    },
}


def parse(name: str, node: YamlMap, context: SourceContext) -> DatadogSource:
    if "url" in node and "site" in node:
        raise context.error("use either 'url' or 'site', not both", node, "site")
    config = YamlMap(node)
    config.file, config.line, config.key_lines = node.file, node.line, dict(node.key_lines)
    config.setdefault("url", f"https://api.{node.get('site', DEFAULT_SITE)}")
    endpoint = parse_endpoint(f"metrics.{name}", config, node.file, context.where,
                              context.timeout, context.base_dir)
    lookback = duration_at(node, "lookback", context.where, DEFAULT_LOOKBACK)
    return DatadogSource(name=name, endpoint=endpoint, lookback=lookback,
                         keys={"DD-API-KEY": node["api_key"],
                               "DD-APPLICATION-KEY": node["app_key"]})


@dataclass(frozen=True)
class DatadogSource:
    name: str
    endpoint: Service
    lookback: float
    keys: Mapping[str, str]
    history: bool = True

    @property
    def timeout(self) -> float:
        return self.endpoint.timeout

    def describe(self) -> str:
        return f"datadog {self.endpoint.url}"

    def query_error(self, query: str) -> str | None:
        return None  # only the server can tell

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        series = self.range(query, at - self.lookback, at, 0, timeout, fetch)
        return [Series(s.labels, s.samples[-1:]) for s in series]

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        # Datadog chooses the resolution itself; ``step`` has no equivalent in this API.
        params = {"from": str(int(start)), "to": str(int(end)), "query": query}
        return parse_answer(fetch(self.endpoint, "/api/v1/query", params, self.keys, timeout))


    alert_states = ("Alert", "Warn", "No Data", "OK", "Ignored", "Skipped", "Unknown")
    default_states = ("Alert",)

    def alerts(self, timeout: float, fetch: Fetch) -> list[Alert]:
        """Every monitor (``/api/v1/monitor``, a page of up to 1000 at a time), as an alert
        in its ``overall_state``; a muted monitor (``options.silenced``) is left out, as a
        silence is in Alertmanager."""
        out: list[Alert] = []
        deadline = time.monotonic() + timeout  # for every page together
        for page in range(MAX_MONITOR_PAGES):
            params = {"page": str(page), "page_size": str(MONITOR_PAGE)}
            left = deadline - time.monotonic()
            if left <= 0:
                raise MetricQueryError(f"Datadog's monitors did not all arrive within "
                                       f"{timeout:g}s ({page} pages)")
            answer = fetch(self.endpoint, "/api/v1/monitor", params, self.keys, left)
            _raise_for_status(answer)
            body = answer.json("Datadog")
            if not isinstance(body, list):
                raise MetricQueryError(f"Datadog /api/v1/monitor answered {answer.status} "
                                       f"with unexpected JSON: {snippet(body)}")
            out += [monitor for item in body if (monitor := _monitor(item)) is not None]
            if len(body) < MONITOR_PAGE:
                return out
        raise MetricQueryError(f"Datadog has more than {MAX_MONITOR_PAGES * MONITOR_PAGE} "
                               f"monitors, more than an alerts check reads")


MONITOR_PAGE = 1000
MAX_MONITOR_PAGES = 10


def _monitor(item: Any) -> Alert | None:
    if not isinstance(item, dict) or not isinstance(item.get("overall_state"), str):
        raise MetricQueryError(f"a Datadog monitor without an overall_state: {snippet(item)}")
    options = item.get("options")
    silenced = options.get("silenced") if isinstance(options, dict) else None
    if isinstance(silenced, dict) and "*" in silenced:
        return None  # muted as a whole; a mute of some scopes leaves the others alerting
    labels = {"alertname": text_of(item.get("name", "")), "id": text_of(item.get("id", ""))}
    for tag in item.get("tags") or []:
        key, _, value = text_of(tag).partition(":")
        labels.setdefault(key, value)
    return Alert(name=labels["alertname"], labels=labels, state=item["overall_state"],
                 since=text_of(item.get("overall_state_modified") or ""),
                 summary=text_of(item.get("message") or "").strip().splitlines()[0]
                 if item.get("message") else "")


def _raise_for_status(answer: Fetched) -> None:
    """A rate limit or an error answer as a one-line :class:`MetricQueryError`."""
    if answer.status == 429:
        reset = answer.headers.get("x-ratelimit-reset", "?")
        limit = answer.headers.get("x-ratelimit-limit", "?")
        period = answer.headers.get("x-ratelimit-period", "?")
        raise MetricQueryError(f"Datadog rate limit reached ({limit} requests per {period}s); "
                               f"it resets in {reset}s")
    if answer.status >= 300:
        body = answer.json("Datadog")
        if not isinstance(body, dict):
            raise MetricQueryError(f"Datadog answered {answer.status} with unexpected JSON: "
                                   f"{snippet(body)}")
        errors = body.get("errors") or [body.get("error") or "no error text"]
        errors = errors if isinstance(errors, list) else [errors]
        hint = " (check api_key and app_key)" if answer.status in (401, 403) else ""
        raise MetricQueryError(f"Datadog answered {answer.status}: "
                               f"{'; '.join(map(str, errors))}{hint}")


def parse_answer(answer: Fetched) -> list[Series]:
    _raise_for_status(answer)
    body = answer.json("Datadog")
    if not isinstance(body, dict):
        raise MetricQueryError(f"Datadog answered {answer.status} with unexpected JSON: "
                               f"{snippet(body)}")
    if body.get("status") not in (None, "ok"):
        raise MetricQueryError(f"Datadog refused the query: {body.get('error') or body}")
    found = body.get("series") or []
    if not isinstance(found, list):
        raise MetricQueryError(f"Datadog 'series' is not a list: {snippet(found)}")
    return [_series(series) for series in found]


def _series(series: Any) -> Series:
    points = series.get("pointlist") or [] if isinstance(series, dict) else None
    if not isinstance(points, list):
        raise MetricQueryError(f"Datadog series has no list of points: {snippet(series)}")
    assert isinstance(series, dict)
    samples = []
    for point in points:
        if not (isinstance(point, list) and len(point) == 2):
            raise MetricQueryError(f"Datadog point is not [milliseconds, value]: "
                                   f"{snippet(point)}")
        if point[1] is None:  # Datadog marks buckets without data with null
            continue
        samples.append(Sample(timestamp=timestamp(number(point[0], "Datadog point time") / 1000,
                                                  "Datadog point time"),
                              value=number(point[1], "Datadog point value")))
    return Series(str(series.get("scope") or series.get("expression") or ""), tuple(samples))
