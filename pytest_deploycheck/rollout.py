"""Staged rollouts (SPEC §10): an environment's ``rollout.stages``, each an action (set the
flag to 5%), a wait, and the post-deploy checks of that stage, run as one item per stage, in
order; a failing stage fails its item, which rolls back (the gate's rollback, once)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .actions import ActionContext, ActionResult
from .checks.base import Check, CheckInstance, CheckResult
from .environments import Stage
from .units import format_duration


@dataclass
class StageResult:
    """How a stage went: its action, then each of its checks."""

    outcome: str  # passed | failed
    reason: str
    action: ActionResult
    checks: list[tuple[str, CheckResult]]
    duration: float

    def lines(self) -> list[str]:
        """The failure text (or the report) of the stage."""
        out = [f"  action {self.action.type} '{self.action.name}': {self.action.outcome}"
               + (f" ({self.action.message})" if self.action.message else "")]
        for name, result in self.checks:
            out.append(f"  check {name}: {result.outcome}"
                       + (f" ({result.reason})" if result.reason else ""))
        return out


def stage_checks(stage: Stage, checks: Sequence[Check]) -> list[Check]:
    """The post-deploy checks a stage runs: those with any of its markers (the kind, the
    phase or a ``marks`` entry)."""
    wanted = set(stage.markers)
    return [check for check in checks if check.phase == "postdeploy"
            and wanted & {check.kind, check.phase, *check.marks}]


def run_stage(stage: Stage, context: ActionContext, instances: Sequence[CheckInstance],
              run_check: Callable[[CheckInstance], CheckResult],
              sleep: Callable[[float], None] = time.sleep) -> StageResult:
    """Run ``stage``: its action; when that succeeded, its wait, then each of ``instances``
    (its checks in the environment). It fails on a failed action and on any check that did
    not pass (an inconclusive one too: a stage goes on only on evidence)."""
    started = time.monotonic()
    if stage.markers and not instances:
        # A typo in markers would let the rollout go on without evidence: nothing moves.
        skipped = ActionResult(stage.action.name, stage.action.type, "skipped", "not run")
        return StageResult("failed", f"stage '{stage.name}': its markers "
                           f"({', '.join(stage.markers)}) select no post-deploy check in "
                           f"environment '{context.env}'; its action did not run", skipped, [],
                           0.0)
    try:
        action = stage.action.run(context)
    except Exception as exc:  # the user's own code: the stage fails, the run goes on
        action = ActionResult(stage.action.name, stage.action.type, "failed",
                              context.redactor.redact(f"{exc.__class__.__name__}: {exc}"))
    if action.outcome != "succeeded":
        return StageResult("failed", f"stage '{stage.name}': its action failed: "
                           f"{action.message or action.outcome}", action, [],
                           time.monotonic() - started)
    if stage.wait:
        sleep(stage.wait)
    checks = [(instance.name, run_check(instance)) for instance in instances]
    bad = [(name, result) for name, result in checks if result.outcome not in ("passed",
                                                                               "warned")]
    reason = ""
    if bad:
        name, result = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        reason = f"stage '{stage.name}': {name}: {result.outcome}: {result.reason}{more}"
    waited = f" after {format_duration(stage.wait)}" if stage.wait else ""
    return StageResult("failed" if bad else "passed", reason or
                       f"stage '{stage.name}': {len(checks)} checks passed{waited}", action,
                       checks, time.monotonic() - started)
