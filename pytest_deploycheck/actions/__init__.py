"""Rollback and notify actions (SPEC §5): one module per type behind :class:`Action`.

Adding a type is adding a module with ``SCHEMA``, ``DEFAULT_TIMEOUT`` and ``parse`` and naming
it here. The pytest hook ``pytest_deploycheck_rollback`` is not an action of the environments
file: it is called after the actions, by the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    """A notify action and the verdicts it runs for."""

    action: Action
    when: frozenset[str]


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


def parse_rollback(node: YamlList, file: str, where: str, base_dir: Path
                   ) -> tuple[Action, ...]:
    """An environment's ``rollback:`` list, in declaration order."""
    for index, item in enumerate(node):
        if isinstance(item, YamlMap) and "when" in item:
            raise ConfigError("'when' belongs to notify actions; rollback actions run whenever "
                              "a rollback gate fails", file=file, line=item.line_of("when"),
                              key=f"{where}[{index}].when")
    return tuple(_action(item, file, f"{where}[{index}]", base_dir, node.line_of(index))
                 for index, item in enumerate(node))


def parse_notify(node: YamlList, file: str, where: str, base_dir: Path) -> tuple[Notify, ...]:
    """An environment's ``notify:`` list; each entry runs for the verdicts in its ``when``."""
    out = []
    for index, item in enumerate(node):
        item_where = f"{where}[{index}]"
        action = _action(item, file, item_where, base_dir, node.line_of(index))
        when = item.get("when", list(VERDICTS))
        for verdict in when:
            if verdict not in VERDICTS:
                raise ConfigError(f"unknown verdict '{verdict}'{suggest(verdict, VERDICTS)}; "
                                  f"verdicts: {', '.join(VERDICTS)}", file=file,
                                  line=item.line_of("when"), key=f"{item_where}.when")
        out.append(Notify(action, frozenset(when)))
    return tuple(out)

