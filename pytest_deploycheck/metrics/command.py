"""``type: command``: the number a command prints; ``{{ query }}`` in it is the check's query.

In a string command (run by the shell) the query is shell-quoted, so a query with spaces or
quotes reaches the command as one argument; in a list command it replaces the item's text.
The value is the last non-empty line of stdout; a non-zero exit or no number is a query error.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..commands import COMMAND_PROPERTIES, MAX_OUTPUT, command_of, cwd_of, describe, run_command
from ..endpoints import parse_duration_key
from ..yamlfile import YamlMap
from .base import Fetch, MetricQueryError, NoHistory, Sample, Series, SourceContext, number

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "command"],
    "properties": {
        "type": {"const": "command"},
        **COMMAND_PROPERTIES,
    },
}
PLACEHOLDER = "{{ query }}"


def from_yaml(name: str, node: YamlMap, context: SourceContext) -> CommandSource:
    return CommandSource(
        name=name, command=command_of(node["command"]), cwd=cwd_of(node, context.base_dir),
        env={key: str(value) for key, value in node.get("env", {}).items()},
        timeout=parse_duration_key(node, "timeout", context.timeout, context.file,
                                   context.where))


@dataclass(frozen=True)
class CommandSource:
    name: str
    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    timeout: float
    history: bool = False

    def describe(self) -> str:
        return f"command {describe(self.command)}"

    def query_error(self, query: str) -> str | None:
        return None  # only the server can tell

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        if isinstance(self.command, str):
            command: str | list[str] = self.command.replace(PLACEHOLDER, shlex.quote(query))
        else:
            command = [part.replace(PLACEHOLDER, query) for part in self.command]
        try:
            result = run_command(command, timeout=timeout, cwd=self.cwd, env=self.env)
        except OSError as exc:
            raise MetricQueryError(f"cannot run {describe(command)}: {exc}") from None
        if result.timed_out:
            raise MetricQueryError(f"command timed out after {timeout:g}s and was killed")
        if result.exit_code != 0:
            tail = result.stderr.strip().splitlines()[-3:] or result.stdout.strip().splitlines(
                )[-3:]
            raise MetricQueryError(f"command exited with {result.exit_code}: "
                                   f"{' | '.join(tail)[:300]}")
        if result.truncated:
            raise MetricQueryError(f"command printed more than {MAX_OUTPUT // 1024} KB; a "
                                   f"metric command prints one number")
        lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
        if not lines:
            raise MetricQueryError("command printed no number (stdout is empty)")
        return [Series("", (Sample(at, number(lines[-1], "the command's last line")),))]

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        raise NoHistory(f"source '{self.name}' (command) knows only the current value; use "
                        f"'observe' instead of 'window'")
