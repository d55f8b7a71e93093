"""The check type ``checklist``: a checklist check that is one entry (``checklist/``).

Running it builds the entry's context, runs it and keeps what it found.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import checklist
from ..checklist import Context, Entry, Outcome
from ..inputs.yamlfile import YamlMap
from ..secrets import Redactor
from .base import (
    Attachment,
    Check,
    CheckInstance,
    CheckResult,
    Evidence,
    ParseContext,
    RunContext,
    Templates,
    check_names,
)

if TYPE_CHECKING:
    from ..environments import Environment

# Checklist entries that run something: anything but reading files, variables, git or the clock.
_ACTING_ENTRIES = frozenset({"command"})


@dataclass(frozen=True)
class ChecklistSpec:
    """A checklist check that is not a request: one entry (``command``, ``files``, ...)."""

    entry: Entry
    type: str = "checklist"

    @property
    def read_only(self) -> bool:
        """Unless it runs a command."""
        return self.entry.key not in _ACTING_ENTRIES

    waits = False

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(self.entry.names())

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        at = (check.line_of(self.entry.key), f"{check.where}.{self.entry.key}")
        check_names(dict.fromkeys(self.entry.names(), at), known, env, check.file)

    def services(self) -> list[str]:
        return []

    def companion(self, name: str) -> None:
        return None

    def calls(self) -> list[str]:
        return []

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        """What the entry found, and a command's output."""
        if not isinstance(result, ChecklistResult):
            return []
        found = result.found
        text = "\n".join([f"{result.entry}: {found.status}" + (f" ({found.reason})"
                                                              if found.reason else "")]
                         + found.lines
                         + ([found.data["output"]] if found.data.get("output") else []))
        return [Attachment("checklist output", redactor.redact(text))]


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
    def __init__(self, context: RunContext) -> None:
        self.context = context  # read at each check: own_outputs is set after the runners

    def run(self, instance: CheckInstance) -> ChecklistResult:
        check = instance.check
        spec = check.spec
        assert isinstance(spec, ChecklistSpec)
        now = dt.datetime.now(dt.UTC)
        ids = ack_ids(instance)
        run = self.context
        context = Context(
            env=instance.env, scope=instance.scope(),
            timeout=check.timeout if check.timeout is not None else instance.env.timeout,
            now=now, deploy_time=run.deploy_time or now, acks=run.acks, ids=ids,
            rootdir=run.rootdir, environ=run.environ, redactor=run.redactor,
            own_outputs=run.own_outputs)
        started = time.monotonic()
        found = spec.entry.run(context)
        return ChecklistResult(spec.entry.key, found, time.monotonic() - started, ids)


class _ChecklistType:
    """``kind: checklist`` checks that are one entry (a request is run as an http check), and
    checks of other kinds that run a ``command``."""

    name = "checklist"
    templates = Templates(
        values=("expect/stdout", "expect/stderr", "command", "command/[]", "cwd", "env/*",
                "files/[]", "files/[]/path", "git/path", "git/branch", "git/tag",
                "git/up_to_date", "manual"),
        program_text=("command", "command/[]"))
    keys = frozenset((*checklist.KEYS, "expect"))

    def keys_for(self, kind: str) -> frozenset[str]:
        # A command is evidence for any kind of check (`kubectl rollout status` after a
        # deploy is a health check); the other entries are pre-deploy checklist items.
        if kind == "checklist":
            return frozenset(checklist.KEYS)
        return frozenset(checklist.COMMAND_KEYS) if kind in ("health", "smoke") else frozenset()

    def parse(self, node: YamlMap, at: ParseContext) -> ChecklistSpec | None:
        if node["kind"] != "checklist" and "command" not in node:
            return None
        entry = checklist.parse_entry(node, at)
        return ChecklistSpec(entry) if entry is not None else None

    def runner(self, context: RunContext) -> ChecklistRunner:
        return ChecklistRunner(context)


TYPE = _ChecklistType()
