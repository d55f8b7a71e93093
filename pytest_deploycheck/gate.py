"""Gate decisions (SPEC §5): each environment's verdict from its checks, and its rollback, once.

Plain Python fed with one :class:`CheckRecord` per finished item. The pytest side (the
controller's gate plugin, ``adapter/gateplugin.py``) builds the records from the reports it
receives (each carrying a :class:`CheckInfo`),
so every decision is made in one process, also under xdist, however many checks failed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from .actions import Action, ActionContext, ActionResult, RollbackStep
from .deploy import PHASES, phase_label
from .environments import Environment
from .errors import DeploycheckError
from .runtime.durable import append_json_line, write_json_atomic
from .secrets import Redactor
from .units import utc_iso

OK_VERDICTS = frozenset({"passed", "passed_with_warnings"})
# Best to worst: what one word says of several environments' verdicts (its worst).
VERDICT_ORDER = ("passed", "passed_with_warnings", "inconclusive", "blocked", "rolled_back",
                 "rollback_deferred", "rollback_skipped", "failed", "rollback_failed")


def overall_verdict(verdicts: Iterable[str]) -> str:
    """The worst of ``verdicts`` (an unknown one counts as the worst)."""
    rank = {name: index for index, name in enumerate(VERDICT_ORDER)}
    return max(verdicts, key=lambda v: rank.get(v, len(rank)), default="inconclusive")
# How bad an item's outcome is, to keep the worst of its setup, call and teardown reports.
_RANK = {"passed": 0, "skipped": 1, "warned": 2, "inconclusive": 3, "failed": 4}


class CheckInfo(TypedDict):
    """What an item's reports carry of its check (``report.deploycheck``): plain data, so that
    it crosses from xdist workers to the controller with the report. The setup report carries
    all of it; later ones only what their phase says beyond a quiet pass (:func:`outcome_part`).
    """

    id: str  # suite::check
    item_id: str  # suite::check[env-params]
    suite: str
    name: str
    env: str
    kind: str
    phase: str  # predeploy or postdeploy
    services: list[str]  # the services it calls (what a rollback of it rolls back)
    on_fail: str
    severity: str
    runbook: str | None
    file: str
    line: int
    order: int  # the item's place in the collected order
    # How the phase went, beyond pass or fail:
    warning: str  # why an ``on_fail: warn`` check would have failed
    inconclusive: bool
    note: str
    reason: str
    details: dict[str, Any]  # the result's own data (JSON-safe, redacted)
    acknowledged: str | None  # the --ack value that acknowledged it
    unneeded: str  # why its ``if:`` left it out (skipped before anything of it ran)
    guessed: bool  # its kind and on_fail were guessed (its worker died before describing it)


# What a phase says when it found nothing to tell; shared, so read-only.
QUIET_OUTCOME: Mapping[str, Any] = {"warning": "", "inconclusive": False, "note": "",
                                    "reason": "", "details": {}, "acknowledged": None,
                                    "unneeded": "", "guessed": False}


def check_info(*, id: str, item_id: str, suite: str, name: str, env: str, kind: str,
               phase: str, on_fail: str, severity: str, runbook: str | None, file: str,
               line: int, order: int, services: list[str] | None = None,
               guessed: bool = False) -> CheckInfo:
    """A check's description with a quiet outcome (YAML and Python checks alike)."""
    return CheckInfo(id=id, item_id=item_id, suite=suite, name=name, env=env, kind=kind,
                     phase=phase, services=services or [], on_fail=on_fail,
                     severity=severity, runbook=runbook, file=file, line=line,
                     order=order, warning="", inconclusive=False, note="", reason="",
                     details={}, acknowledged=None, unneeded="", guessed=guessed)


def outcome_part(info: Mapping[str, Any]) -> dict[str, Any]:
    """What ``info`` (a :class:`CheckInfo`) says about how a phase went, beyond a quiet pass
    (empty for one)."""
    return {key: info[key] for key, quiet in QUIET_OUTCOME.items() if info[key] != quiet}


@dataclass
class CheckRecord:
    """One finished item as the gate sees it.

    ``outcome`` is ``passed``, ``failed``, ``skipped``, ``inconclusive`` or ``warned`` (a failure
    of an ``on_fail: warn`` check, which passes).
    """

    nodeid: str
    id: str  # suite::check[env-params], unique in a run
    suite: str
    name: str
    kind: str
    env: str
    outcome: str
    on_fail: str
    duration: float
    message: str
    phase: str
    file: str
    line: int
    services: list[str] = field(default_factory=list)  # what it called: what rolls back
    note: str = ""
    acknowledged: str | None = None
    unneeded: str = ""  # skipped by its ``if:``, with this reason
    guessed: bool = False  # its policy was guessed for a crash: it never vetoes a rollback
    value: Any = None  # what it measured (a metric check's value), and its baseline
    baseline: Any = None
    # The item's place in the collected order: checks that ran concurrently finish in any
    # order, but reports list them as collected.
    order: int = 0
    # An observation's measurements taken and planned, breaches, errors and seconds.
    observation: dict[str, Any] | None = None

    @classmethod
    def from_info(cls, nodeid: str, info: CheckInfo, *, outcome: str, message: str,
                  duration: float, crashed: bool = False) -> CheckRecord:
        """The record of a report of the item that ``info`` describes (a crashed worker's
        report keeps no note)."""
        return cls(nodeid=nodeid, id=info["item_id"], suite=info["suite"], name=info["name"],
                   kind=info["kind"], phase=info["phase"], services=list(info["services"]),
                   env=info["env"], outcome=outcome,
                   on_fail=info["on_fail"],
                   duration=duration, message=message, file=info["file"], line=info["line"],
                   note="" if crashed else info["note"], acknowledged=info["acknowledged"],
                   unneeded=info.get("unneeded", "") if outcome == "skipped" else "",
                   guessed=bool(info.get("guessed")),
                   value=info["details"].get("value"),
                   baseline=info["details"].get("baseline"), order=info["order"],
                   observation=info["details"].get("observation"))

    def merge(self, other: CheckRecord) -> CheckRecord:
        """The worse of two reports of one item, keeping what either found out."""
        worse, better = (other, self) if _RANK[other.outcome] > _RANK[self.outcome] \
            else (self, other)
        worse.note = worse.note or better.note
        worse.acknowledged = worse.acknowledged or better.acknowledged
        worse.value = worse.value if worse.value is not None else better.value
        worse.baseline = worse.baseline if worse.baseline is not None else better.baseline
        worse.message = worse.message or better.message
        worse.observation = worse.observation or better.observation
        worse.duration = self.duration + other.duration
        return worse

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "suite": self.suite, "name": self.name, "kind": self.kind,
                "phase": self.phase, "env": self.env, "outcome": self.outcome,
                "on_fail": self.on_fail,
                "duration": round(self.duration, 3), "message": self.message,
                "file": self.file, "line": self.line, "nodeid": self.nodeid,
                "acknowledged": self.acknowledged,
                **({"unneeded": self.unneeded} if self.unneeded else {}),
                **({"services": self.services} if self.services else {}),
                **({"value": self.value} if self.value is not None else {}),
                **({"baseline": self.baseline} if self.baseline is not None else {}),
                **({"observation": self.observation} if self.observation else {})}

    def measured(self) -> dict[str, Any]:
        """What templates see of it as ``checks[NAME]`` (nothing measured reads as empty)."""
        return {"value": "" if self.value is None else self.value,
                "baseline": "" if self.baseline is None else self.baseline,
                "outcome": self.outcome,
                "message": self.message, "id": self.id}


class RollbackInterrupted(BaseException):
    """A second SIGINT or SIGTERM while the rollback runs: stop it now."""


@contextlib.contextmanager
def _signals_held(received: list[str], stop_at: int | None = 2) -> Iterator[None]:
    """Record SIGINT and SIGTERM instead of raising them: a rollback cut in half leaves the
    service neither old nor new, and CI cancelling a job sends one signal. The ``stop_at``-th
    signal raises :class:`RollbackInterrupted` (the person insists); others are only recorded.
    Only the main thread can handle signals; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def hold(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)
        if len(received) == stop_at:
            raise RollbackInterrupted(received[-1])

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def verified(found: Mapping[str, Any]) -> bool:
    """Whether a post-rollback check's outcome counts as verification: it passed, or its
    ``if:`` left it out (a skip for no data is no evidence)."""
    return found["outcome"] in ("passed", "warned") or bool(found.get("unneeded"))


@dataclass
class RollbackRun:
    """What the gate did about failed rollback-gate checks in one environment."""

    mode: str
    triggered_by: list[str]
    actions: list[ActionResult] = field(default_factory=list)
    reaction: float | None = None  # seconds from the triggering report to the first action
    signals: list[str] = field(default_factory=list)  # received while the actions ran
    interrupted: bool = False  # a second signal stopped it
    # Failed post-deploy checks with on_fail: block: the rollback did not run ("a migration
    # failed: do NOT roll back the app").
    vetoed_by: list[str] = field(default_factory=list)
    # The services whose actions ran (None: every action, a failed check named no service).
    services: list[str] | None = None
    # What the post-rollback checks found after the actions succeeded (None: there are none).
    verification: list[dict[str, Any]] | None = None

    @property
    def ran(self) -> list[ActionResult]:
        """The actions that ran (or would have, in a dry run): not those of other services."""
        return [a for a in self.actions if a.outcome != "skipped"]

    @property
    def succeeded(self) -> bool:
        """Whether every action that ran succeeded, or failed and was recovered by its
        fallback actions (which all succeeded)."""
        primary = [a for a in self.ran if not a.fallback_for]
        return bool(primary) and not self.interrupted and all(
            a.outcome == "succeeded" or a.recovered for a in primary)

    @property
    def unverified(self) -> list[dict[str, Any]]:
        """The post-rollback checks that did not pass (or were not left out by their
        ``if:``): what was rolled back to is not known to be healthy."""
        return [found for found in self.verification or () if not verified(found)]

    @property
    def problem(self) -> str:
        """Why the rollback failed, in one line (empty when it did not)."""
        failed = self.failed_action
        if failed is not None:
            return f"{failed.type} '{failed.name}': {failed.message}"
        if self.unverified:
            first = self.unverified[0]
            more = f" (and {len(self.unverified) - 1} more)" if len(self.unverified) > 1 else ""
            return f"rollback not verified: {first['id']}: {first['message']}{more}"
        return "" if self.succeeded else "the environment has no rollback actions for this"

    @property
    def failed_action(self) -> ActionResult | None:
        """The action the rollback stopped at, if one failed."""
        return next((a for a in self.actions if a.outcome in ("failed", "interrupted")
                     and not a.recovered), None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode, "triggered_by": self.triggered_by,
                               "actions": [a.to_json() for a in self.actions]}
        if self.vetoed_by:
            out["vetoed_by"] = self.vetoed_by
        if self.services is not None:
            out["services"] = self.services
        if self.verification is not None:
            out["verification"] = self.verification
        if self.reaction is not None:
            out["reaction_seconds"] = round(self.reaction, 3)
        if self.signals:
            out["signals"], out["interrupted"] = self.signals, self.interrupted
        return out


class Measured(dict[str, dict[str, Any]]):
    """What each check of a run measured, for ``{{ checks[NAME].value }}``: a check that did
    not run in this run (``-m smoke`` and a notify naming a metric check) reads as not run,
    with empty values, so that a message or a rollback command never fails on it."""

    NOT_RUN: Mapping[str, Any] = {"value": "", "baseline": "", "outcome": "not run",
                                  "message": "", "id": ""}

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key, self.NOT_RUN)


@dataclass
class EnvGate:
    """The checks of one environment and what the gate decided for it."""

    env: str
    records: dict[str, CheckRecord] = field(default_factory=dict)
    rollback: RollbackRun | None = None
    notify: list[ActionResult] = field(default_factory=list)
    announce: list[ActionResult] = field(default_factory=list)
    announced: set[str] = field(default_factory=set)  # the phases announced
    verdict: str | None = None
    needs_rollback: bool = False  # a rollback-gate check has failed
    # Why the checks could not all run (a suite that failed to collect): the deploy must not
    # go ahead on a gate that was not evaluated.
    errors: list[str] = field(default_factory=list)
    # What went wrong around the checks that the verdict does not say (a failures file that
    # could not be written where it belongs, a signal during the rollback).
    problems: list[str] = field(default_factory=list)

    def add(self, record: CheckRecord) -> None:
        previous = self.records.get(record.nodeid)
        self.records[record.nodeid] = previous.merge(record) if previous else record

    def ordered(self) -> list[CheckRecord]:
        """The records in collection order, whatever order their checks finished in."""
        return sorted(self.records.values(), key=lambda record: record.order)

    def counts(self) -> dict[str, int]:
        """How many items ended with each outcome."""
        counts = dict.fromkeys(("passed", "failed", "skipped", "inconclusive", "warned"), 0)
        for record in self.records.values():
            counts[record.outcome] += 1
        return counts

    def phases(self) -> list[str]:
        """The phases of the checks that reported, in deploy order."""
        seen = {r.phase for r in self.records.values()}
        return [phase for phase in PHASES if phase in seen]

    def measured(self) -> Measured:
        """``checks[NAME]`` for templates: each check by its name and by suite::name (the
        first item of a parametrized check)."""
        out = Measured()
        for record in self.ordered():
            out.setdefault(record.name, record.measured())
            out.setdefault(f"{record.suite}::{record.name}", record.measured())
        return out

    def rollback_failures(self) -> list[CheckRecord]:
        return [r for r in self.ordered() if r.outcome == "failed" and r.on_fail == "rollback"]

    def decide(self) -> str:
        failed = [r for r in self.records.values() if r.outcome == "failed"]
        if self.rollback is not None:
            if self.rollback.vetoed_by:
                return "blocked"
            if self.rollback.mode == "defer":
                return "rollback_deferred"  # a shard: the merge of the shards decides
            if self.rollback.mode != "auto":
                return "rollback_skipped"
            if not self.rollback.ran:
                return "failed"
            return "rolled_back" if self.rollback.succeeded and not self.rollback.unverified \
                else "rollback_failed"
        if failed or self.errors or self.problems:
            return "blocked"
        needed = [r for r in self.records.values() if not r.unneeded]
        if self.records and not needed:
            return "passed"  # every check was left out by its if: (this deploy needs none)
        outcomes = {r.outcome for r in needed}
        # No check ran, or every one was skipped (a git check outside a repository, a metric
        # under no_data: skip): nothing is known, and a gate must not pass on that.
        if "inconclusive" in outcomes or outcomes <= {"skipped"}:
            return "inconclusive"
        return "passed_with_warnings" if "warned" in outcomes else "passed"

    def to_json(self, started: str, finished: str) -> dict[str, Any]:
        return {"env": self.env, "verdict": self.verdict or self.decide(), "started": started,
                "finished": finished, "phase": phase_label(self.phases()),
                "checks": [r.to_json() for r in self.ordered()],
                "rollback": self.rollback.to_json() if self.rollback else None,
                "notify": [a.to_json() for a in self.notify],
                **({"announce": [a.to_json() for a in self.announce]} if self.announce else {}),
                "errors": self.errors,
                **({"problems": self.problems} if self.problems else {})}


# What the gate calls for the pytest hook ``pytest_deploycheck_rollback``: (env, failures) ->
# None when no plugin implements it, else the hook's result.
RollbackHook = Callable[[str, list[dict[str, Any]]], ActionResult | None]


class Gate:
    """Collects records, rolls back each environment at most once, and decides verdicts."""

    def __init__(self, *, mode: str, environment: Callable[[str], Environment],
                 redactor: Redactor, state_dir: Path, audit_log: Path | None = None,
                 hook: RollbackHook | None = None,
                 facts: Callable[[], dict[str, Any]] | None = None,
                 verify: Callable[[str], list[dict[str, Any]]] | None = None) -> None:
        self.mode = mode
        # Runs an environment's post-rollback checks after its rollback actions succeeded.
        self.verify = verify
        # A run that runs no check (--collect-only, --setup-plan, --setup-only): it announces
        # and notifies nothing.
        self.quiet = False
        # The phases -m selects (none named: every phase), for an environment whose checks
        # never reported (a suite that failed to collect).
        self.selected_phases: list[str] = list(PHASES[:2])
        # The deploy's facts (``deploy.*``), asked when an action needs them (git may be).
        self._facts = facts
        self.environment = environment
        self.redactor = redactor
        self.state_dir = state_dir
        self.audit_log = audit_log
        self.hook = hook
        self.envs: dict[str, EnvGate] = {}
        self.started = utc_iso()
        self.audit_errors: list[str] = []
        # Problems of the run's own files (the failures files), for the terminal and report.
        self.problems: list[str] = []
        # Names this run's failures files and webhooks' Idempotency-Keys: concurrent runs
        # against one environment must not read each other's failures.
        self.run_id = uuid.uuid4().hex
        self._scratch: list[Path] = []  # failures files and fallback folders, removed at finish
        self.signals: list[str] = []  # SIGINT/SIGTERM received while finishing, outside rollbacks

    def env(self, name: str) -> EnvGate:
        return self.envs.setdefault(name, EnvGate(name))

    def record(self, record: CheckRecord) -> bool:
        """Add ``record``; True when it makes its environment need a rollback for the first
        time (the moment ``--rollback-fast`` acts on)."""
        gate = self.env(record.env)
        gate.add(record)
        if gate.rollback is not None or gate.needs_rollback:
            return False
        gate.needs_rollback = record.outcome == "failed" and record.on_fail == "rollback"
        return gate.needs_rollback

    def audit(self, event: str, **fields: Any) -> None:
        """One line per decision and action; a log that cannot be written is reported, and
        never stops the gate."""
        if self.audit_log is None:
            return
        line = {"time": utc_iso(), "event": event, **fields}
        try:
            append_json_line(self.audit_log, self.redactor.redact_data(line))
        except OSError as exc:
            self.audit_errors.append(f"cannot append to the audit log {self.audit_log}: {exc}")

    def roll_back(self, env_name: str, reported_at: float | None = None) -> RollbackRun:
        """Run ``env_name``'s rollback actions once (later calls return the first run)."""
        gate = self.env(env_name)
        if gate.rollback is not None:
            return gate.rollback
        failures = gate.rollback_failures()
        run = gate.rollback = RollbackRun(self.mode, [r.id for r in failures])
        run.vetoed_by = [r.id for r in gate.ordered() if r.outcome == "failed"
                         and r.on_fail == "block" and r.phase == "postdeploy" and not r.guessed]
        if run.vetoed_by:
            self.audit("rollback_decision", env=env_name, mode=self.mode,
                       triggered_by=run.triggered_by, vetoed_by=run.vetoed_by)
            return run
        try:
            environment: Environment | None = self.environment(env_name)
        except DeploycheckError as exc:
            environment, problem = None, str(exc)
        # Per-service actions run for the services the failed checks called; a failed check
        # that names none (a metric of the whole environment) rolls back every service.
        if environment is not None and any(step.service for step in environment.rollback) \
                and all(r.services for r in failures):
            run.services = sorted({service for r in failures for service in r.services})
        self.audit("rollback_decision", env=env_name, mode=self.mode,
                   triggered_by=run.triggered_by,
                   **({"services": run.services} if run.services is not None else {}))
        if self.mode in ("off", "defer"):
            return run
        if environment is None:
            run.actions.append(ActionResult("resolve environment", "config", "failed", problem))
            self.audit("rollback_action", env=env_name, **run.actions[-1].to_json())
            return run
        data = [self.redactor.redact_data(r.to_json()) for r in failures]
        try:
            failures_file = self._failures_file(env_name, "rollback", data)
        except OSError as exc:
            run.actions.append(ActionResult("write failures file", "file", "failed", str(exc)))
            self.audit("rollback_action", env=env_name, **run.actions[-1].to_json())
            return run
        context = self._context(gate, environment, data, failures_file)
        try:
            with _signals_held(run.signals):
                self._run_actions(run, environment, context, data, reported_at)
                self._verify(run, env_name)
        except RollbackInterrupted:  # between two actions: what ran is recorded
            run.interrupted = True
        if run.signals:
            self.audit("rollback_signals", env=env_name, signals=run.signals,
                       interrupted=run.interrupted)
            self.problem(env_name, f"{' then '.join(run.signals)} received during the "
                                    f"rollback; " + ("the second stopped it (interrupted)"
                                                     if run.interrupted
                                                     else "the rollback ran to its end"))
        return run

    def _roll_back_late(self, env_name: str) -> None:
        """After a rollback that started early (--rollback-fast) with only some services'
        actions: run those of the services whose checks failed since, once each."""
        gate = self.env(env_name)
        run = gate.rollback
        if run is None or run.services is None or run.vetoed_by or run.interrupted \
                or self.mode == "off" or not run.ran or run.failed_action is not None:
            return
        failures = gate.rollback_failures()
        everything = not all(r.services for r in failures)
        needed = {service for r in failures for service in r.services}
        try:
            environment = self.environment(env_name)
        except DeploycheckError:
            return
        late = [step for step in environment.rollback if step.service is not None
                and step.service not in run.services and (everything or step.service in needed)]
        if not late:
            return
        run.triggered_by = [r.id for r in failures]
        run.services = sorted({*run.services, *(step.service for step in late if step.service)})
        self.audit("rollback_decision", env=env_name, mode=self.mode,
                   triggered_by=run.triggered_by, services=run.services, late=True)
        data = [self.redactor.redact_data(r.to_json()) for r in failures]
        try:
            failures_file = self._failures_file(env_name, "rollback", data)
        except OSError as exc:
            run.actions.append(ActionResult("write failures file", "file", "failed", str(exc)))
            return
        context = self._context(gate, environment, data, failures_file)
        try:
            with _signals_held(run.signals):
                for step in late:
                    # Its place in the report is where it was skipped.
                    skipped = next((i for i, a in enumerate(run.actions) if a.outcome ==
                                    "skipped" and a.name == step.action.name), None)
                    before = len(run.actions)
                    goes_on = self._run_step(run, step, context)
                    if skipped is not None:
                        ran = run.actions[before:]
                        del run.actions[before:]
                        run.actions[skipped:skipped + 1] = ran
                    if not goes_on:
                        return
                self._verify(run, env_name)
        except RollbackInterrupted:
            run.interrupted = True

    def _run_actions(self, run: RollbackRun, environment: Environment, context: ActionContext,
                     data: list[dict[str, Any]], reported_at: float | None) -> None:
        env_name = context.env
        for step in environment.rollback:
            if reported_at is not None and run.reaction is None:
                run.reaction = time.monotonic() - reported_at
            if step.service is not None and run.services is not None \
                    and step.service not in run.services:
                result = ActionResult(step.action.name, step.action.type, "skipped",
                                      f"no failed check called service '{step.service}'")
                run.actions.append(result)
                self.audit("rollback_action", env=env_name, **result.to_json())
                continue
            if not self._run_step(run, step, context):
                break
        else:
            if self.mode == "auto" and self.hook is not None:
                started = time.time()
                hooked = self.hook(env_name, [dict(d) for d in data])
                if hooked is not None:
                    hooked.started = started
                    run.actions.append(hooked)
                    self.audit("rollback_action", env=env_name, **hooked.to_json())

    def _run_step(self, run: RollbackRun, step: RollbackStep, context: ActionContext) -> bool:
        """Run a rollback action, and its fallback actions when it fails; whether the
        rollback goes on (it stops at an action that failed unrecovered, or was stopped)."""
        result = self._run_one(run, step.action, context)
        if result.outcome == "failed" and step.fallback:
            result.recovered = self._run_fallback(run, step, context)
        return not (result.outcome == "interrupted"
                    or (result.outcome == "failed" and not result.recovered))

    def _verify(self, run: RollbackRun, env_name: str) -> None:
        """After actions that succeeded, run the environment's post-rollback checks."""
        if self.mode == "auto" and run.succeeded and self.verify is not None:
            run.verification = self.verify(env_name) or None
            if run.verification is not None:
                self.audit("rollback_verification", env=env_name, checks=run.verification)

    def _run_one(self, run: RollbackRun, action: Action, context: ActionContext,
                 fallback_for: str = "") -> ActionResult:
        """Run (or, in a dry run, describe) one rollback action, recorded and audited."""
        env_name = context.env
        if self.mode == "dry-run":
            result = ActionResult(action.name, action.type, "dry_run", action.describe(),
                                  fallback_for=fallback_for)
        else:
            self.audit("rollback_action_start", env=env_name, name=action.name,
                       type=action.type, action=action.describe(),
                       **({"fallback_for": fallback_for} if fallback_for else {}))
            started = time.time()
            try:
                result = _run_action(action, context)
            except RollbackInterrupted as exc:
                run.interrupted = True
                result = ActionResult(action.name, action.type, "interrupted",
                                      f"stopped by a second signal ({exc}) during the "
                                      f"rollback", duration=time.time() - started)
            result.started = started
            result.fallback_for = fallback_for
        run.actions.append(result)
        self.audit("rollback_action", env=env_name, **result.to_json())
        return result

    def _run_fallback(self, run: RollbackRun, step: RollbackStep,
                      context: ActionContext) -> bool:
        """Run the fallback actions of ``step``, whose action failed, in order, stopping at
        the first that fails; whether they all succeeded (the failure is recovered)."""
        for fallback in step.fallback:
            result = self._run_one(run, fallback.action, context, step.action.name)
            if result.outcome != "succeeded":
                return False
        return True

    def _failures_file(self, env: str, purpose: str, data: list[dict[str, Any]]) -> Path:
        """Write the failed checks for ``env``'s commands, in the state dir, or, when that
        cannot be written, in a temporary folder (reported): the actions run either way."""
        name = f"{env}.{purpose}-failures.{self.run_id}.json"
        path = self.state_dir / name
        try:
            write_json_atomic(path, data)
        except OSError as exc:
            folder = Path(tempfile.mkdtemp(prefix="deploycheck-"))
            self._scratch.append(folder)
            fallback = folder / name
            write_json_atomic(fallback, data)
            problem = (f"cannot write the failures file {path}: "
                       f"{exc.strerror or exc}; the {purpose} actions read {fallback} instead")
            self.problem(env, problem)
            self.audit("state_error", env=env, message=problem)
            return fallback
        self._scratch.append(path)
        return path

    def problem(self, env: str, problem: str) -> None:
        """Something ``env``'s verdict must account for, told in the terminal and report."""
        self.env(env).problems.append(problem)
        self.problems.append(f"{env}: {problem}")

    def _remove_scratch(self) -> None:
        for path in self._scratch:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._scratch.clear()

    def finish(self) -> dict[str, str]:
        """Roll back every environment that needs it and has not been, decide the verdicts,
        and run the notify actions; returns the verdict of each environment."""
        # Signals while the verdicts are decided and told are recorded, not raised: each
        # rollback holds its own (a second one stops it); notifications are bounded by their
        # timeouts, and the reports must follow.
        with _signals_held(self.signals, stop_at=None):
            for name, gate in self.envs.items():
                if gate.rollback is None and gate.rollback_failures():
                    self.roll_back(name)
                elif gate.rollback is not None:
                    self._roll_back_late(name)
            verdicts = {}
            for name, gate in self.envs.items():
                gate.verdict = gate.decide()
                verdicts[name] = gate.verdict
                counts = {k: n for k, n in gate.counts().items() if n}
                self.audit("verdict", env=name, verdict=gate.verdict, counts=counts)
                self._notify(gate)
        if self.signals:
            self.audit("signals", signals=self.signals)
        # The actions have ended: their failures files only served them.
        self._remove_scratch()
        return verdicts

    def _notify(self, gate: EnvGate) -> None:
        try:
            environment = self.environment(gate.env)
        except DeploycheckError:
            return
        failures = [self.redactor.redact_data(r.to_json()) for r in gate.ordered()
                    if r.outcome == "failed"]
        context = None
        for notify in environment.notify:
            # A shard's verdict is not the gate's: the merge of the shards notifies.
            if self.quiet or self.mode == "defer" or \
                    not notify.wanted(gate.verdict, self._phases(gate)):
                continue
            if context is None:
                path = self.state_dir / f"{gate.env}.notify-failures.{self.run_id}.json"
                # A notification is worth sending without its file.
                with contextlib.suppress(OSError):
                    path = self._failures_file(gate.env, "notify", failures)
                context = self._context(gate, environment, failures, path, gate.verdict)
            started = time.time()
            result = _run_action(notify.action, context)
            result.started = started
            gate.notify.append(result)
            self.audit("notify", env=gate.env, verdict=gate.verdict, **result.to_json())

    def announce(self, env_name: str, phase: str) -> None:
        """Run ``env_name``'s ``announce:`` actions for ``phase``, once per run and phase
        (called as the phase's first check reports); a deferring shard announces nothing (the
        pipeline announces once, before its shards)."""
        if self.quiet or self.mode == "defer":
            return
        try:
            environment = self.environment(env_name)
        except DeploycheckError:
            return  # its checks report the environment's error
        if not environment.announce:
            return  # and the environment's place in the report stays its checks'
        gate = self.env(env_name)
        if phase in gate.announced:
            return
        gate.announced.add(phase)
        context = None
        for announce in environment.announce:
            if not announce.wanted(None, [phase]):
                continue
            if context is None:
                context = self._context(gate, environment, [],
                                        self.state_dir / "announce-has-no-failures.json",
                                        phases=[phase])
            started = time.time()
            result = _run_action(announce.action, context)
            result.started = started
            gate.announce.append(result)
            self.audit("announce", env=env_name, phase=phase, **result.to_json())

    def _phases(self, gate: EnvGate) -> list[str]:
        """The phases ``gate``'s run was about: of its checks that reported, else those -m
        selects."""
        return gate.phases() or self.selected_phases

    def deploy_facts(self) -> dict[str, Any]:
        """``deploy.*`` of templates and the report (none without a run to ask)."""
        return self._facts() if self._facts else {}

    def _context(self, gate: EnvGate, environment: Environment,
                 failures: list[dict[str, Any]], failures_file: Path,
                 verdict: str | None = None, phases: list[str] | None = None
                 ) -> ActionContext:
        """What an action of ``gate``'s environment is told: the failures, the verdict, the
        phases run, the deploy's facts and what each check measured."""
        return ActionContext(gate.env, failures, failures_file, self.redactor, verdict,
                             run_id=self.run_id, vars=environment.vars,
                             phase=phase_label(self._phases(gate) if phases is None else phases),
                             deploy=self.deploy_facts(), checks=gate.measured())

    def report(self) -> dict[str, Any]:
        """The gate report (SPEC §6): one object, or ``{"environments": [...]}`` for several."""
        finished = utc_iso()
        facts = self.deploy_facts()
        objects = [{**gate.to_json(self.started, finished), "deploy": facts}
                   for gate in self.envs.values()]
        document = objects[0] if len(objects) == 1 else {"environments": objects}
        redacted: dict[str, Any] = self.redactor.redact_data(document)
        return redacted


def _run_action(action: Action, context: ActionContext) -> ActionResult:
    """``action.run``, with a fault of the action's own code (a bug, a ``sys.exit`` in a
    user's module) made a failed action: a rollback that raised half-way must read
    ``rollback_failed``, and the actions after it and the reports must still be reached."""
    try:
        return action.run(context)
    except RollbackInterrupted:
        raise
    except (Exception, SystemExit) as exc:
        return ActionResult(action.name, action.type, "failed", context.redactor.redact(
            f"internal error: {exc.__class__.__name__}: {exc}"))


# The verdict of a run that ended before its gate ran (a usage error, say): nothing was
# evaluated, so the deploy must not go ahead on it.
NOT_STARTED_VERDICT = "blocked"


def not_started_report(envs: list[str | None], reason: str) -> dict[str, Any]:
    """The gate report of a run that never got to its checks: written over any older report,
    so that a pipeline reading ``verdict`` never reads a previous run's pass."""
    now = utc_iso()
    objects = [{"env": env, "verdict": NOT_STARTED_VERDICT, "started": now, "finished": now,
                "checks": [], "rollback": None, "notify": [], "errors": [reason]}
               for env in envs or [None]]
    return objects[0] if len(objects) == 1 else {"environments": objects}
