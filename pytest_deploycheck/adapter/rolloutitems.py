"""The items of staged rollouts: one per stage of each selected environment's ``rollout``.

They exist only when ``-m`` names ``rollout``: a stage acts on production (it moves traffic), so
it never runs as a side effect of a gate run. Stages run in order; under xdist a stage waits for
the one before it to finish (on whichever worker), through a small file per stage in the state
dir, and after a failed stage the later ones are skipped: the rollout stops where it failed.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ..deployrun import DeployRun
from ..environments import Stage
from ..errors import DeploycheckError
from ..gate import CheckInfo, check_info
from ..runtime.durable import write_json_atomic
from . import xdist
from .keys import RUN_KEY
from .yamlitems import ORDER_KEY, CheckFailed, junit_properties

# Within one process (without xdist): the stage that failed, per environment.
FAILED_KEY = pytest.StashKey[dict[str, str]]()
# How long a stage waits for the one before it, beyond that stage's own wait.
PREVIOUS_STAGE_GRACE = 900.0


def stage_items(session: pytest.Session, config: pytest.Config) -> list[pytest.Item]:
    """The stage items of every selected environment with a rollout, in order; none unless
    ``-m`` names ``rollout``."""
    if "rollout" not in (config.option.markexpr or ""):
        return []
    run: DeployRun = config.stash[RUN_KEY]
    items: list[pytest.Item] = []
    for env_name in run.selected:
        try:
            env = run.environment(env_name)
        except DeploycheckError as exc:
            if session.testsfailed:
                continue  # collecting the suites has reported it, naming file and line
            raise pytest.UsageError(str(exc)) from None
        if not env.rollout:
            continue
        node = RolloutNode.from_parent(session, name=env.file, nodeid=env.file,
                                       path=Path(run.settings.environments.value))
        for index, stage in enumerate(env.rollout):
            item = StageItem.from_parent(node, name=f"rollout::{stage.name}[{env_name}]",
                                         env=env_name, stage=stage, index=index,
                                         stages=env.rollout)
            for marker in ("rollout", "postdeploy"):
                item.add_marker(marker)
            item.user_properties += junit_properties(env_name, "rollout")
            items.append(item)
    return items


class RolloutNode(pytest.Collector):
    """The environments file, as the parent of its stages (made, never collected)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class StageItem(pytest.Item):
    """One stage of one environment's rollout."""

    def __init__(self, *, env: str, stage: Stage, index: int, stages: tuple[Stage, ...],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env, self.stage, self.index, self.stages = env, stage, index, stages
        self.reason = ""

    def runtest(self) -> None:
        run: DeployRun = self.config.stash[RUN_KEY]
        failed = self.config.stash.setdefault(FAILED_KEY, {})
        earlier = failed.get(self.env) or self._wait_for_the_stage_before(run)
        if earlier:
            self._mark(run, "skipped")
            pytest.skip(f"stage '{earlier}' failed: the rollout stopped there")
        try:
            result = run.run_stage(self.env, self.stage)
        except BaseException:
            self._mark(run, "failed")
            raise
        self._mark(run, result.outcome)
        self.reason = result.reason
        if result.outcome != "passed":
            failed[self.env] = self.stage.name
            text = "\n".join([f"rollout stage '{self.stage.name}' failed in environment "
                              f"'{self.env}'", f"  at {self.stage_file()}:{self.stage.line}",
                              "", *result.lines()])
            raise CheckFailed(run.redactor.redact(text), run.redactor.redact(result.reason))

    def stage_file(self) -> str:
        return str(self.parent.name) if self.parent is not None else ""

    # --- across xdist workers ----------------------------------------------------------

    def _folder(self, run: DeployRun) -> Path | None:
        uid = xdist.run_uid(self.config)
        if uid is None:
            return None
        return Path(run.settings.state_dir.value) / ".rollout" / uid / self.env

    def _mark(self, run: DeployRun, outcome: str) -> None:
        folder = self._folder(run)
        if folder is None:
            return
        write_json_atomic(folder / f"{self.index}.json",
                          {"stage": self.stage.name, "outcome": outcome})
        if self.index == len(self.stages) - 1:  # the last stage: the rollout is over
            shutil.rmtree(folder.parent, ignore_errors=True)

    def _wait_for_the_stage_before(self, run: DeployRun) -> str:
        """Under xdist: wait until the stage before this one has ended; the name of the stage
        that failed, if one did (empty: go on)."""
        folder = self._folder(run)
        if folder is None or self.index == 0:
            return ""
        before = folder / f"{self.index - 1}.json"
        deadline = time.monotonic() + self.stages[self.index - 1].wait + PREVIOUS_STAGE_GRACE
        while not before.exists():
            if time.monotonic() > deadline:
                return self.stages[self.index - 1].name
            time.sleep(0.1)
        found = json.loads(before.read_text())
        return "" if found.get("outcome") == "passed" else str(found.get("stage"))

    # --- reports ---------------------------------------------------------------------------

    def report_info(self, call: pytest.CallInfo[None]) -> CheckInfo:
        """The gate's view of the stage: a post-deploy check that rolls back on failure."""
        info = check_info(
            id=f"rollout::{self.stage.name}", item_id=f"rollout::{self.stage.name}[{self.env}]",
            suite="rollout", name=self.stage.name, env=self.env, kind="rollout",
            phase="postdeploy", on_fail="rollback", severity="critical", runbook=None,
            file=self.stage_file(), line=self.stage.line, order=self.stash.get(ORDER_KEY, 0))
        if call.excinfo is not None and isinstance(call.excinfo.value, CheckFailed):
            info["reason"] = str(call.excinfo.value.args[1])
        elif call.when == "call" and self.reason:
            info["note"] = self.reason
        return info

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.stage.line - 1, f"rollout::{self.stage.name}[{self.env}]"
