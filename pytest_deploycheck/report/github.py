"""GitHub Actions output: workflow-command annotations at the failing checks' lines, and a
Markdown summary for ``$GITHUB_STEP_SUMMARY`` (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..actions import ActionResult
from ..gate import OK_VERDICTS, EnvGate


def _data(text: str) -> str:
    """A workflow command's message, escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(envs: Mapping[str, EnvGate]) -> list[str]:
    """``::error`` for each failed check (``::warning`` for a warning) at its file and line,
    and one ``::error`` for each rollback that failed."""
    lines = []
    for env, gate in envs.items():
        for record in gate.ordered():
            if record.outcome not in ("failed", "warned"):
                continue
            level = "error" if record.outcome == "failed" else "warning"
            what = "failed" if record.outcome == "failed" else "warning"
            title = f"{record.kind} check {what} in {env}: {record.name} (on_fail: " \
                    f"{record.on_fail})"
            lines.append(f"::{level} file={_property(record.file)},line={record.line},"
                         f"title={_property(title)}::{_data(record.message or what)}")
        rollback = gate.rollback
        if rollback is not None and rollback.mode == "auto" and rollback.problem \
                and not rollback.vetoed_by:
            message = rollback.problem
            lines.append(f"::error title={_property(f'rollback of {env} failed')}::"
                         f"{_data(message)}")
        for error in gate.errors:
            # A suite that failed to collect, an internal error, items that never ran.
            lines.append(f"::error title={_property(f'{env}: not evaluated')}::{_data(error)}")
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:300]


def step_summary(envs: Mapping[str, EnvGate], repository_url: str | None = None) -> str:
    """A Markdown section per environment: verdict, counts, failures, warnings, rollback."""
    out = ["## deploycheck", ""]
    out += ["| environment | verdict | passed | failed | skipped | warnings |",
            "|---|---|---|---|---|---|"]
    for env, gate in envs.items():
        verdict = gate.verdict or gate.decide()
        mark = "✅" if verdict in OK_VERDICTS else "❌"
        counts = gate.counts()
        out.append(f"| {env} | {mark} `{verdict}` | {counts['passed'] + counts['warned']} | "
                   f"{counts['failed']} | {counts['skipped'] + counts['inconclusive']} | "
                   f"{counts['warned']} |")
    for env, gate in envs.items():
        problems = [r for r in gate.ordered() if r.outcome in ("failed", "warned")]
        if problems:
            out += ["", f"### {env}: failed checks and warnings", "",
                    "| check | kind | on_fail | where | reason |", "|---|---|---|---|---|"]
            for record in problems:
                where = f"{record.file}:{record.line}"
                if repository_url:
                    where = f"[{where}]({repository_url}/{record.file}#L{record.line})"
                flag = "warning: " if record.outcome == "warned" else ""
                out.append(f"| {_cell(record.id)} | {record.kind} | {record.on_fail} | {where} "
                           f"| {flag}{_cell(record.message)} |")
        if gate.errors:
            out += ["", f"### {env}: not evaluated", ""]
            out += [f"- {_cell(error)}" for error in gate.errors]
        if gate.rollback is not None:
            out += ["", f"### {env}: rollback ({gate.rollback.mode})", "",
                    f"Triggered by {len(gate.rollback.triggered_by)} failed check(s).", ""]
            out += _action_table(gate.rollback.actions)
        if gate.notify:
            out += ["", f"### {env}: notifications", "", *_action_table(gate.notify)]
    return "\n".join(out) + "\n"


def _action_table(actions: Iterable[ActionResult]) -> list[str]:
    rows = ["| action | type | outcome | duration | message |", "|---|---|---|---|---|"]
    for action in actions:
        rows.append(f"| {_cell(action.name)} | {action.type} | {action.outcome} | "
                    f"{action.duration:.2f}s | {_cell(action.message)} |")
    return rows if len(rows) > 2 else ["(no actions)"]
