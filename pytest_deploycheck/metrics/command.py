"""``type: command``: the number a command prints; ``{{ query }}`` in it is the check's query.

The query reaches the command as data
(:func:`~pytest_deploycheck.inputs.templating.render_command`): in a string command (run by
the shell) through a variable the shell expands without parsing it, whatever quotes the
template stands in; in a list command it replaces the item's text.
The value is the last non-empty line of stdout; a non-zero exit or no number is a query error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CheckError
from ..inputs.templating import command_problem, names_in, render_command
from ..inputs.yamlfile import YamlMap
from ..runtime.commands import (
    COMMAND_PROPERTIES,
    MAX_OUTPUT,
    CommandSpec,
    describe,
    output_redactor,
    parse_command,
    run_command,
)
from .base import Fetch, MetricQueryError, NoHistory, Sample, Series, SourceContext, number

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "command"],
    "properties": {
        "type": {"enum": ["command"]},
        **COMMAND_PROPERTIES,
    },
}


def parse(name: str, node: YamlMap, context: SourceContext) -> CommandSource:
    spec = parse_command(node, context.base_dir, context.timeout, node.file, context.where)
    written = spec.command if isinstance(spec.command, str) else list(spec.command)
    problem = command_problem(spec.command)
    unknown = sorted(names_in(written) - {"query"})
    if unknown:
        problem = f"'{{{{ {unknown[0]} }}}}' is not defined: a metric command knows only " \
                  f"{{{{ query }}}}"
    if problem:
        raise context.error(problem, node, "command")
    return CommandSource(name=name, spec=spec)


@dataclass(frozen=True)
class CommandSource:
    name: str
    spec: CommandSpec
    history: bool = False

    @property
    def timeout(self) -> float:
        return self.spec.timeout

    def describe(self) -> str:
        return f"command {describe(self.spec.command)}"

    def query_error(self, query: str) -> str | None:
        return None  # only the server can tell

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        try:
            rendered = render_command(self.spec.command, {"query": query})
        except CheckError as exc:
            raise MetricQueryError(str(exc)) from None
        try:
            result = run_command(rendered.command, timeout=timeout, cwd=self.spec.cwd,
                                 env={**self.spec.env, **rendered.env})
        except OSError as exc:
            raise MetricQueryError(f"cannot run {rendered.shown}: {exc}") from None
        if result.timed_out:
            raise MetricQueryError(f"command timed out after {timeout:g}s and was killed")
        if result.left_running:
            raise MetricQueryError(f"command {result.left_running_message()}")
        if result.exit_code != 0:
            tail = result.stderr.strip().splitlines()[-3:] or result.stdout.strip().splitlines(
                )[-3:]
            shown = output_redactor(self.spec.env).redact(" | ".join(tail))
            raise MetricQueryError(f"command exited with {result.exit_code}: {shown[:300]}")
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
