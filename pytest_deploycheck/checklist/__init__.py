"""Checklist entries (SPEC §4, kind ``checklist``): one module per kind of entry.

A checklist check does exactly one thing: run a ``command``, require ``env_vars``, look at
``files``, the ``git`` state or the deploy ``window``, ask for a ``manual`` acknowledgement, or
send a ``request`` (run like a health check). Adding a kind of entry is adding a module with
``KEYS`` and ``parse`` and naming it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..inputs.yamlfile import YamlMap, error_at
from . import command, envvars, files, git, manual, window
from .base import Context, Entry, Outcome

__all__ = ["ENTRY_TYPES", "KEYS", "Context", "Entry", "Outcome", "parse_entry"]

ENTRY_TYPES: Mapping[str, Callable[[YamlMap, str], Entry]] = {
    "command": command.parse, "env_vars": envvars.parse, "files": files.parse, "git": git.parse,
    "window": window.parse, "manual": manual.parse,
}
# Every key a checklist entry adds to a check (``window`` is also a metric check's key).
KEYS = tuple(dict.fromkeys([*command.KEYS, *envvars.KEYS, *files.KEYS, *git.KEYS,
                            *window.KEYS, *manual.KEYS]))
_HTTP_ONLY = ("save", "allow_write", "retry", "service")


def parse_entry(node: YamlMap, where: str) -> Entry | None:
    """The entry of checklist check ``node``, or None when it is a request (run as HTTP)."""
    present = [key for key in ENTRY_TYPES if key in node]
    http = [key for key in ("request", "steps") if key in node]
    if len(present) + len(http) > 1:
        both = [*present, *http]
        raise error_at(f"a checklist check does one thing, but this one has {both[0]!r} and "
                     f"{both[1]!r}; split it into two checks", node, both[1], where)
    if not present and not http:
        raise error_at(f"a checklist check needs one of: {', '.join(ENTRY_TYPES)}, request or "
                     f"steps", node, None, where)
    if http:
        return None
    kind = present[0]
    allowed = set(command.KEYS) | {"expect"} if kind == "command" else {kind}
    for key in (*KEYS, "expect", *_HTTP_ONLY):
        if key in node and key not in allowed:
            raise error_at(f"'{key}' does not apply to a '{kind}' checklist check", node, key,
                         where)
    if kind == "window" and node["window"] is not True:
        raise error_at(f"window: {node['window']!r}: a checklist check takes 'window: true' (the "
                     f"environment's windows:)", node, "window", where)
    return ENTRY_TYPES[kind](node, where)
