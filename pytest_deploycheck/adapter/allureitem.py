"""What each item adds to its Allure result (with ``--alluredir``), through allure-pytest's API.

Labels, parameters, title, runbook link and description are set at the setup report (the
result exists from the start of the item's protocol, and allure-pytest names it in its setup
hook just before); attachments at the call report, from the check's result in this process,
so they are written by the worker that ran the item.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import allure
import allure_commons
import pytest

from ..checks.base import Attachment, Chart, Evidence, EvidenceStep
from ..report.svgchart import line_chart
from ..secrets import Redactor
from .yamlitems import CheckItem

_MEDIA = {"text": allure.attachment_type.TEXT, "csv": allure.attachment_type.CSV,
          "png": allure.attachment_type.PNG}


class _StepFailed(AssertionError):
    """Raised inside an ``allure.step`` to record it as failed (allure-pytest takes a step's
    status from the exception leaving it)."""


# How Python names an exception in front of its message (``exconly()``); the plugin's own
# exception types are internals a release manager should not have to read past.
_INTERNAL_NAME = re.compile(r"^pytest_deploycheck(?:\.\w+)+: ")


class _RedactedResults:
    """Masks the secrets in each Allure result and container just before allure-pytest writes
    it: it takes a failed test's message from the exception itself (a Python check's
    ``assert`` shows the values compared), not from the report the plugin redacted. A check's
    failure text also loses the plugin's exception name, and its trace when that only repeats
    the text (a YAML check has no Python traceback worth showing)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @allure_commons.hookimpl(hookwrapper=True)
    def report_result(self, result: Any) -> Any:
        self.redactor.redact_in_place(result)
        details = getattr(result, "statusDetails", None)
        if details is not None and details.message:
            message = _INTERNAL_NAME.sub("", details.message)
            if message != details.message and (details.trace or "").strip() == message.strip():
                details.trace = None
            details.message = message
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
        attach(item.instance.check.spec.evidence(item.result, redactor))
        if item.ran is not None:
            _own_time(item, *item.ran)


def _own_time(item: pytest.Item, started: float, stopped: float) -> None:
    """The check's own start and stop on its result: it may have run ahead of its item (the
    pool), and then pytest's call phase only collects its result, in no time."""
    listener = item.config.pluginmanager.get_plugin("allure_listener")
    result = listener.allure_logger.get_test(None) if listener is not None else None
    if result is not None:
        result.start, result.stop = int(started * 1000), int(stopped * 1000)


def _item_labels(item: pytest.Item) -> dict[str, Any]:
    if isinstance(item, CheckItem):
        check, instance = item.instance.check, item.instance
        return {"title": check.name, "services": check.spec.services(),
                "params": dict(instance.params.values) if instance.params else {},
                "description": check.description}
    callspec = getattr(item, "callspec", None)
    params = {k: v for k, v in callspec.params.items() if k != "deploy_env"} if callspec else {}
    return {"title": getattr(item, "originalname", item.name), "params": params}


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


def attach(evidence: list[Evidence]) -> None:
    """A check's evidence as attachments (and steps, each failed or not) of its result."""
    for one in evidence:
        if isinstance(one, Attachment):
            allure.attach(one.content, name=one.name, attachment_type=_MEDIA[one.media])
        elif isinstance(one, Chart):
            allure.attach(line_chart(one.title, one.series, one.thresholds, one.limits,
                                      one.breaches, one.marks),
                          name=one.name, attachment_type=allure.attachment_type.SVG)
        elif isinstance(one, EvidenceStep):
            _attach_step(one)


def _attach_step(step: EvidenceStep) -> None:
    try:
        with allure.step(step.title):
            attach(list(step.attachments))
            if step.skipped:  # allure-pytest marks a step left by a skip as skipped
                raise pytest.skip.Exception("not run", _use_item_location=False)
            if step.failure:
                raise _StepFailed(step.failure)
    except (_StepFailed, pytest.skip.Exception):
        pass
