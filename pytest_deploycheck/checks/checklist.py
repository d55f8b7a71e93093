"""Running checklist checks: build the entry's context, run it, keep what it found."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checklist import Context, Outcome
from ..secrets import Redactor
from .suites import CheckInstance


@dataclass
class ChecklistResult:
    """The outcome of one checklist check instance."""

    entry: str
    found: Outcome
    duration: float
    ack_ids: tuple[str, ...]

    @property
    def outcome(self) -> str:
        return self.found.status

    @property
    def reason(self) -> str:
        return self.found.reason

    @property
    def note(self) -> str:
        return self.found.note

    def details(self) -> dict[str, Any]:
        return {"entry": self.entry, "duration": self.duration,
                "acknowledged": self.found.acknowledged, "ack_ids": list(self.ack_ids),
                **self.found.data}

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        lines = [*instance.failure_header(), "", *(self.found.lines or [f"  {self.reason}"])]
        return redactor.redact("\n".join(lines))


def ack_ids(instance: CheckInstance) -> tuple[str, ...]:
    """The names ``--ack`` accepts for an item: ``suite::check``, then its item id with and
    without the suite file (the pytest node id)."""
    check = instance.check
    item = f"{check.suite}::{instance.name}"
    return check.id, item, f"{check.file}::{item}"


class ChecklistRunner:
    def __init__(self, redactor: Redactor, rootdir: Path, environ: Mapping[str, str],
                 deploy_time: dt.datetime | None, acks: frozenset[str]) -> None:
        self.redactor = redactor
        self.rootdir = rootdir
        self.environ = environ
        self.deploy_time = deploy_time
        self.acks = acks

    def run(self, instance: CheckInstance) -> ChecklistResult:
        check = instance.check
        assert check.checklist is not None
        now = dt.datetime.now(dt.UTC)
        ids = ack_ids(instance)
        context = Context(
            env=instance.env, scope=instance.scope(),
            timeout=check.timeout if check.timeout is not None else instance.env.timeout,
            now=now, deploy_time=self.deploy_time or now, acks=self.acks, ids=ids,
            rootdir=self.rootdir, environ=self.environ, redactor=self.redactor)
        started = time.monotonic()
        found = check.checklist.run(context)
        return ChecklistResult(check.checklist.key, found, time.monotonic() - started, ids)
