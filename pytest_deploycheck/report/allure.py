"""The files of an Allure results folder that no single test writes, written once per run on
the controller: ``environment.properties``, ``executor.json``, ``categories.json``, and the
rollback and notifications of each environment as results of their own (SPEC §6).

Plain files in Allure's results format, so this module needs neither pytest nor allure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..actions import ActionResult
from ..gate import EnvGate, RollbackRun, verified
from ..runtime.durable import write_json_atomic

# The categories a failed result falls in: the first whose statuses and message match, in
# this order. Infrastructure first: "cannot connect" says nothing about the release. A kind's
# failures by the kind (its ``subSuite`` label, or for Allure 2, which matches messages only,
# the first line of the failure text).
_INFRASTRUCTURE = ("cannot connect|connection (refused|reset)|timed out|name resolution|TLS|"
                   "certificate verify|crashed|cannot run|"
                   "answered \\d+ with a body that is not JSON|no data for")
# A check's failure text starts with a line naming the check: its reason comes after that
# line, so that a check named "TLS certificate valid" is not an infrastructure error by name.
_HEADER = "[^\\n]*check '[^\\n]*' failed in environment '[^\\n]*'"


def _rule(name: str, statuses: tuple[str, ...], allure2: str, allure3: dict[str, Any]
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A category for Allure 2 (a Java regular expression matching the whole message) and
    for Allure 3 (JavaScript regular expressions searched in the message, and labels; its
    failures listed by environment)."""
    return ({"name": name, "matchedStatuses": list(statuses), "messageRegex": allure2},
            {"name": name, "groupBy": [{"label": "parentSuite"}], "expand": True,
             "matchers": {"statuses": list(statuses), **allure3}})


_RULES = [
    _rule("Rollback failed", ("failed", "broken"), "(?s)rollback failed.*",
          {"message": "^rollback failed"}),
    _rule("Infrastructure errors (endpoint or metric source unreachable)", ("failed", "broken"),
          f"(?s)(?:(?!{_HEADER}).*({_INFRASTRUCTURE}).*|[^\\n]*\\n.*({_INFRASTRUCTURE}).*)",
          {"message": f"^(?!{_HEADER})[\\s\\S]*({_INFRASTRUCTURE})"
                      f"|\\n[\\s\\S]*({_INFRASTRUCTURE})"}),
    *(_rule(name, ("failed",), f"(?s){kind} check '[^\\n]*' failed in environment .*",
            {"labels": {"subSuite": f"^{kind}$"}})
      for name, kind in (("Health gate failures", "health"), ("Smoke gate failures", "smoke"),
                         ("Metric gate failures", "metric"),
                         ("Pre-deploy checklist failures", "checklist"))),
]
# Allure 2's ``categories.json``, and Allure 3's categories (of its configuration: Allure 3
# does not read that file).
CATEGORIES: list[dict[str, Any]] = [allure2 for allure2, _ in _RULES]
ALLURE3_CATEGORIES: list[dict[str, Any]] = [allure3 for _, allure3 in _RULES]

# The report's tree: environment, suite, kind (the labels every check's result has).
ALLURE3_GROUPING = ["parentSuite", "suite", "subSuite"]


def allure3_config(name: str, output: str, single_file: bool = True) -> dict[str, Any]:
    """The Allure 3 configuration (``allurerc.json``) of a report titled ``name``, written
    to the folder ``output``: one HTML file, or a folder of them."""
    return {"name": name, "output": output,
            "categories": {"rules": ALLURE3_CATEGORIES},
            "plugins": {"awesome": {"options": {"singleFile": single_file, "reportName": name,
                                                "groupBy": ALLURE3_GROUPING}}}}


def headline(title: str, properties: Iterable[tuple[str, str]]) -> str:
    """The report's title with each environment's verdict: ``Deploy 1.2.3: local rolled_back
    (11 passed, 7 failed, 1 skipped)``, from the run's ``environment.properties``."""
    found = dict(properties)
    verdicts = [f"{key.removesuffix('.verdict')} {value}"
                + (f" ({found[key.removesuffix('verdict') + 'checks']})"
                   if key.removesuffix("verdict") + "checks" in found else "")
                for key, value in found.items() if key.endswith(".verdict")]
    return f"{title}: {'; '.join(verdicts)}" if verdicts else title


def executor(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Allure's ``executor.json`` for the CI system the run is in, from its variables."""
    if environ.get("GITHUB_ACTIONS") == "true":
        server = environ.get("GITHUB_SERVER_URL", "https://github.com")
        repo = f"{server}/{environ.get('GITHUB_REPOSITORY', '')}"
        number = environ.get("GITHUB_RUN_NUMBER", "")
        return {"name": "GitHub Actions", "type": "github", "url": repo,
                "buildOrder": _order(number),
                "buildName": f"{environ.get('GITHUB_WORKFLOW', 'workflow')} #{number}",
                "buildUrl": f"{repo}/actions/runs/{environ.get('GITHUB_RUN_ID', '')}"}
    if environ.get("GITLAB_CI") == "true":
        number = environ.get("CI_PIPELINE_IID", environ.get("CI_PIPELINE_ID", ""))
        return {"name": "GitLab CI", "type": "gitlab", "url": environ.get("CI_PROJECT_URL", ""),
                "buildOrder": _order(number),
                "buildName": f"{environ.get('CI_PROJECT_PATH', 'pipeline')} #{number} "
                             f"({environ.get('CI_JOB_NAME', 'job')})",
                "buildUrl": environ.get("CI_PIPELINE_URL", ""),
                "reportUrl": environ.get("CI_JOB_URL", "")}
    if environ.get("JENKINS_URL"):
        number = environ.get("BUILD_NUMBER", "")
        return {"name": "Jenkins", "type": "jenkins", "url": environ["JENKINS_URL"],
                "buildOrder": _order(number),
                "buildName": f"{environ.get('JOB_NAME', 'job')} #{number}",
                "buildUrl": environ.get("BUILD_URL", "")}
    return None


def _order(number: str) -> int | str:
    return int(number) if number.isdigit() else number


def _property(text: str, key: bool = False) -> str:
    """A key or value escaped for a Java properties file (a value may keep ``=`` and ``:``,
    which readers that do not unescape show as they are)."""
    out = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
    for char in "=: #!" if key else "":
        out = out.replace(char, "\\" + char)
    return out


def environment_properties(properties: Iterable[tuple[str, str]]) -> str:
    return "".join(f"{_property(key, key=True)}={_property(value)}\n"
                   for key, value in properties)


def read_properties(text: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of an ``environment.properties`` this module wrote."""
    pairs = []
    for line in text.splitlines():
        key: list[str] = []
        value: list[str] = []
        escaped = False
        target = key
        for char in line:
            if escaped:
                target.append({"n": "\n", "r": "\r"}.get(char, char))
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "=" and target is key:
                target = value
            else:
                target.append(char)
        if target is value:
            pairs.append(("".join(key), "".join(value)))
    return pairs


def _epoch_ms(seconds: float) -> int:
    return int(seconds * 1000)


def action_results(gate: EnvGate, plugin_version: str) -> list[tuple[str, dict[str, Any]]]:
    """The rollback and the notifications of one environment as Allure results, with the
    attachments they refer to: ``[(file name, content)]``, content a dict (a result) or text."""
    files: list[tuple[str, Any]] = []
    runs: list[tuple[str, str, list[ActionResult], str]] = []
    descriptions: dict[str, str] = {}
    if gate.rollback is not None:
        rollback = gate.rollback
        status, message = _rollback_status(rollback)
        runs.append((f"rollback of {gate.env}", status, rollback.actions, message))
        descriptions[f"rollback of {gate.env}"] = _rollback_description(gate, message)
    if gate.notify:
        ok = all(a.outcome == "succeeded" for a in gate.notify)
        runs.append((f"notifications of {gate.env} ({gate.verdict})",
                     "passed" if ok else "failed", gate.notify,
                     "sent" if ok else "a notification failed"))
    for name, status, actions, message in runs:
        now = time.time()
        steps: list[dict[str, Any]] = []
        times: list[int] = []
        for action in actions:
            start = action.started if action.started is not None else now
            attachments = []
            text = "\n".join(part for part in (action.message, action.output) if part)
            if text:
                source = f"{uuid.uuid4()}-attachment.txt"
                files.append((source, text))
                attachments.append({"name": "output", "source": source, "type": "text/plain"})
            times += [_epoch_ms(start), _epoch_ms(start + action.duration)]
            steps.append({
                "name": f"{action.type} '{action.name}': {action.outcome}",
                "status": {"succeeded": "passed", "failed": "failed"}.get(action.outcome,
                                                                          "skipped"),
                "statusDetails": {"message": action.message} if action.message else {},
                "start": _epoch_ms(start), "stop": _epoch_ms(start + action.duration),
                "attachments": attachments,
                "parameters": ([{"name": "exit code", "value": str(action.exit_code)}]
                               if action.exit_code is not None else []),
            })
        times = times or [_epoch_ms(now)]
        result_uuid = str(uuid.uuid4())
        files.append((f"{result_uuid}-result.json", {
            "uuid": result_uuid, "name": name, "fullName": f"deploycheck.{name}",
            "historyId": uuid.uuid5(uuid.NAMESPACE_URL, f"deploycheck:{name}").hex,
            "status": status, "statusDetails": {"message": message},
            **({"description": descriptions[name]} if name in descriptions else {}),
            "stage": "finished", "start": min(times), "stop": max(times), "steps": steps,
            "labels": [{"name": "parentSuite", "value": gate.env},
                       {"name": "suite", "value": "deploy gate"},
                       {"name": "subSuite", "value": name.split(" ")[0]},
                       {"name": "severity", "value": "critical"},
                       {"name": "framework", "value": f"pytest-deploycheck {plugin_version}"}],
            # Shown as allure-pytest shows the items' parameters (their repr).
            "parameters": [{"name": "environment", "value": repr(gate.env)},
                           {"name": "verdict", "value": repr(gate.verdict or "")}],
        }))
    return files


def _rollback_status(rollback: RollbackRun) -> tuple[str, str]:
    """The rollback's Allure status, and what happened in a line."""
    triggered = ", ".join(rollback.triggered_by)
    if rollback.vetoed_by:
        return "skipped", f"vetoed by {', '.join(rollback.vetoed_by)}; triggered by {triggered}"
    if rollback.mode == "off":
        return "skipped", f"rollback off (--rollback off); triggered by {triggered}"
    if rollback.mode == "defer":
        return "skipped", f"deferred to the merge; triggered by {triggered}"
    if rollback.mode == "dry-run":
        return "skipped", f"dry run; triggered by {triggered}"
    if not rollback.ran:
        return "failed", (f"rollback failed: the environment has no rollback actions for "
                          f"this; triggered by {triggered}")
    if rollback.succeeded and not rollback.unverified:
        return "passed", f"rolled back; triggered by {triggered}"
    return "failed", f"rollback failed: {rollback.problem}"


def rollback_summary(rollback: RollbackRun) -> list[tuple[str, str]]:
    """The rollback for the report's overview, in short values (it cuts long ones): what
    happened, and each action that ran."""
    _, message = _rollback_status(rollback)
    found = [("rollback", message.split("; triggered by")[0]
              + (" and verified" if rollback.verification and message.startswith("rolled back")
                 else ""))]
    ran = [f"{action.name}: {action.outcome} in {action.duration:.2f}s"
           for action in rollback.actions if action.outcome != "skipped"]
    return found + ([("rollback actions", "; ".join(ran))] if ran else [])


def _rollback_description(gate: EnvGate, message: str) -> str:
    """What a release manager reads first on the rollback's result (Markdown): the verdict,
    the checks that triggered it with their reasons, and each action's outcome and time."""
    rollback = gate.rollback
    assert rollback is not None
    by_id = {record.id: record for record in gate.ordered()}
    lines = [f"**Verdict: {gate.verdict or gate.decide()}** ({message})", "",
             "Triggered by:", ""]
    for check in rollback.triggered_by:
        record = by_id.get(check)
        reason = f": {record.message.splitlines()[0]}" if record and record.message else ""
        lines.append(f"- `{check}`{reason}")
    if rollback.actions:
        lines += ["", "Actions:", ""]
        lines += [f"- {action.type} `{action.name}`: {action.outcome} in "
                  f"{action.duration:.2f}s" for action in rollback.actions]
    if rollback.verification:
        lines += ["", "Verified by the post-rollback checks:", ""]
        lines += [f"- `{found['id']}`: {'VERIFIED' if verified(found) else 'NOT VERIFIED'} "
                  f"({found['outcome']})" for found in rollback.verification]
    return "\n".join(lines)


def write_results(folder: Path, files: Iterable[tuple[str, Any]]) -> None:
    """Write ``(name, content)`` into ``folder``: dicts and lists as JSON, atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files:
        if isinstance(content, (dict, list)):
            write_json_atomic(folder / name, content)
        else:
            temporary = folder / f".{name}.tmp"
            temporary.write_text(content, encoding="utf-8")
            temporary.replace(folder / name)
