"""``env_vars:`` entries: variables that must be set and non-empty. Values are never shown."""

from __future__ import annotations

from dataclasses import dataclass

from ..inputs.located import At
from ..inputs.yamlfile import YamlMap
from .base import Context, Outcome

KEYS = ("env_vars",)


@dataclass(frozen=True)
class EnvVarsEntry:
    variables: tuple[str, ...]
    key: str = "env_vars"

    def names(self) -> set[str]:
        return set()

    def run(self, context: Context) -> Outcome:
        problems = []
        for name in self.variables:
            value = context.environ.get(name)
            if value is None:
                problems.append(f"{name} (not set)")
            elif not value.strip():
                problems.append(f"{name} (empty)")
        if not problems:
            return Outcome("passed", "", data={"variables": list(self.variables)})
        return Outcome(
            "failed", f"{len(problems)} of {len(self.variables)} environment variables missing: "
            f"{', '.join(problems)}",
            [f"  required: {', '.join(self.variables)}",
             *(f"  FAILED {problem}" for problem in problems)],
            data={"variables": list(self.variables), "missing": problems})


def parse(node: YamlMap, at: At) -> EnvVarsEntry:
    return EnvVarsEntry(tuple(str(name) for name in node["env_vars"]))
