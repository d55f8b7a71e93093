"""Checklist entries (SPEC §4, kind ``checklist``): one module per kind of entry.

A checklist check does exactly one thing: run a ``command``, require ``env_vars``, look at
``files``, the ``git`` state or the deploy ``window``, ask for a ``manual`` acknowledgement, or
send a ``request`` (run like a health check). Adding a kind of entry is adding a module with
``KEYS`` and ``parse`` (an :class:`~.base.EntryType`) and naming it here.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..inputs.located import At
from ..inputs.yamlfile import YamlMap
from . import command, envvars, files, git, manual, window
from .base import Context, Entry, EntryType, Outcome

__all__ = ["COMMAND_KEYS", "ENTRY_TYPES", "KEYS", "Context", "Entry", "Outcome", "parse_entry"]

ENTRY_TYPES: Mapping[str, EntryType] = {
    "command": command, "env_vars": envvars, "files": files, "git": git, "window": window,
    "manual": manual,
}
# Every key a checklist entry adds to a check (``window`` is also a metric check's key).
KEYS = tuple(dict.fromkeys(key for module in ENTRY_TYPES.values() for key in module.KEYS))
COMMAND_KEYS = command.KEYS
_HTTP_ONLY = ("save", "allow_write", "retry")


def parse_entry(node: YamlMap, at: At) -> Entry | None:
    """The entry of checklist check ``node``, or None when it is a request (run as HTTP)."""
    present = [key for key in ENTRY_TYPES if key in node]
    http = [key for key in ("request", "steps") if key in node]
    if len(present) + len(http) > 1:
        both = [*present, *http]
        raise at.error(f"a {node['kind']} check does one thing, but this one has {both[0]!r} and "
                     f"{both[1]!r}; split it into two checks", node, both[1])
    if not present and not http:
        raise at.error(f"a checklist check needs one of: {', '.join(ENTRY_TYPES)}, request or "
                     f"steps", node, None)
    if http:
        return None
    kind = present[0]
    allowed = set(command.KEYS) | {"expect"} if kind == "command" else {kind}
    for key in (*KEYS, "expect", *_HTTP_ONLY):
        if key in node and key not in allowed:
            raise at.error(f"'{key}' does not apply to a '{kind}' checklist check", node, key)
    if kind == "window" and node["window"] is not True:
        raise at.error(f"window: {node['window']!r}: a checklist check takes 'window: true' (the "
                     f"environment's windows:)", node, "window")
    return ENTRY_TYPES[kind].parse(node, at)
