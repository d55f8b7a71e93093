"""``command:`` actions: a command run to completion, killed with its children at ``timeout``.

It gets ``DEPLOYCHECK_ENV`` (the environment), ``DEPLOYCHECK_FAILURES`` (the path of a JSON file
of the failed checks) and, for notify, ``DEPLOYCHECK_VERDICT``. Exit status 0 is success.
Templates in the command (``{{ env }}``, ``{{ verdict }}``, the environment's vars, ...) reach
it as data, as in checklist commands (:func:`~pytest_deploycheck.inputs.templating.render_command`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CheckError, ConfigError
from ..inputs.located import At
from ..inputs.templating import command_problem, render_command
from ..inputs.yamlfile import YamlMap
from ..runtime.commands import (
    COMMAND_PROPERTIES,
    CommandSpec,
    describe,
    output_redactor,
    parse_command,
    run_command,
)
from ..units import format_duration
from .base import ROLE_PROPERTIES, ActionContext, ActionResult, last_chars

DEFAULT_TIMEOUT = 300.0
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["command"],
    "properties": {
        "name": {"type": "string"},
        **COMMAND_PROPERTIES,
        **ROLE_PROPERTIES,
    },
}


@dataclass(frozen=True)
class CommandAction:
    name: str
    spec: CommandSpec
    type: str = "command"

    @property
    def timeout(self) -> float:
        return self.spec.timeout

    def describe(self) -> str:
        return f"command {describe(self.spec.command)} (timeout {format_duration(self.timeout)})"

    def run(self, context: ActionContext) -> ActionResult:
        try:
            rendered = render_command(self.spec.command, context.scope())
        except CheckError as exc:
            return ActionResult(self.name, self.type, "failed", context.redactor.redact(str(exc)))
        extra = {**self.spec.env, "DEPLOYCHECK_ENV": context.env,
                 "DEPLOYCHECK_FAILURES": str(context.failures_file), **rendered.env}
        if context.verdict:
            extra["DEPLOYCHECK_VERDICT"] = context.verdict
        try:
            result = run_command(rendered.command, timeout=self.timeout, cwd=self.spec.cwd,
                                 env=extra)
        except OSError as exc:
            return ActionResult(self.name, self.type, "failed", context.redactor.redact(
                f"cannot run {rendered.shown}: {exc.strerror or exc}"))
        redactor = output_redactor(extra, context.redactor)
        output = redactor.redact(last_chars((result.stdout + result.stderr).strip()))
        if result.timed_out:
            message = (f"timed out after {format_duration(self.timeout)}; killed with every "
                       f"process it started")
        elif result.exit_code != 0:
            message = f"exit code {result.exit_code}"
        else:
            message = ""
        if result.left_running:  # it did not finish its work: never a success
            message = f"{message or 'exit code 0'}, but {result.left_running_message()}"
        return ActionResult(self.name, self.type, "failed" if message else "succeeded",
                            message, result.exit_code, result.duration, output)


def parse(node: YamlMap, context: At) -> CommandAction:
    spec = parse_command(node, context.base_dir, DEFAULT_TIMEOUT, node.file, context.where)
    problem = command_problem(spec.command)
    if problem:
        raise ConfigError(problem, file=node.file, line=node.line_of("command"),
                          key=f"{context.where}.command")
    return CommandAction(name=str(node.get("name") or describe(spec.command)), spec=spec)
