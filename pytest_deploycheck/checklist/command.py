"""``command:`` entries: a script that must exit as expected and print what it should.

A string runs through the shell, a list without one. The command gets ``DEPLOYCHECK_ENV`` and
the check's ``env``, starts in ``cwd`` (relative to the rootdir), and is killed with everything
it started at the check's timeout. Its output is shown on failure: the last lines of each
stream, with secrets masked, including the values of secret-named variables it inherited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CheckError
from ..inputs.located import At, any_text_error, error_at, matches_any_text, regex_at
from ..inputs.templating import command_problem, names_in, render, render_command
from ..inputs.yamlfile import YamlMap
from ..runtime.commands import MAX_OUTPUT, command_of, output_redactor, run_command
from ..units import format_duration
from .base import Context, Outcome, tail

OUTPUT_KEPT = 4000  # characters of the end of each stream kept for reports

KEYS = ("command", "cwd", "env")
EXPECT_KEYS = ("exit_code", "stdout", "stderr")
# What a shell's exit status says when the command itself never ran.
_SHELL_HINTS = {126: "found but not executable", 127: "command not found"}


@dataclass(frozen=True)
class CommandEntry:
    command: str | tuple[str, ...]
    cwd: str | None
    env: Mapping[str, str]
    exit_codes: tuple[int, ...]
    stdout: str | None  # regexes, compiled once rendered
    stderr: str | None
    key: str = "command"

    def names(self) -> set[str]:
        return names_in([self.command if isinstance(self.command, str) else list(self.command),
                         self.cwd, dict(self.env), self.stdout, self.stderr])

    def run(self, context: Context) -> Outcome:
        try:
            rendered = render_command(self.command, context.scope)
            extra = {name: str(value) for name, value in
                     render(dict(self.env), context.scope).items()}
            cwd = context.path(str(render(self.cwd, context.scope))) if self.cwd \
                else context.rootdir
            patterns = [(name, _compiled(str(render(text, context.scope))))
                        for name, text in (("stdout", self.stdout), ("stderr", self.stderr))
                        if text is not None]
        except CheckError as exc:
            return Outcome("failed", str(exc))
        extra = {"DEPLOYCHECK_ENV": context.env.name, **extra, **rendered.env}
        command, shown = rendered.command, rendered.shown
        try:
            result = run_command(command, timeout=context.timeout, cwd=cwd, env=extra)
        except OSError as exc:
            return Outcome("failed", f"cannot run {shown}: {exc.strerror or exc}",
                           [f"  command: {shown}", f"  cwd: {cwd}"])
        redactor = output_redactor(extra, context.redactor.with_variables(context.environ))
        lines = [f"  command: {redactor.redact(shown)}", f"  cwd: {cwd}"]
        data: dict[str, Any] = {"command": redactor.redact(shown), "exit_code": result.exit_code,
                                "duration": result.duration}
        problems = self._judge(result.exit_code, result.stdout, result.stderr, patterns,
                               context.timeout if result.timed_out else None)
        if result.left_running:
            problems.insert(0, result.left_running_message())
        if result.timed_out:
            lines.append(f"  -> killed after {format_duration(context.timeout)} (timeout), "
                         f"with every process it started")
        else:
            lines.append(f"  -> exit code {result.exit_code} in "
                         f"{format_duration(result.duration)}")
        lines.extend(f"  FAILED {problem}" for problem in problems)
        if result.truncated:
            lines.append(f"  (output longer than {MAX_OUTPUT // 1024} KB per stream: only its "
                         f"end was kept and judged)")
        # The end of the output, for reports (an Allure attachment).
        data["output"] = redactor.redact("\n".join(
            part for part in (result.stdout[-OUTPUT_KEPT:], result.stderr[-OUTPUT_KEPT:]) if part))
        if problems:
            lines += tail(result.stdout, "stdout") + tail(result.stderr, "stderr")
            return Outcome("failed", problems[0], [redactor.redact(line) for line in lines],
                           data=data)
        return Outcome("passed", "", data=data)

    def _judge(self, exit_code: int | None, stdout: str, stderr: str,
               patterns: list[tuple[str, re.Pattern[str]]], timed_out: float | None
               ) -> list[str]:
        if timed_out is not None:
            return [f"timed out after {format_duration(timed_out)} and was killed"]
        problems = []
        if exit_code not in self.exit_codes:
            expected = " or ".join(str(code) for code in self.exit_codes)
            hint = _SHELL_HINTS.get(exit_code or 0, "") if isinstance(self.command, str) else ""
            problems.append(f"exit code {exit_code}{f' ({hint})' if hint else ''}, expected "
                            f"{expected}")
        for name, pattern in patterns:
            text = stdout if name == "stdout" else stderr
            if not pattern.search(text):
                problems.append(f"{name} does not match /{pattern.pattern}/")
        return problems


def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:  # only a rendered pattern gets here: the others are compiled early
        raise CheckError(f"bad regex {pattern!r} once rendered: {exc}") from None
    if matches_any_text(compiled):  # a template that rendered empty
        raise CheckError(f"{any_text_error(pattern)} once rendered")
    return compiled


def _regex(node: YamlMap, key: str, where: str) -> str | None:
    # `stdout: ""` reads as "prints nothing" but is found in every output: say how to write it.
    if key not in node:
        return None
    return regex_at(node, key, where, flags=re.MULTILINE,
                    hint=f" (for an empty {key}: '\\A\\Z')")


def parse(node: YamlMap, at: At) -> CommandEntry:
    expect = node.get("expect", YamlMap())
    for key in expect:
        if key not in EXPECT_KEYS:
            raise error_at(f"'{key}' is not an expectation of a command; use "
                           f"{', '.join(EXPECT_KEYS)}", expect, key, at.inner("expect"))
    codes = expect.get("exit_code", 0)
    problem = command_problem(command_of(node["command"]))
    if problem:
        raise at.error(problem, node, "command")
    return CommandEntry(
        command=command_of(node["command"]), cwd=node.get("cwd"),
        env={str(k): str(v) for k, v in node.get("env", {}).items()},
        exit_codes=tuple(codes) if isinstance(codes, list) else (codes,),
        stdout=_regex(expect, "stdout", at.inner("expect")),
        stderr=_regex(expect, "stderr", at.inner("expect")))
