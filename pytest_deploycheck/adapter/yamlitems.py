"""pytest's view of suites: a file collector, a suite collector and one item per check instance."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..checks.base import CheckInstance, CheckResult, markers
from ..checks.conditions import skip_reason
from ..checks.suites import Suite, claim_ids, instances, load_suite
from ..deployrun import DeployRun, display_path
from ..errors import DeploycheckError, UsageProblem
from ..gate import CheckInfo, check_info
from ..inputs.yamlfile import gc_paused
from . import xdist
from .keys import RUN_KEY

# The id of every collected YAML check -> the file and line that define it (see claim_ids).
CHECK_IDS_KEY = pytest.StashKey[dict[str, tuple[str, int]]]()
# An item's index in the collected order, for reports (see gate.CheckRecord.order).
ORDER_KEY = pytest.StashKey[int]()
# The skip reason's prefix that marks a skipped item as inconclusive (``no_data: inconclusive``).
INCONCLUSIVE = "inconclusive"
def number_items(items: list[pytest.Item]) -> None:
    """Record each item's place in the collected order (reports list checks in it)."""
    for index, item in enumerate(items):
        item.stash[ORDER_KEY] = index


def keep_postrollback_for_the_gate(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect post-rollback checks unless ``-m`` names ``postrollback``: they verify what a
    rollback rolled back to (the gate runs them after its actions), so against a deploy that
    was not rolled back ("the previous version is live") they would fail, and roll it back."""
    if "postrollback" in (config.option.markexpr or ""):
        return
    left = [item for item in items if isinstance(item, CheckItem)
            and item.instance.check.phase == "postrollback"]
    if left:
        config.hook.pytest_deselected(items=left)
        dropped = set(map(id, left))
        items[:] = [item for item in items if id(item) not in dropped]


def junit_properties(env: str, kind: str) -> list[tuple[str, object]]:
    """What ``--junitxml`` records of a check as its test case's properties."""
    return [("deploycheck_env", env), ("deploycheck_kind", kind)]


class CheckFailed(AssertionError):
    """Raised by a check item; carries the rendered, redacted failure text.

    An ``AssertionError``, as a failed ``assert`` is: reports (Allure's "failed" rather than
    "broken") count it as the gate finding a problem, not as the check itself breaking.
    ``args`` are the full text and the one-line reason.
    """

    def __str__(self) -> str:
        return str(self.args[0])


def _error_text(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    if isinstance(excinfo.value, DeploycheckError):
        return str(excinfo.value)
    return None


_SHOWN_ERRORS = pytest.StashKey[dict[str, str]]()


class _ShowsConfigErrors(pytest.Collector):
    """A collector whose bad-input errors show as their message, without a traceback; an
    error already shown for another file (a broken environment every suite uses) is not
    repeated in full."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        text = _error_text(excinfo)
        if text is None:
            return super().repr_failure(excinfo)
        shown = self.config.stash.setdefault(_SHOWN_ERRORS, {})
        first = shown.setdefault(text, self.nodeid)
        if first != self.nodeid:
            return f"the same error as {first} (above)"
        return text


class SuiteFile(pytest.File, _ShowsConfigErrors):
    """A YAML file under one of the suites folders."""

    def collect(self) -> Iterator[pytest.Collector]:
        run = self.config.stash[RUN_KEY]
        known = run.environments_file().names if run.selected else None
        suite = load_suite(self.path, display_path(self.path, Path(self.config.rootpath)), known)
        claim_ids(suite, self.config.stash.setdefault(CHECK_IDS_KEY, {}))
        if not run.selected:
            run.suites_without_env.append(suite.file)
            if xdist.is_worker(self.config):
                # An xdist worker cannot end the session with a usage error; a collection error
                # reaches the controller and fails the run there.
                raise UsageProblem(run.no_env_message())
            return
        yield SuiteNode.from_parent(self, name=suite.name, suite=suite)


class SuiteNode(_ShowsConfigErrors):
    """One suite; its children are the check items of every selected environment."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self) -> list[pytest.Item]:
        run = self.config.stash[RUN_KEY]
        registered = {line.split(":")[0].split("(")[0].strip()
                      for line in self.config.getini("markers")}
        # pytest.mark.<name> looks the name up in the ini markers on every access: once a name.
        decorators: dict[str, pytest.MarkDecorator] = {}
        items: list[pytest.Item] = []
        with gc_paused():  # thousands of new objects and no garbage (see gc_paused)
            for check in self.suite.checks:
                for mark in check.marks:
                    if mark not in registered:
                        self.config.addinivalue_line("markers",
                                                     f"{mark}: a deploycheck suite mark")
                        registered.add(mark)
                marks = []
                for name in (*markers(check.kind, check.phase), *check.marks):
                    if name not in decorators:
                        decorators[name] = getattr(pytest.mark, name)
                    marks.append(decorators[name])
                for env_name in run.selected:
                    for instance in instances(check, run.environment(env_name)):
                        item = CheckItem.from_parent(self, name=instance.name,
                                                     instance=instance)
                        for marker in marks:
                            item.add_marker(marker)
                        # The scope renders parametrize values: only for a check with if:.
                        item.unneeded = skip_reason(
                            check.conditions, instance.scope(), run.environ, run.changes
                        ) if check.conditions else None
                        if item.unneeded:
                            item.add_marker(pytest.mark.skip(reason=item.unneeded))
                        item.user_properties += junit_properties(env_name, check.kind)
                        items.append(item)
        return items


class CheckItem(pytest.Item):
    """One check in one environment (and one parametrize value)."""

    def __init__(self, *, instance: CheckInstance, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.instance = instance
        self.result: CheckResult | None = None
        self.ran: tuple[float, float] | None = None  # when the check started and stopped
        self.warning = ""  # why an ``on_fail: warn`` check would have failed
        self.unneeded: str | None = None  # why its ``if:`` leaves it out
        self._static_info: CheckInfo | None = None

    def runtest(self) -> None:
        if self.unneeded:  # also when pytest's skipping plugin is off (-p no:skipping)
            pytest.skip(self.unneeded)
        run = self.config.stash[RUN_KEY]
        result = run.engine.take(self.nodeid, functools.partial(self.run_timed, run))
        self.result = result
        if result.outcome == "warned" or (result.outcome == "failed"
                                          and self.instance.check.on_fail == "warn"):
            self.warning = result.reason
            return
        if result.outcome == "failed":
            raise CheckFailed(result.render(self.instance, run.redactor), result.reason)
        if result.outcome == "skipped":
            pytest.skip(run.redactor.redact(result.reason))
        if result.outcome == "inconclusive":
            pytest.skip(run.redactor.redact(f"{INCONCLUSIVE}: {result.reason}"))

    def run_timed(self, run: DeployRun) -> CheckResult:
        """Run the check, keeping when it started and stopped (wall clock, for reports)."""
        started = time.time()
        try:
            return run.run_check(self.instance)
        finally:
            self.ran = (started, time.time())

    def report_info(self, call: pytest.CallInfo[None]) -> CheckInfo:
        """The gate's view of one phase's report, as plain data (xdist sends it to the
        controller with the report), redacted. Read-only: a phase that passed without a result
        (setup, teardown) shares one mapping per item."""
        instance, check = self.instance, self.instance.check
        if self._static_info is None:
            self._static_info = check_info(
                id=check.id, item_id=f"{check.suite}::{instance.name}", suite=check.suite,
                name=check.name, env=instance.env.name, kind=check.kind, phase=check.phase,
                on_fail=check.on_fail, services=check.rolls_back(),
                severity=check.severity, runbook=check.runbook, file=check.file,
                line=check.line, order=self.stash.get(ORDER_KEY, 0))
        result = self.result if call.when == "call" else None
        if call.excinfo is None and result is None:
            return self._static_info
        redactor = self.config.stash[RUN_KEY].redactor
        info = self._static_info.copy()
        if self.unneeded:
            info["unneeded"] = redactor.redact(self.unneeded)
        if call.excinfo is not None:
            value = call.excinfo.value
            reason = value.args[1] if isinstance(value, CheckFailed) else str(value)
            info["reason"] = redactor.redact(reason.splitlines()[0]) if reason else ""
        if result is not None:
            details = result.details()
            info["warning"] = redactor.redact(self.warning) if self.warning else ""
            info["inconclusive"] = result.outcome == "inconclusive"
            info["note"] = redactor.redact(result.note) if result.note else ""
            # JSON-safe (xdist serialises reports) and redacted.
            info["details"] = redactor.redact_data(details)
            # The --ack value that acknowledged a manual step or emergency window, if any.
            info["acknowledged"] = details.get("acknowledged")
        return info

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value.args[0])
        return _error_text(excinfo) or super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        check = self.instance.check
        return self.path, check.line - 1, f"{check.suite}::{self.name}"
