"""GitHub Actions output: workflow-command annotations at the failing checks' lines, and a
Markdown summary for ``$GITHUB_STEP_SUMMARY`` (SPEC §6)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from ..actions import ActionResult
from ..deploy import PHASES
from ..gate import OK_VERDICTS, CheckRecord, EnvGate, overall_verdict, verified
from ..units import format_duration, one_line


def _data(text: str) -> str:
    """A workflow command's message, escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


# GitHub shows at most 10 error and 10 warning annotations of a step (50 of a job); more are
# dropped without a word, so the most important go first and a notice counts the rest.
MAX_ANNOTATIONS = 10
_ON_FAIL_ORDER = {"rollback": 0, "block": 1, "warn": 2}


def workflow_commands(envs: Mapping[str, EnvGate], prefix: str = "") -> list[str]:
    """``::error`` for each failed check (``::warning`` for a warning) at its file and line,
    and one ``::error`` for each rollback that failed and each error that left an environment
    unevaluated: those first, then the failures that roll back, then those that block; at most
    :data:`MAX_ANNOTATIONS` of each level, and a notice saying how many more there are.
    ``prefix`` is the rootdir's path in the workspace (``services/api/``), which GitHub's
    file paths are relative to."""
    errors: list[tuple[int, str]] = []
    warnings: list[str] = []
    for env, gate in envs.items():
        rollback = gate.rollback
        if rollback is not None and rollback.mode == "auto" and rollback.problem \
                and not rollback.vetoed_by:
            errors.append((-2, f"::error title={_property(f'rollback of {env} failed')}::"
                               f"{_data(rollback.problem)}"))
        for error in gate.errors:
            # A suite that failed to collect, an internal error, items that never ran.
            errors.append((-1, f"::error title={_property(f'{env}: not evaluated')}::"
                               f"{_data(error)}"))
        for record in gate.ordered():
            if record.outcome not in ("failed", "warned"):
                continue
            what = "failed" if record.outcome == "failed" else "warning"
            title = f"{record.kind} check {what} in {env}: {record.name} (on_fail: " \
                    f"{record.on_fail})"
            where = f"file={_property(prefix + record.file)},line={record.line}," \
                    f"title={_property(title)}"
            if record.outcome == "failed":
                errors.append((_ON_FAIL_ORDER.get(record.on_fail, 3),
                               f"::error {where}::{_data(record.message or what)}"))
            else:
                warnings.append(f"::warning {where}::{_data(record.message or what)}")
    errors.sort(key=lambda pair: pair[0])  # stable: in the order the checks were decided
    lines = [line for _, line in errors[:MAX_ANNOTATIONS]] + warnings[:MAX_ANNOTATIONS]
    more_errors = max(len(errors) - MAX_ANNOTATIONS, 0)
    more_warnings = max(len(warnings) - MAX_ANNOTATIONS, 0)
    if more_errors or more_warnings:
        lines.append(f"::notice title=deploycheck::{more_errors} more failures and "
                     f"{more_warnings} more warnings than GitHub shows here: see the step "
                     f"summary or the gate report")
    return lines


def workspace_prefix(rootdir: str, workspace: str | None) -> str:
    """The rootdir's path inside ``$GITHUB_WORKSPACE`` with a trailing slash ("" when they are
    the same, or the rootdir is elsewhere)."""
    if not workspace:
        return ""
    root, base = Path(rootdir).resolve(), Path(workspace).resolve()
    if root == base or not root.is_relative_to(base):
        return ""
    return root.relative_to(base).as_posix() + "/"


def outputs(envs: Mapping[str, EnvGate], report: Path | None, prefix: str = "") -> str:
    """``$GITHUB_OUTPUT`` lines (and, with ``prefix`` ``DEPLOYCHECK_``, a dotenv file's):
    ``verdict`` (the worst environment's), ``failed`` (failed checks), ``report`` (the gate
    report's path, when written)."""
    verdict = overall_verdict(gate.verdict or gate.decide() for gate in envs.values())
    failed = sum(gate.counts()["failed"] for gate in envs.values())
    return output_lines(verdict, failed, report, prefix)


def output_lines(verdict: str, failed: int, report: Path | None, prefix: str = "") -> str:
    """``verdict=...`` lines; with a ``prefix``, upper case (``DEPLOYCHECK_VERDICT``)."""
    values = {"verdict": verdict, "failed": failed}
    # A path with a line break would write a line of its own (verdict=passed): left out.
    if report is not None and not any(c in str(report) for c in "\r\n"):
        values["report"] = report
    name = str.upper if prefix else str
    return "".join(f"{prefix}{name(key)}={value}\n" for key, value in values.items())


# GitHub drops a step summary over 1 MiB whole, verdicts included: the tables are cut first.
MAX_ROWS = 100
MAX_SUMMARY = 900_000  # characters (at most 4 bytes each in UTF-8 is still far under 1 MiB)


def _cell(text: str) -> str:
    """``text`` as plain text in a Markdown table cell or list item: one line, without markup
    (a check's name may hold ``|``, backticks or HTML)."""
    text = one_line(text)[:300]
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
            .replace("<", "&lt;"))


def _rows(rows: list[str], what: str) -> list[str]:
    """At most :data:`MAX_ROWS` of a table's rows, and a row saying how many more."""
    if len(rows) <= MAX_ROWS:
        return rows
    return [*rows[:MAX_ROWS], f"| … {len(rows) - MAX_ROWS} more {what}: see the gate report |"]


def summary_title(envs: Mapping[str, EnvGate], seconds: float) -> str:
    """``deploycheck: post-deploy gate of production (1m 5s)``: two gates in one job (before
    and after the deploy) get summaries told apart."""
    phases = sorted({phase for gate in envs.values() for phase in gate.phases()},
                    key=PHASES.index)
    named = " and ".join(_PHASE_NAMES.get(phase, phase) for phase in phases) or "gate"
    return f"deploycheck: {named} gate of {', '.join(envs)} ({format_duration(seconds)})"


_PHASE_NAMES = {"predeploy": "pre-deploy", "postdeploy": "post-deploy",
                "postrollback": "post-rollback"}


def step_summary(envs: Mapping[str, EnvGate], repository_url: str | None = None,
                 title: str = "deploycheck", report_url: str | None = None) -> str:
    """A Markdown section per environment: verdict, counts, failures, warnings, rollback."""
    out = [f"## {title}", ""]
    if report_url:
        out += [f"The gate report and evidence: [{report_url}]({report_url})", ""]
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
            rows = []
            for record in problems:
                where = f"{record.file}:{record.line}"
                if repository_url:
                    where = f"[{where}]({repository_url}/{record.file}#L{record.line})"
                flag = "warning: " if record.outcome == "warned" else ""
                rows.append(f"| {_cell(record.id)} | {record.kind} | {record.on_fail} | {where} "
                            f"| {flag}{_cell(record.message)} |")
            out += _rows(rows, "failed checks and warnings")
        observed = [r for r in gate.ordered() if r.observation]
        if observed:
            out += ["", f"### {env}: observations", "",
                    "| check | outcome | measurements | breaches | errors | over |",
                    "|---|---|---|---|---|---|"]
            out += _rows([_observation_row(record) for record in observed], "observations")
        if gate.errors:
            out += ["", f"### {env}: not evaluated", ""]
            out += [f"- {_cell(error)}" for error in gate.errors[:MAX_ROWS]]
        if gate.rollback is not None:
            rollback = gate.rollback
            out += ["", f"### {env}: rollback ({rollback.mode})", "",
                    f"Triggered by {len(rollback.triggered_by)} failed check(s): "
                    + ", ".join(_cell(check) for check in rollback.triggered_by[:MAX_ROWS])
                    + (f" and {len(rollback.triggered_by) - MAX_ROWS} more"
                       if len(rollback.triggered_by) > MAX_ROWS else "") + ".",
                    ""]
            out += _action_table(rollback.actions)
            if rollback.verification:
                out += ["", "Verified by the post-rollback checks:", ""]
                out += [f"- {_cell(found['id'])}: "
                        f"{'VERIFIED' if verified(found) else 'NOT VERIFIED'} ({found['outcome']})"
                        for found in rollback.verification[:MAX_ROWS]]
        if gate.notify:
            out += ["", f"### {env}: notifications", "", *_action_table(gate.notify)]
    text = "\n".join(out) + "\n"
    if len(text) > MAX_SUMMARY:  # many environments: the verdicts come first and stay
        text = text[:text.rfind("\n", 0, MAX_SUMMARY) + 1] + \
            "\n… cut here to stay within GitHub's limit: see the gate report.\n"
    return text


def _observation_row(record: CheckRecord) -> str:
    seen = record.observation or {}
    return (f"| {_cell(record.id)} | {record.outcome} | {seen.get('taken')} of "
            f"{seen.get('planned')} | {seen.get('breaches')} | {seen.get('errors')} | "
            f"{format_duration(float(seen.get('seconds') or 0))} |")


def _action_table(actions: Iterable[ActionResult]) -> list[str]:
    rows = ["| action | type | outcome | duration | message |", "|---|---|---|---|---|"]
    for action in actions:
        rows.append(f"| {_cell(action.name)} | {action.type} | {action.outcome} | "
                    f"{action.duration:.2f}s | {_cell(action.message)} |")
    return rows if len(rows) > 2 else ["(no actions)"]
