"""pytest's view of checks written in Python: the ``deploycheck`` marker on plain tests.

A test that uses ``deploy_env`` is parametrized over the selected environments; the marker (or
the defaults for an unmarked test) gives it a kind, the kind's markers, an ``on_fail`` policy
and a timeout, and its reports carry the same gate information as a YAML check's.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..checks.metric import MetricReader
from ..checks.python import UNMARKED, PythonCheck, parse_marker
from ..deployrun import display_path
from ..errors import ConfigError, DeploycheckError
from ..gate import CheckInfo, check_info
from ..metrics import Sample
from ..runtime.watchdog import interrupt_after
from ..secrets import Redactor
from ..units import format_duration
from .keys import RUN_KEY
from .yamlitems import ORDER_KEY, junit_properties

MARKER = "deploycheck"
CHECK_KEY = pytest.StashKey[PythonCheck]()
LOCATION_KEY = pytest.StashKey[tuple[str, int]]()  # display path and line, for reports
WARNING_KEY = pytest.StashKey[str]()
# The check each test function declares, by the function's node id: parsed once, at
# parametrization, for all of its items.
DECLARED_KEY = pytest.StashKey[dict[str, PythonCheck]]()


def declared_check(node: Any, function_id: str | None = None) -> PythonCheck:
    """The check a test function declares, read from ``node`` (its ``FunctionDefinition`` at
    parametrization, or one of its items) and kept by ``function_id`` (default the node's id).

    Raises ``CollectError`` naming the test's file and line for a bad marker.
    """
    key = function_id or node.nodeid
    declared: dict[str, PythonCheck] = node.config.stash.setdefault(DECLARED_KEY, {})
    check = declared.get(key)
    if check is not None:
        return check
    mark = node.get_closest_marker(MARKER)
    check = UNMARKED
    if mark is not None:
        run = node.config.stash[RUN_KEY]
        path, line = _location(node)
        try:
            check = parse_marker(mark.args, mark.kwargs, path, line,
                                 run.environments_file().names)
        except ConfigError as exc:
            raise pytest.Collector.CollectError(str(exc)) from None
    declared[key] = check
    return check


def _location(node: Any) -> tuple[str, int]:
    path, line, _ = node.reportinfo()
    return display_path(Path(path), Path(node.config.rootpath)), (line or 0) + 1


def syntax_error_text(collector: pytest.Collector) -> str | None:
    """``tests/x.py:12: SyntaxError: ...`` and the line, when the test module (or the conftest
    of the folder) that ``collector`` failed to import does not compile; None otherwise.

    pytest shows a syntax error as a traceback through its own import machinery, whose first
    line (what the gate and the short summary show) is a line of pytest's code.
    """
    path = Path(collector.path)
    file = path if isinstance(collector, pytest.Module) else path / "conftest.py"
    try:
        compile(file.read_bytes(), str(file), "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = display_path(file, Path(collector.config.rootpath))
        lines = [f"{where}:{exc.lineno}: SyntaxError: {exc.msg}"]
        if exc.text:
            lines.append(f"    {exc.text.rstrip()}")
            if exc.offset:
                lines.append(f"    {' ' * (exc.offset - 1)}^")
        return "\n".join(lines)
    except (OSError, ValueError):  # unreadable, or a null byte: not a syntax error to show
        return None
    return None


def item_phase(item: pytest.Item) -> tuple[str, str] | None:
    """(environment, phase) of a check item, YAML or Python; None for any other test."""
    from .yamlitems import CheckItem

    if isinstance(item, CheckItem):
        return item.instance.env.name, item.instance.check.phase
    check, env = item.stash.get(CHECK_KEY, None), environment_of(item)
    return (env, check.phase) if check is not None and env is not None else None


def environment_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    env = callspec.params.get("deploy_env")
    return env if isinstance(env, str) else None


def prepare(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every Python check its kind markers and drop the environments it skips."""
    kept, dropped = [], []
    for item in items:
        env = environment_of(item)
        if env is None or not isinstance(item, pytest.Function) or item.parent is None:
            kept.append(item)
            continue
        check = declared_check(item, f"{item.parent.nodeid}::{item.originalname}")
        if not check.applies_to(env):
            dropped.append(item)
            continue
        item.stash[CHECK_KEY] = check
        item.stash[LOCATION_KEY] = _location(item)
        item.user_properties += junit_properties(env, check.kind)
        for marker in check.markers:
            item.add_marker(marker)
        kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def guard_call(item: pytest.Item) -> Generator[None, None, None]:
    """Run a Python check's body under its ``timeout``, and pass ``on_fail: warn`` failures
    with the failure recorded as the warning."""
    check = item.stash.get(CHECK_KEY, None)
    if check is None:
        yield
        return
    try:
        if check.timeout is None:
            yield
        else:
            message = (f"timed out after {format_duration(check.timeout)} (the check's "
                       f"timeout)")
            with interrupt_after(check.timeout, lambda: pytest.fail.Exception(
                    message, pytrace=False)):
                yield
    except (pytest.skip.Exception, pytest.exit.Exception, KeyboardInterrupt):
        raise
    except (Exception, pytest.fail.Exception) as exc:
        if check.on_fail != "warn":
            raise
        item.stash[WARNING_KEY] = _reason(exc, item.config.stash[RUN_KEY].redactor)


def report_info(item: pytest.Item, call: pytest.CallInfo[None]) -> CheckInfo | None:
    """The gate's view of a Python check's report (plain data, for xdist)."""
    check = item.stash.get(CHECK_KEY, None)
    env = environment_of(item)
    if check is None or env is None:
        return None
    redactor = item.config.stash[RUN_KEY].redactor
    path, line = item.stash[LOCATION_KEY]
    name = item.nodeid.partition("::")[2]
    reason = _reason(call.excinfo.value, redactor) if call.excinfo is not None else ""
    info = check_info(
        id=f"{path}::{name.partition('[')[0]}", item_id=f"{path}::{name}", suite=path,
        name=name.partition("[")[0], env=env, kind=check.kind, phase=check.phase,
        on_fail=check.on_fail,
        severity=check.severity, runbook=check.runbook, file=path, line=line,
        order=item.stash.get(ORDER_KEY, 0))
    info["warning"] = redactor.redact(item.stash.get(WARNING_KEY, "")) \
        if call.when == "call" else ""
    info["reason"] = redactor.redact(reason)
    return info


def redact_report(report: pytest.TestReport | pytest.CollectReport, redactor: Redactor) -> None:
    """Mask the secrets in everything a report carries to the terminal, JUnit, Allure and
    xdist: its failure text (pytest's assertion details show the values compared), its captured
    stdout, stderr and log sections, and its recorded properties.

    Run in the process that made the report, whose redactor knows the secrets its checks
    learned (a saved token), before any other plugin reads the report.
    """
    longrepr = report.longrepr
    if longrepr is not None and not isinstance(longrepr, (str, tuple)):
        text = str(longrepr)
        if redactor.redact(text) != text:
            redactor.redact_in_place(longrepr)
            # Whatever the structure kept out of reach: the whole text, masked, instead.
            if redactor.redact(str(longrepr)) != str(longrepr):
                report.longrepr = redactor.redact(text)
    elif longrepr is not None:
        report.longrepr = redactor.redact_in_place(longrepr)
    if report.sections:
        report.sections = [(title, redactor.redact(text)) for title, text in report.sections]
    if isinstance(report, pytest.TestReport) and report.user_properties:
        report.user_properties = [
            (name, redactor.redact(value) if isinstance(value, str)
             else redactor.redact_in_place(value)) for name, value in report.user_properties]
    redact_xfail_reason(report, redactor)


def redact_xfail_reason(report: pytest.TestReport | pytest.CollectReport, redactor: Redactor
                        ) -> None:
    """Mask the reason an xfailed report carries (set by pytest's skipping plugin, whose
    wrapper runs after :func:`redact_report`)."""
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = redactor.redact(report.wasxfail)  # type: ignore[union-attr]


def masked_comparison(config: pytest.Config, op: str, left: object, right: object
                      ) -> list[str] | None:
    """pytest's explanation of a failed comparison, made from the operands with the run's
    secrets masked: pytest shortens what it shows (identical leading and trailing characters
    skipped, long reprs cut) before any report exists, and a secret cut there no longer
    matches. ``None`` when the operands hold no secret."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return None
    masked_left, masked_right = _masked(left, run.redactor), _masked(right, run.redactor)
    if masked_left is left and masked_right is right:
        return None  # also what this hook answers for the masked operands below
    for explanation in config.hook.pytest_assertrepr_compare(
            config=config, op=op, left=masked_left, right=masked_right):
        if explanation:
            return list(explanation)
    return None


_PLAIN = (list, tuple, set, frozenset)  # containers rebuilt as they are (not subclasses)


def _masked(value: object, redactor: Redactor, depth: int = 0) -> object:
    """``value`` with the secrets masked in its strings, the same object if it holds none;
    plain containers keep their type, other objects are left to the report's redaction."""
    if isinstance(value, str):
        return redactor.redact(value)
    if type(value) is bytes:  # a body; shown wrapped over lines, which splits a secret
        text = value.decode(errors="surrogateescape")
        masked = redactor.redact(text)
        return value if masked is text else masked.encode(errors="surrogateescape")
    if depth > 8:
        return value
    if isinstance(value, (list, tuple, set, frozenset)) and type(value) in _PLAIN:
        items = [_masked(item, redactor, depth + 1) for item in value]
        changed = any(a is not b for a, b in zip(items, value, strict=True))
        return type(value)(items) if changed else value
    if isinstance(value, dict) and type(value) is dict:
        pairs = [(_masked(k, redactor, depth + 1), _masked(v, redactor, depth + 1))
                 for k, v in value.items()]
        changed = any(k is not a or v is not b for (k, v), (a, b) in zip(
            pairs, value.items(), strict=True))
        return dict(pairs) if changed else value
    return value


class _RedactedLogRecords(logging.Filter):
    """Masks the secrets in each log record a handler writes out as it comes (live logging,
    ``--log-file``): those never pass through a report."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redactor.redact(message)
        if redacted is not message:
            record.msg, record.args = redacted, None
        return True


def redact_live_output(config: pytest.Config, redactor: Redactor) -> None:
    """Mask secrets in what pytest writes out while tests run: live log, ``--log-file`` and
    every write to the terminal (a ``-v`` line shows the item's own id, before any report)."""
    logging_plugin = config.pluginmanager.get_plugin("logging-plugin")
    for name in ("log_cli_handler", "log_file_handler"):
        handler = getattr(logging_plugin, name, None)
        if isinstance(handler, logging.Handler):
            handler.addFilter(_RedactedLogRecords(redactor))
    if config.pluginmanager.get_plugin("terminalreporter") is not None:
        writer = config.get_terminal_writer()
        write = writer.write

        def redacted_write(msg: str, *, flush: bool = False, **markup: bool) -> None:
            write(redactor.redact(msg), flush=flush, **markup)

        writer.write = redacted_write  # type: ignore[method-assign]


class RedactedTestIds:
    """Masks secrets in a report's test id (a parameter made from a secret is part of it:
    pytest shows a plain string as it is) before the terminal, JUnit and the gate read it.

    In the process that writes the outputs only: an xdist worker checks that each report's id
    is its item's, and the controller masks what it receives.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        report.nodeid = self.redactor.redact(report.nodeid)
        report.location = self.redactor.redact_in_place(report.location)


class RedactedWarnings:
    """Masks secrets in each warning's message before the warnings summary (or xdist, which
    sends it to the controller) reads it."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    @pytest.hookimpl(tryfirst=True)
    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        text = str(warning_message.message)
        redacted = self.redactor.redact(text)
        if redacted is text:
            return
        category = warning_message.category
        try:
            warning_message.message = category(redacted)
        except Exception:  # a warning class that wants other arguments
            warning_message.message = UserWarning(redacted)


def _reason(exc: BaseException, redactor: Redactor) -> str:
    """The first line of the failure, cut to 300 characters once masked (cutting first would
    leave the start of a secret that then no longer matches)."""
    if isinstance(exc, pytest.fail.Exception):
        text = str(exc.msg)
    else:
        text = str(exc).strip()
        text = f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__
    lines = redactor.redact(text).strip().splitlines()
    return lines[0][:300] if lines else ""


class FailingReader:
    """``metric(source)`` as a test sees it: a query that cannot be answered fails the test
    with its one-line reason instead of a traceback through the plugin."""

    def __init__(self, name: str, reader: MetricReader) -> None:
        self._name, self._reader = name, reader

    def __repr__(self) -> str:  # what an assertion failure shows
        return f"metric({self._name!r})"

    def query(self, query: str) -> float:
        with failing_test():
            return self._reader.query(query)

    def series(self, query: str, window: float | str, step: float | str | None = None
               ) -> list[Sample]:
        with failing_test():
            return self._reader.series(query, window, step)


@contextlib.contextmanager
def failing_test() -> Iterator[None]:
    """The plugin's errors inside a test's fixtures fail the test with their message only."""
    try:
        yield
    except DeploycheckError as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None
