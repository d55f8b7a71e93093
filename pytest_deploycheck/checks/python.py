"""Checks written in Python (SPEC §7): what ``@pytest.mark.deploycheck(...)`` declares.

A plain test that uses ``deploy_env`` (directly, or through ``service`` or ``metric``) is a
check: it runs once per selected environment and takes part in the gate like a YAML check. The
marker says which kind of check it is and how its failure gates, with the defaults of SPEC §1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..deploy import PHASES
from ..environments import NO_ENVIRONMENTS, UnknownEnvironment, environment_names
from ..errors import ConfigError
from ..inputs.validation import suggest
from ..units import parse_duration
from .base import KINDS, applies_to, default_on_fail, markers

ON_FAIL = ("rollback", "block", "warn")
SEVERITIES = ("blocker", "critical", "normal", "minor", "trivial")
MARKER_KEYS = ("kind", "phase", "on_fail", "envs", "skip_envs", "severity", "timeout", "runbook")
# An unmarked test that uses the environment fixtures exercises a path of the service.
DEFAULT_KIND = "smoke"


@dataclass(frozen=True)
class PythonCheck:
    kind: str
    phase: str
    on_fail: str
    envs: tuple[str, ...] | None
    skip_envs: tuple[str, ...]
    severity: str
    timeout: float | None
    runbook: str | None

    @property
    def markers(self) -> tuple[str, ...]:
        return markers(self.kind, self.phase)

    def applies_to(self, env: str) -> bool:
        return applies_to(self.envs, self.skip_envs, env)


UNMARKED = PythonCheck(DEFAULT_KIND, KINDS[DEFAULT_KIND].phase, KINDS[DEFAULT_KIND].on_fail, None,
                       (), "normal", None, None)


def parse_marker(args: Sequence[Any], kwargs: Mapping[str, Any], file: str, line: int,
                 known_envs: Sequence[str]) -> PythonCheck:
    """The check declared by ``deploycheck(*args, **kwargs)`` on the test at ``file:line``.

    ``kind`` may also be the one positional argument. Raises :class:`ConfigError` naming the
    marker's argument.
    """

    def error(message: str, key: str) -> ConfigError:
        return ConfigError(message, file=file, line=line, key=f"deploycheck({key}=...)")

    options = dict(kwargs)
    if len(args) > 1 or (args and "kind" in options):
        raise error("takes the kind as its only positional argument", "kind")
    if args:
        options["kind"] = args[0]
    for key in options:
        if key not in MARKER_KEYS:
            raise error(f"unknown argument {key!r}{suggest(key, MARKER_KEYS)}; known: "
                        f"{', '.join(MARKER_KEYS)}", key)
    for key in ("kind", "phase", "on_fail", "severity"):
        if key in options and not isinstance(options[key], str):
            raise error(f"must be a string, not {type(options[key]).__name__} "
                        f"{options[key]!r}", key)
    kind = options.get("kind", DEFAULT_KIND)
    if kind not in KINDS:
        raise error(f"{kind!r} is not a kind{suggest(str(kind), KINDS)}; one of "
                    f"{', '.join(KINDS)}", "kind")
    phase = options.get("phase", KINDS[kind].phase)
    if phase not in PHASES:
        raise error(f"{phase!r} is not a phase{suggest(str(phase), PHASES)}; one of "
                    f"{', '.join(PHASES)}", "phase")
    if phase == "postrollback":
        raise error("post-rollback checks are YAML checks: the gate runs them itself after "
                    "a rollback, outside pytest's items", "phase")
    on_fail = options.get("on_fail", default_on_fail(kind, phase))
    if on_fail not in ON_FAIL:
        raise error(f"{on_fail!r} is not one of {', '.join(ON_FAIL)}", "on_fail")
    severity = options.get("severity", "normal")
    if severity not in SEVERITIES:
        raise error(f"{severity!r} is not one of {', '.join(SEVERITIES)}", "severity")
    timeout = None
    if options.get("timeout") is not None:
        try:
            timeout = parse_duration(options["timeout"])
        except ValueError as exc:
            raise error(str(exc), "timeout") from None
    runbook = options.get("runbook")
    if runbook is not None and not isinstance(runbook, str):
        raise error("must be a URL (a string)", "runbook")

    def names(key: str) -> tuple[str, ...] | None:
        value = options.get(key)
        if value is None:
            return None
        try:
            names = environment_names(value, known_envs)
        except UnknownEnvironment as exc:
            raise error(str(exc), key) from None
        if key == "envs" and not names:
            raise error(NO_ENVIRONMENTS, key)
        return names

    return PythonCheck(kind=kind, phase=phase, on_fail=on_fail, envs=names("envs"),
                       skip_envs=names("skip_envs") or (), severity=severity, timeout=timeout,
                       runbook=runbook)
