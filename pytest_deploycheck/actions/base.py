"""What every rollback and notify action implements, and what it is given to run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..deploy import FACTS
from ..inputs.located import At
from ..inputs.templating import segments
from ..inputs.validation import suggest
from ..inputs.yamlfile import YamlMap
from ..secrets import Redactor

# What an action's result keeps of its output: the end, where errors are printed.
OUTPUT_CHARS = 4000


@dataclass(frozen=True)
class ActionContext:
    """Why an action runs: the environment, the failed checks, and (for notify) the verdict."""

    env: str
    failures: Sequence[Mapping[str, Any]]  # the failed checks, redacted, as plain data
    failures_file: Path  # the same as a JSON file, for commands
    redactor: Redactor
    verdict: str | None = None
    run_id: str = ""  # unique to this run: with the action, its webhooks' Idempotency-Key
    vars: Mapping[str, Any] = field(default_factory=dict)  # the environment's vars
    phase: str = ""  # the phases of the run (predeploy, postdeploy, or both joined by +)
    deploy: Mapping[str, Any] = field(default_factory=dict)  # version, commit, actor, id, ...
    # What each check measured, by name (and suite::name): value, baseline, outcome, message.
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def scope(self) -> dict[str, Any]:
        """Template names for webhook requests and commands: the environment's ``vars`` (also
        as ``vars.NAME``), under the names of :data:`SCOPE_NAMES`, which win."""
        return {**self.vars, "vars": dict(self.vars), "env": self.env, "env.name": self.env,
                "verdict": self.verdict or "",
                "failures": [f.get("id") for f in self.failures],
                "failed_count": len(self.failures), "phase": self.phase,
                "deploy": dict(self.deploy), "checks": self.checks}


# The template names every action knows besides the environment's vars.
SCOPE_NAMES = frozenset({"env", "env.name", "verdict", "failures", "failed_count", "phase",
                         "deploy", "checks", "vars"})
# What ``checks[NAME]`` holds of each check.
CHECK_FIELDS = ("value", "baseline", "outcome", "message", "id")


def scope_problem(name: str, vars: Mapping[str, Any]) -> str | None:
    """Why template ``name`` would not render in an action of an environment with ``vars``
    (None: it will), so that a typo is a collection error, never a rollback that fails when
    it is needed."""
    head, *rest = segments(name)
    if head == "deploy":
        fact = ".".join(rest)
        return None if fact in FACTS else (f"the deploy has no fact '{fact}'"
                                           f"{suggest(fact, FACTS)}; facts: {', '.join(FACTS)}")
    if head == "checks":
        if len(rest) == 2 and rest[1] in CHECK_FIELDS:
            return None
        return (f"write checks['check name'].FIELD, FIELD one of {', '.join(CHECK_FIELDS)}"
                + (f"{suggest(rest[-1], CHECK_FIELDS)}" if len(rest) == 2 else ""))
    if head in SCOPE_NAMES and head != "vars":
        return None if not rest or (head, rest) == ("env", ["name"]) else \
            f"'{head}' is a single value, with no '{'.'.join(rest)}'"
    value: Any = {"vars": dict(vars)} if head == "vars" else vars
    walked: list[str] = []
    for part in [head, *rest] if head != "vars" else ["vars", *rest]:
        if not isinstance(value, Mapping):
            return f"'{'.'.join(walked)}' is a single value, with no '{part}'"
        if part not in value:
            where = ".".join(walked) or "the environment's vars"
            known = sorted(value)
            return (f"'{part}' is not defined in {where}{suggest(part, known)}; defined: "
                    f"{', '.join(known) or 'nothing'}")
        value, walked = value[part], [*walked, part]
    return None
# The keys of an action that say when and what for, whatever its type: ``when`` (notify and
# announce: a list of verdicts, or phases and verdicts), ``service`` and ``fallback``
# (rollback). Each list checks that only its own are used.
ROLE_PROPERTIES: Mapping[str, Any] = {
    "when": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"},
                       {"type": "object", "minProperties": 1}]},
    "service": {"type": "string", "minLength": 1},
    "fallback": {"type": "array", "minItems": 1, "items": {"type": "object"}},
}


@dataclass
class ActionResult:
    """How one action went: ``succeeded``, ``failed``, ``dry_run`` or ``skipped``."""

    name: str
    type: str
    outcome: str
    message: str = ""
    exit_code: int | None = None
    duration: float = 0.0
    output: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    started: float | None = None  # Unix time, set by whoever ran it (for report timelines)
    fallback_for: str = ""  # the rollback action whose failure it ran for
    recovered: bool = False  # a failed rollback action whose fallback actions all succeeded

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "outcome": self.outcome,
                "exit_code": self.exit_code, "duration": round(self.duration, 3),
                "output": self.output, "message": self.message,
                **({"fallback_for": self.fallback_for} if self.fallback_for else {}),
                **({"recovered": True} if self.recovered else {})}


class Action(Protocol):
    """One rollback or notify action (``command``, ``webhook``, ``python``)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    def describe(self) -> str:
        """What would run, for ``--rollback dry-run`` and the audit log."""
        ...

    def run(self, context: ActionContext) -> ActionResult: ...


class ActionType(Protocol):
    """A module that provides one type of action."""

    SCHEMA: Mapping[str, Any]
    DEFAULT_TIMEOUT: float

    def parse(self, node: YamlMap, context: At) -> Action: ...


def last_chars(text: str, limit: int = OUTPUT_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]
