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
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..deployrun import DeployRun
from ..errors import DeploycheckError
from ..gate import OK_VERDICTS, CheckRecord, Gate, RollbackRun
from ..report.terminal import gate_lines
from ..runtime.durable import write_json_atomic
from ..settings import DECLARATIONS, option_dest, resolve
from ..units import utc_iso


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
    for one in objects if isinstance(objects, list) else []:
        if isinstance(one, dict) and isinstance(one.get("env"), str):
            yield one


_OUTCOMES = ("passed", "failed", "skipped", "inconclusive", "warned")
# What a shard that ran with --rollback defer may say; anything else is its own decision.
_SHARD_VERDICTS = frozenset({*OK_VERDICTS, "rollback_deferred", "blocked", "inconclusive"})


def _record(check: Any, env: str, order: int) -> CheckRecord:
    """A check of a shard's report; raises ``ValueError`` naming what is wrong with it."""
    if not isinstance(check, dict):
        raise ValueError(f"a check is not an object: {json.dumps(check)[:80]}")
    try:
        record = CheckRecord(
            nodeid=str(check.get("nodeid", "")), id=str(check["id"]),
            suite=str(check["suite"]), name=str(check["name"]), kind=str(check["kind"]),
            env=env, outcome=str(check["outcome"]), on_fail=str(check["on_fail"]),
            duration=float(check.get("duration", 0.0)), message=str(check.get("message", "")),
            phase=str(check.get("phase", "postdeploy")), file=str(check.get("file", "")),
            line=int(check.get("line", 0)), services=[str(one) for one in
                                                      check.get("services") or []],
            acknowledged=check.get("acknowledged"), unneeded=str(check.get("unneeded", "")),
            value=check.get("value"), baseline=check.get("baseline"), order=order,
            observation=check["observation"] if isinstance(check.get("observation"), dict)
            else None)
    except KeyError as exc:
        raise ValueError(f"a check without {exc}") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"a check with a bad value: {exc}") from None
    if record.outcome not in _OUTCOMES:
        raise ValueError(f"check {record.id}: outcome {record.outcome!r} is not one of "
                         f"{', '.join(_OUTCOMES)}")
    return record


def merge(paths: list[Path], *, only: str | None, shards: int | None,
          run: DeployRun) -> tuple[Gate, dict[str, str], list[str]]:
    """The merged gate of the shards' reports at ``paths`` (its rollback and notify actions
    run), its verdicts, and the problems of the shards' reports."""
    settings = run.settings
    gate = Gate(mode=settings.rollback.value, environment=run.environment,
                redactor=run.redactor, state_dir=settings.state_dir.value,
                audit_log=settings.audit_log.value, facts=run.deploy_facts)
    problems: list[str] = []
    documents: list[tuple[Path, dict[str, Any]]] = []
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            text = path.read_text()
            report = json.loads(text)
        except (OSError, ValueError) as exc:
            problems.append(f"shard {path}: cannot read its report: {exc}")
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        if path.resolve() in seen.values() or digest in seen:
            problems.append(f"shard {path}: the same report as {seen.get(digest, path)}, "
                            f"given twice")
            continue
        seen[digest] = path.resolve()
        found = list(_documents(report))
        if not found:
            problems.append(f"shard {path}: not a gate report")
        documents += [(path, one) for one in found]
    names = list(dict.fromkeys(one["env"] for _, one in documents))
    if only is not None:
        names = [only]
    deploys = sorted({str((one.get("deploy") or {}).get("id") or "") for _, one in documents
                      if one["env"] in names} - {""})
    if len(deploys) > 1:
        problems.append(f"the shards gated different deploys ({', '.join(deploys)})")
    order = 0
    reported: dict[str, int] = {}
    for path, document in documents:
        env = document["env"]
        if env not in names:
            continue
        reported[env] = reported.get(env, 0) + 1
        merged = gate.env(env)
        merged.errors += [f"shard {path}: {error}" for error in _list(document.get("errors"))]
        merged.problems += [f"shard {path}: {p}" for p in _list(document.get("problems"))]
        verdict = document.get("verdict")
        raw = document.get("rollback")
        rollback: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if rollback.get("actions") or verdict not in _SHARD_VERDICTS:
            # It decided for itself (no --rollback defer): what it ran must not run again.
            merged.errors.append(f"shard {path}: {verdict}, decided by the shard itself (run "
                                 f"shards with --rollback defer); the merge rolls back nothing "
                                 f"for {env}")
            merged.rollback = RollbackRun("off", [])
        elif verdict not in OK_VERDICTS and verdict != "rollback_deferred" and \
                not document.get("checks"):
            merged.errors.append(f"shard {path}: {verdict} with no check")
        checks = document.get("checks")
        for check in checks if isinstance(checks, list) else [checks]:
            try:
                gate.record(_record(check, env, order))
            except ValueError as exc:
                merged.errors.append(f"shard {path}: {exc}")
            order += 1
    done = _earlier_rollbacks(settings.state_dir.value)
    deploy = deploys[0] if len(deploys) == 1 else ""
    for name in names:
        env_gate = gate.env(name)
        env_gate.errors += problems
        earlier = done.get(f"{name}::{deploy}") if deploy else None
        if earlier and env_gate.rollback is None:
            # A re-run of the merge job: the rollback ran once already.
            env_gate.errors.append(f"a merge of deploy {deploy} rolled {name} back already "
                                   f"({earlier}); it does not run again")
            env_gate.rollback = RollbackRun("off", [])
        if shards is not None and reported.get(name, 0) < shards:
            env_gate.errors.append(f"{shards - reported.get(name, 0)} of {shards} shards sent "
                                   f"no report of {name}")
        if not env_gate.records and not env_gate.errors:
            env_gate.errors.append("no shard reported this environment")
    verdicts = gate.finish()
    if deploy:
        ran = [name for name in names if (one := gate.env(name).rollback) is not None and one.ran]
        if ran:
            try:
                _remember_rollbacks(settings.state_dir.value, done, ran, deploy)
            except OSError as exc:
                problems.append(f"cannot record the rollback in the state dir: {exc}")
    return gate, verdicts, problems


_ROLLBACKS_FILE = "merged-rollbacks.json"


def _earlier_rollbacks(state_dir: Path) -> dict[str, str]:
    try:
        found = json.loads((state_dir / _ROLLBACKS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _remember_rollbacks(state_dir: Path, done: dict[str, str], envs: list[str],
                        deploy: str) -> None:
    when = utc_iso()
    write_json_atomic(state_dir / _ROLLBACKS_FILE,
                      {**done, **{f"{env}::{deploy}": f"at {when}" for env in envs}})


def _list(value: Any) -> list[str]:
    return [str(one) for one in value] if isinstance(value, list) else \
        ([str(value)] if value else [])


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
        try:
            run.environments_file()
        except DeploycheckError as exc:
            print(f"merge: {run.redactor.redact(str(exc))}", file=sys.stderr)
            return 4
        gate, verdicts, problems = merge(list(args.reports), only=args.env, shards=args.shards,
                                         run=run)
        report = gate.report() if gate.envs else {"verdict": "blocked", "errors": problems or [
            "no shard reported an environment"]}
        if settings.gate_report.value is not None:
            try:
                write_json_atomic(settings.gate_report.value, report)
            except OSError as exc:
                problems.append(f"cannot write the gate report {settings.gate_report.value}: "
                                f"{exc}")
        for line, _ in gate_lines(gate.envs, []):
            print(run.redactor.redact(line))
        if not gate.envs:
            print("merge: blocked: no shard reported an environment")
        for problem in [*problems, *gate.audit_errors, *gate.problems]:
            print(f"  ERROR {run.redactor.redact(problem)}")
    finally:
        run.close()
    ok = verdicts and all(v in OK_VERDICTS for v in verdicts.values()) and not problems
    return 0 if ok else 1
