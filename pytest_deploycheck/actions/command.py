"""``command:`` actions: a command run to completion, killed with its children at ``timeout``.

It gets ``DEPLOYCHECK_ENV`` (the environment), ``DEPLOYCHECK_FAILURES`` (the path of a JSON file
of the failed checks) and, for notify, ``DEPLOYCHECK_VERDICT``. Exit status 0 is success.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..commands import COMMAND_PROPERTIES, command_of, cwd_of, describe, run_command
from ..endpoints import parse_duration_key
from ..units import format_duration
from ..yamlfile import YamlMap
from .base import ActionContext, ActionResult, ParseContext, last_chars

DEFAULT_TIMEOUT = 300.0
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "name": {"type": "string"},
        **COMMAND_PROPERTIES,
        "when": {"type": "array", "items": {"type": "string"}},
    },
}


@dataclass(frozen=True)
class CommandAction:
    name: str
    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    timeout: float
    type: str = "command"

    def describe(self) -> str:
        return f"command {describe(self.command)} (timeout {format_duration(self.timeout)})"

    def run(self, context: ActionContext) -> ActionResult:
        extra = {**self.env, "DEPLOYCHECK_ENV": context.env,
                 "DEPLOYCHECK_FAILURES": str(context.failures_file)}
        if context.verdict:
            extra["DEPLOYCHECK_VERDICT"] = context.verdict
        try:
            result = run_command(self.command, timeout=self.timeout, cwd=self.cwd, env=extra)
        except OSError as exc:
            return ActionResult(self.name, self.type, "failed",
                                f"cannot run {describe(self.command)}: {exc.strerror or exc}")
        redactor = context.redactor.with_variables(extra)
        output = redactor.redact(last_chars((result.stdout + result.stderr).strip()))
        if result.timed_out:
            message = (f"timed out after {format_duration(self.timeout)}; killed with every "
                       f"process it started")
        elif result.exit_code != 0:
            message = f"exit code {result.exit_code}"
        else:
            message = ""
        return ActionResult(self.name, self.type, "failed" if message else "succeeded",
                            message, result.exit_code, result.duration, output)


def parse(node: YamlMap, context: ParseContext) -> CommandAction:
    command = command_of(node["command"])
    return CommandAction(
        name=str(node.get("name") or describe(command)), command=command,
        cwd=cwd_of(node, context.base_dir),
        env={str(k): str(v) for k, v in node.get("env", {}).items()},
        timeout=parse_duration_key(node, "timeout", DEFAULT_TIMEOUT, context.file,
                                   context.where))
