"""``python -m pytest_deploycheck merge REPORTS...``: one gate from the reports of its shards.

A gate split over CI shards (a matrix, GitLab's ``parallel:``, one runner per region) runs each
shard with ``--rollback defer``: it writes its gate report, and runs no rollback and notifies
nobody. This command reads the shards' reports, decides one verdict per environment from every
check of every shard, runs the environment's rollback actions (at most once) and notify actions,
and writes the merged gate report and audit lines, as one run would have.

A shard whose report is missing (``--shards N`` says how many there are), unreadable, or that
never decided (its report says it was not started) leaves its environments ``blocked``: a
missing shard is never a pass. Post-rollback checks are not run here: run ``pytest
-m postrollback`` after a rollback to verify it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..deployrun import DeployRun
from ..errors import DeploycheckError
from ..gate import OK_VERDICTS, CheckRecord, Gate
from ..report.terminal import gate_lines
from ..runtime.durable import write_json_atomic
from ..settings import DECLARATIONS, option_dest, resolve


class _Options:
    """The merge's options where the plugin's settings read pytest's (a config-like object)."""

    def __init__(self, given: Mapping[str, Any]) -> None:
        self.given = given

    def getoption(self, name: str) -> Any:
        return self.given.get(name)

    def getini(self, name: str) -> Any:
        return None


def _documents(report: Any) -> Iterator[dict[str, Any]]:
    objects = report.get("environments", [report]) if isinstance(report, dict) else []
    for one in objects:
        if isinstance(one, dict) and isinstance(one.get("env"), str):
            yield one


def _record(check: Mapping[str, Any], env: str, order: int) -> CheckRecord:
    return CheckRecord(
        nodeid=str(check.get("nodeid", "")), id=str(check["id"]), suite=str(check["suite"]),
        name=str(check["name"]), kind=str(check["kind"]), env=env,
        outcome=str(check["outcome"]), on_fail=str(check["on_fail"]),
        duration=float(check.get("duration", 0.0)), message=str(check.get("message", "")),
        phase=str(check.get("phase", "postdeploy")), file=str(check.get("file", "")),
        line=int(check.get("line", 0)), services=list(check.get("services", [])),
        acknowledged=check.get("acknowledged"), unneeded=str(check.get("unneeded", "")),
        value=check.get("value"), baseline=check.get("baseline"), order=order)


def merge(paths: list[Path], *, only: str | None, shards: int | None,
          run: DeployRun) -> tuple[Gate, dict[str, str]]:
    """The merged gate of the shards' reports at ``paths`` (its rollback and notify actions
    run), and its verdicts."""
    settings = run.settings
    gate = Gate(mode=settings.rollback.value, environment=run.environment,
                redactor=run.redactor, state_dir=settings.state_dir.value,
                audit_log=settings.audit_log.value, facts=run.deploy_facts)
    problems: list[str] = []
    documents: list[tuple[Path, dict[str, Any]]] = []
    for path in paths:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"shard {path}: cannot read its report: {exc}")
            continue
        found = list(_documents(report))
        if not found:
            problems.append(f"shard {path}: not a gate report")
        documents += [(path, one) for one in found]
    if shards is not None and len(paths) < shards:
        problems.append(f"{shards - len(paths)} of {shards} shards sent no report")
    names = list(dict.fromkeys(one["env"] for _, one in documents))
    if only is not None:
        names = [only]
    order = 0
    for path, document in documents:
        env = document["env"]
        if env not in names:
            continue
        merged = gate.env(env)
        merged.errors += [f"shard {path}: {error}" for error in document.get("errors") or []]
        merged.problems += [f"shard {path}: {p}" for p in document.get("problems") or []]
        if document.get("verdict") in ("blocked",) and not document.get("checks"):
            merged.errors.append(f"shard {path}: did not decide ({document.get('verdict')})")
        for check in document.get("checks") or []:
            try:
                gate.record(_record(check, env, order))
            except (KeyError, TypeError, ValueError) as exc:
                merged.errors.append(f"shard {path}: a check it reported is unreadable: {exc}")
            order += 1
    for name in names:
        env_gate = gate.env(name)
        env_gate.errors += problems
        if not env_gate.records and not env_gate.errors:
            env_gate.errors.append("no shard reported this environment")
    return gate, gate.finish()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_deploycheck merge",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="the shards' gate reports")
    parser.add_argument("--env", help="merge this environment only")
    parser.add_argument("--shards", type=int, help="how many shards there are (a missing "
                                                   "report is then an error)")
    parser.add_argument("--gate-report", type=Path, help="write the merged gate report here")
    parser.add_argument("--audit-log", type=Path, help="append the gate's decisions here")
    parser.add_argument("--environments", type=Path, help="the environments file (default: "
                                                          "environments.yaml)")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--rollback", default="auto", choices=("auto", "dry-run", "off"))
    args = parser.parse_args(argv)
    given = {option_dest(d): getattr(args, d.name, None) for d in DECLARATIONS
             if d.name in ("gate_report", "audit_log", "environments", "rollback")}
    given[option_dest(next(d for d in DECLARATIONS if d.name == "env"))] = args.env
    cwd = Path.cwd()
    try:
        settings = resolve(_Options(given), cwd, cwd)
    except DeploycheckError as exc:
        print(f"merge: {exc}", file=sys.stderr)
        return 4
    if args.state_dir is not None:
        from dataclasses import replace

        from ..settings import Setting

        settings = replace(settings, state_dir=Setting(args.state_dir.resolve(), "--state-dir"))
    run = DeployRun(settings, cwd)
    try:
        gate, verdicts = merge(list(args.reports), only=args.env, shards=args.shards, run=run)
        report = gate.report()
        if settings.gate_report.value is not None:
            write_json_atomic(settings.gate_report.value, report)
        for line, _ in gate_lines(gate.envs, []):
            print(run.redactor.redact(line))
        for problem in gate.audit_errors + gate.problems:
            print(f"  ERROR {run.redactor.redact(problem)}")
    finally:
        run.close()
    return 0 if verdicts and all(v in OK_VERDICTS for v in verdicts.values()) else 1
