"""The controller-side plugin that gathers item outcomes and prints the ``deploycheck`` summary.

Registered only where the run is decided (the single process, or the xdist controller), it sees
every report once, whichever worker produced it.
"""

from __future__ import annotations

import pytest

from .session import CheckRecord, Summary


class GateReporter:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.summary = Summary()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = getattr(report, "deploycheck", None)
        if not info:
            return
        self.summary.add(CheckRecord(
            nodeid=report.nodeid, env=info["env"], kind=info["kind"], file=info["file"],
            line=info["line"], outcome=report.outcome, reason=info["reason"]))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        by_env = self.summary.by_env()
        if not by_env:
            return
        terminalreporter.section("deploycheck")
        for env, records in by_env.items():
            failed = [r for r in records if r.outcome == "failed"]
            passed = sum(r.outcome == "passed" for r in records)
            skipped = sum(r.outcome == "skipped" for r in records)
            verdict = "failed" if failed else "passed"
            markup = {"red": True, "bold": True} if failed else {"green": True, "bold": True}
            terminalreporter.write_line(
                f"{env}: {verdict} ({passed} passed, {len(failed)} failed, {skipped} skipped)",
                **markup)
            for record in failed:
                terminalreporter.write_line(f"  FAILED {record.nodeid}  ({record.file}:"
                                            f"{record.line})")
                if record.reason:
                    terminalreporter.write_line(f"         {record.reason}")
