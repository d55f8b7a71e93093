"""The controller-side plugin that gathers item outcomes and prints the ``deploycheck`` summary.

Registered only where the run is decided (the single process, or the xdist controller), it sees
every report once, whichever worker produced it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest


@dataclass
class CheckRecord:
    """What the summary needs of one finished item (built from its report, also under xdist)."""

    nodeid: str
    env: str
    kind: str
    file: str
    line: int
    outcome: str
    reason: str
    note: str = ""
    inconclusive: bool = False


@dataclass
class Summary:
    """Per-environment outcome of the run, gathered on the controller from the reports."""

    records: dict[str, CheckRecord] = field(default_factory=dict)

    def add(self, record: CheckRecord) -> None:
        previous = self.records.get(record.nodeid)
        # setup/call/teardown each report; the worst of them is the item's outcome, and what
        # the call found out (a note, inconclusive) is kept whichever report it came with.
        if previous is not None:
            if _RANK[record.outcome] <= _RANK[previous.outcome]:
                record, previous = previous, record
            record.note = record.note or previous.note
            record.inconclusive = record.inconclusive or previous.inconclusive
        self.records[record.nodeid] = record

    def by_env(self) -> dict[str, list[CheckRecord]]:
        out: dict[str, list[CheckRecord]] = {}
        for record in self.records.values():
            out.setdefault(record.env, []).append(record)
        return out


_RANK = {"passed": 0, "skipped": 1, "failed": 2}


class GateReporter:
    def __init__(self, config: pytest.Config, acks: frozenset[str] = frozenset()) -> None:
        self.config = config
        self.summary = Summary()
        self.acks = acks  # --ack values, to tell the user about those that matched nothing
        self.used_acks: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = getattr(report, "deploycheck", None)
        if not info:
            return
        if info.get("acknowledged"):
            self.used_acks.update(self.acks & set(info["details"].get("ack_ids", ())))
        self.summary.add(CheckRecord(
            nodeid=report.nodeid, env=info["env"], kind=info["kind"], file=info["file"],
            line=info["line"], outcome=report.outcome, reason=info["reason"],
            note=info.get("note", ""), inconclusive=info.get("inconclusive", False)))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        by_env = self.summary.by_env()
        if not by_env:
            return
        terminalreporter.ensure_newline()
        terminalreporter.section("deploycheck")
        for env, records in by_env.items():
            failed = [r for r in records if r.outcome == "failed"]
            passed = sum(r.outcome == "passed" for r in records)
            inconclusive = sum(r.inconclusive for r in records)
            skipped = sum(r.outcome == "skipped" for r in records) - inconclusive
            verdict = "failed" if failed else "passed"
            markup = {"red": True, "bold": True} if failed else {"green": True, "bold": True}
            counts = f"{passed} passed, {len(failed)} failed, {skipped} skipped"
            if inconclusive:
                counts += f", {inconclusive} inconclusive"
            terminalreporter.write_line(f"{env}: {verdict} ({counts})", **markup)
            for record in failed:
                terminalreporter.write_line(f"  FAILED {record.nodeid}  ({record.file}:"
                                            f"{record.line})")
                if record.reason:
                    terminalreporter.write_line(f"         {record.reason}")
            for record in records:
                if record.inconclusive:
                    terminalreporter.write_line(f"  INCONCLUSIVE {record.nodeid}  "
                                                f"({record.file}:{record.line})")
                if record.note:
                    terminalreporter.write_line(f"  NOTE {record.nodeid}: {record.note}")
        for ack in sorted(self.acks - self.used_acks - {"all"}):
            terminalreporter.write_line(f"  NOTE --ack '{ack}' matched no item of this run")


def progress_writer(config: pytest.Config) -> Callable[[str], None]:
    """A function that shows a line on the terminal while a check runs (output is captured
    then, so it writes with capturing suspended), for live progress of long observations."""

    def write(line: str) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager")
        if terminal is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            terminal.ensure_newline()
            terminal.write_line(f"    {line}")

    return write
