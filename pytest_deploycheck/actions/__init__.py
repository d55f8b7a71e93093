"""Rollback and notify actions (SPEC §5): one module per type behind :class:`Action`.

Adding a type is adding a module with ``SCHEMA``, ``DEFAULT_TIMEOUT`` and ``parse`` and naming
it here. The pytest hook ``pytest_deploycheck_rollback`` is not an action of the environments
file: it is called after the actions, by the gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..deploy import PHASES
from ..errors import ConfigError
from ..inputs.located import At
from ..inputs.validation import suggest, validate
from ..inputs.yamlfile import YamlList, YamlMap
from . import command, python, webhook
from .base import Action, ActionContext, ActionResult, ActionType

__all__ = [
    "ACTION_TYPES",
    "VERDICTS",
    "Action",
    "ActionContext",
    "ActionResult",
    "Notify",
    "RollbackStep",
    "parse_action",
    "parse_notify",
    "parse_rollback",
]

ACTION_TYPES: Mapping[str, ActionType] = {
    "command": command, "webhook": webhook, "python": python,
}
VERDICTS = ("passed", "passed_with_warnings", "inconclusive", "blocked", "rolled_back",
            "rollback_failed", "rollback_skipped", "failed")



@dataclass(frozen=True)
class Notify:
    """A notify (or announce) action and when it runs: for these verdicts, after a run of any
    of these phases (None: any phase)."""

    action: Action
    when: frozenset[str]
    phases: frozenset[str] | None = None

    def wanted(self, verdict: str | None, phases: Iterable[str]) -> bool:
        """Whether it runs for ``verdict`` (None: an announcement, which has none) after a run
        of ``phases``."""
        return (verdict is None or verdict in self.when) and (
            self.phases is None or not self.phases.isdisjoint(phases))


def parse_action(node: object, file: str, where: str, base_dir: Path, line: int) -> Action:
    """One action (a rollout stage's), at ``where``."""
    return _action(node, file, where, base_dir, line)


def _action(node: object, file: str, where: str, base_dir: Path, line: int) -> Action:
    if not isinstance(node, YamlMap):
        raise ConfigError("an action is a mapping with one of: " + ", ".join(ACTION_TYPES),
                          file=file, line=line, key=where)
    types = [key for key in ACTION_TYPES if key in node]
    if len(types) != 1:
        unknown = [key for key in node if key not in ("name", "timeout", "when", "cwd", "env")]
        hint = suggest(unknown[0], ACTION_TYPES) if unknown and not types else ""
        found = f"'{unknown[0]}'{hint}" if unknown and not types else \
            " and ".join(f"'{t}'" for t in types) or "none"
        raise ConfigError(f"an action needs exactly one of {', '.join(ACTION_TYPES)}; found "
                          f"{found}", file=file, line=node.line, key=where)
    module = ACTION_TYPES[types[0]]
    validate(node, module.SCHEMA, file, where)
    return module.parse(node, At(where, base_dir))


@dataclass(frozen=True)
class RollbackStep:
    """A rollback action, the service it rolls back (None: the whole environment), and what
    runs when it fails (``fallback``)."""

    action: Action
    service: str | None = None
    fallback: tuple[RollbackStep, ...] = ()


def parse_rollback(node: YamlList, file: str, where: str, base_dir: Path,
                   services: Iterable[str] = ()) -> tuple[RollbackStep, ...]:
    """An environment's ``rollback:`` list, in declaration order; each ``service:`` must be
    one of ``services`` (the environment's)."""
    known = tuple(services)
    steps = []
    for index, item in enumerate(node):
        item_where = f"{where}[{index}]"
        if isinstance(item, YamlMap) and "when" in item:
            raise ConfigError("'when' belongs to notify actions; rollback actions run whenever "
                              "a rollback gate fails", file=file, line=item.line_of("when"),
                              key=f"{item_where}.when")
        action = _action(item, file, item_where, base_dir, node.line_of(index))
        service = item.get("service")
        if service is not None and service not in known:
            raise ConfigError(f"unknown service '{service}'{suggest(service, known)}; the "
                              f"environment's services: {', '.join(known) or 'none'}",
                              file=file, line=item.line_of("service"), key=f"{item_where}.service")
        fallback = parse_rollback(item["fallback"], file, f"{item_where}.fallback", base_dir,
                                  known) if "fallback" in item else ()
        for inner, step in enumerate(fallback):
            if step.fallback:
                raise ConfigError("a fallback action has no fallback of its own: list what "
                                  "else to try after it, in the same fallback list", file=file,
                                  line=item["fallback"][inner].line_of("fallback"),
                                  key=f"{item_where}.fallback[{inner}].fallback")
            if step.service is not None:
                raise ConfigError("a fallback runs for the action it belongs to; 'service' goes "
                                  "on that action", file=file,
                                  line=item["fallback"][inner].line_of("service"),
                                  key=f"{item_where}.fallback[{inner}].service")
        steps.append(RollbackStep(action, service, fallback))
    return tuple(steps)


def _names(value: object, known: Sequence[str], what: str, node: YamlMap, key: str,
           where: str) -> frozenset[str]:
    """One name or a list of names, each one of ``known``."""
    names = value if isinstance(value, list) else [value]
    if not names:
        raise ConfigError(f"an empty list of {what}s never matches: leave '{key}' out for "
                          f"every {what}", file=node.file, line=node.line_of(key),
                          key=f"{where}.{key}")
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown {what} '{name}'{suggest(str(name), known)}; {what}s: "
                              f"{', '.join(known)}", file=node.file, line=node.line_of(key),
                              key=f"{where}.{key}")
    return frozenset(str(name) for name in names)


def _when(item: YamlMap, where: str, *, verdicts: bool) -> tuple[frozenset[str],
                                                                 frozenset[str] | None]:
    """An action's ``when``: a list of verdicts (the first form), or ``{phase: ...,
    verdict: ...}``; announcements take only ``phase``."""
    when = item.get("when")
    if when is None:
        return frozenset(VERDICTS), None
    if not isinstance(when, YamlMap):
        if not verdicts:
            raise ConfigError("an announcement runs when a phase starts: when: {phase: [...]}",
                              file=item.file, line=item.line_of("when"), key=f"{where}.when")
        return _names(when, VERDICTS, "verdict", item, "when", where), None
    for key in when:
        if key not in ("phase", "verdict") or (key == "verdict" and not verdicts):
            allowed = ("phase", "verdict") if verdicts else ("phase",)
            raise ConfigError(f"unknown key '{key}'{suggest(key, allowed)}; when takes "
                              f"{' and '.join(allowed)}", file=item.file,
                              line=when.line_of(key), key=f"{where}.when.{key}")
    inner = f"{where}.when"
    found = _names(when["verdict"], VERDICTS, "verdict", when, "verdict", inner) \
        if "verdict" in when else frozenset(VERDICTS)
    phases = _names(when["phase"], PHASES, "phase", when, "phase", inner) \
        if "phase" in when else None
    return found, phases


def parse_notify(node: YamlList, file: str, where: str, base_dir: Path, *,
                 announce: bool = False) -> tuple[Notify, ...]:
    """An environment's ``notify:`` list (each entry runs at the end for the verdicts and
    phases of its ``when``), or with ``announce`` its ``announce:`` list (each runs when a
    phase of its ``when`` starts)."""
    out = []
    for index, item in enumerate(node):
        item_where = f"{where}[{index}]"
        action = _action(item, file, item_where, base_dir, node.line_of(index))
        for key in ("service", "fallback"):
            if key in item:
                raise ConfigError(f"'{key}' belongs to rollback actions", file=file,
                                  line=item.line_of(key), key=f"{item_where}.{key}")
        verdicts, phases = _when(item, item_where, verdicts=not announce)
        out.append(Notify(action, verdicts, phases))
    return tuple(out)

