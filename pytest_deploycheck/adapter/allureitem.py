"""What each item adds to its Allure result (with ``--alluredir``), through allure-pytest's API.

Labels, parameters, title, runbook link and description are set at the setup report (the
result exists from the start of the item's protocol, and allure-pytest names it in its setup
hook just before); attachments at the call report, from the check's result in this process,
so they are written by the worker that ran the item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import allure
import allure_commons
import pytest

from ..checks.checklist import ChecklistResult
from ..checks.http import Exchange, pretty_body
from ..checks.http import Result as HttpResult
from ..checks.metric import MetricResult
from ..report.svgchart import line_chart
from ..secrets import Redactor
from ..units import utc_iso
from .yamlitems import CheckItem

MAX_BODY = 64 * 1024  # characters of a body kept in an attachment


class _StepFailed(AssertionError):
    """Raised inside an ``allure.step`` to record it as failed (allure-pytest takes a step's
    status from the exception leaving it)."""


def active(config: pytest.Config) -> bool:
    return config.pluginmanager.get_plugin("allure_listener") is not None


class _RedactedResults:
    """Masks the secrets in each Allure result and container just before allure-pytest writes
    it: it takes a failed test's message from the exception itself (a Python check's
    ``assert`` shows the values compared), not from the report the plugin redacted."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @allure_commons.hookimpl(hookwrapper=True)
    def report_result(self, result: Any) -> Any:
        self.redactor.redact_in_place(result)
        yield

    @allure_commons.hookimpl(hookwrapper=True)
    def report_container(self, container: Any) -> Any:
        self.redactor.redact_in_place(container)
        yield


def redact_results(config: pytest.Config, redactor: Redactor) -> None:
    """Redact every Allure result this process writes, until the end of ``config``."""
    plugin = _RedactedResults(redactor)
    allure_commons.plugin_manager.register(plugin)
    config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(plugin))


def enrich(item: pytest.Item, when: str, info: Mapping[str, Any], redactor: Redactor) -> None:
    """Called with each report of a check item: describe it once, attach its evidence."""
    if when == "setup":
        describe(info, _item_labels(item))
    elif when == "call" and isinstance(item, CheckItem) and item.result is not None:
        attach_result(item.result, redactor, _thresholds(item))


def _item_labels(item: pytest.Item) -> dict[str, Any]:
    if isinstance(item, CheckItem):
        check, instance = item.instance.check, item.instance
        services = {s.request.service for s in check.steps if s.request.service}
        if check.metric is not None:
            services.add(f"metrics: {check.metric.source}")
        return {"title": check.name, "services": sorted(services),
                "params": dict(instance.params.values) if instance.params else {},
                "description": check.description}
    callspec = getattr(item, "callspec", None)
    params = {k: v for k, v in callspec.params.items() if k != "deploy_env"} if callspec else {}
    return {"title": getattr(item, "originalname", item.name), "params": params}


def _thresholds(item: CheckItem) -> list[tuple[str, float]]:
    spec = item.instance.check.metric
    if spec is None or spec.rule is None:
        return []
    rule = spec.rule
    return [(str(rule), float(getattr(rule, name))) for name in ("limit", "low", "high")
            if isinstance(getattr(rule, name, None), (int, float))]


def describe(info: Mapping[str, Any], labels: Mapping[str, Any]) -> None:
    """Labels, parameters, title, link and description of the item's result."""
    allure.dynamic.parent_suite(info["env"])
    allure.dynamic.suite(info["suite"])
    allure.dynamic.sub_suite(info["kind"])
    allure.dynamic.severity(allure.severity_level(info.get("severity") or "normal"))
    for service in labels.get("services", ()):
        allure.dynamic.feature(service)
    allure.dynamic.title(labels.get("title") or info["name"])
    allure.dynamic.parameter("environment", info["env"])
    for name, value in labels.get("params", {}).items():
        allure.dynamic.parameter(name, value)
    if info.get("runbook"):
        allure.dynamic.link(info["runbook"], name="runbook")
    if labels.get("description"):
        allure.dynamic.description(labels["description"])


def attach_result(result: Any, redactor: Redactor, thresholds: list[tuple[str, float]]) -> None:
    """The evidence of a check: requests and responses, metric samples and chart, command
    output."""
    if isinstance(result, HttpResult):
        _attach_http(result, redactor)
    elif isinstance(result, MetricResult):
        _attach_metric(result, redactor, thresholds)
    elif isinstance(result, ChecklistResult):
        _attach_checklist(result, redactor)


def _attach_http(result: HttpResult, redactor: Redactor) -> None:
    steps = {e.step for e in result.exchanges}
    if len(steps) <= 1:
        for exchange in result.exchanges:
            _attach_exchange(exchange, redactor)
        return
    for exchange in result.exchanges:
        status = exchange.response.status if exchange.response else exchange.error
        try:
            with allure.step(f"{exchange.step}: {exchange.method} {redactor.redact(exchange.url)}"
                             f" -> {status}"):
                _attach_exchange(exchange, redactor)
                if exchange.error or exchange.mismatches:
                    raise _StepFailed(redactor.redact(
                        exchange.error or "; ".join(str(m) for m in exchange.mismatches)))
        except _StepFailed:
            pass


def _attach_exchange(exchange: Exchange, redactor: Redactor) -> None:
    request = [f"{exchange.method} {exchange.url}"]
    request += [f"{name}: {value}" for name, value in exchange.headers]
    if exchange.body:
        request += ["", pretty_body(exchange.body, MAX_BODY)]
    allure.attach(redactor.redact("\n".join(request)), name="request",
                  attachment_type=allure.attachment_type.TEXT)
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
        return
    allure.attach(redactor.redact(text), name="response",
                  attachment_type=allure.attachment_type.TEXT)


def _attach_metric(result: MetricResult, redactor: Redactor,
                   thresholds: list[tuple[str, float]]) -> None:
    rows = ["time (UTC),series,value,verdict"]
    series: dict[str, list[tuple[float, float]]] = {}
    for measurement in result.measurements:
        for judged in measurement.judged:
            verdict = {True: "ok", False: "BREACH", None: "ignored"}[judged.ok]
            rows.append(f"{utc_iso(judged.sample.timestamp, 'seconds')},{_csv(judged.series)},"
                        f"{judged.sample.value!r},{verdict}")
            series.setdefault(judged.series, []).append((judged.sample.timestamp,
                                                         judged.sample.value))
    summary = [f"source: {result.source}", f"query: {result.query}",
               f"rules: {', '.join(result.rules)}"]
    if result.baseline is not None:
        summary.append(f"baseline: {result.baseline.value!r} ({result.baseline.recorded})")
    errors = [f"{utc_iso(m.at, 'seconds')}: {m.message}" for m in result.measurements
              if m.message]
    allure.attach(redactor.redact("\n".join([*summary, "", *errors])), name="query",
                  attachment_type=allure.attachment_type.TEXT)
    allure.attach(redactor.redact("\n".join(rows)), name="samples",
                  attachment_type=allure.attachment_type.CSV)
    allure.attach(line_chart(redactor.redact(result.query), sorted(series.items()), thresholds),
                  name="chart", attachment_type=allure.attachment_type.SVG)


def _attach_checklist(result: ChecklistResult, redactor: Redactor) -> None:
    found = result.found
    text = "\n".join([f"{result.entry}: {found.status}" + (f" ({found.reason})"
                                                          if found.reason else "")]
                     + found.lines + ([found.data["output"]] if found.data.get("output") else []))
    allure.attach(redactor.redact(text), name="checklist output",
                  attachment_type=allure.attachment_type.TEXT)


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'
