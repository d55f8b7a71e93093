"""Every setting declared once, and resolved in one place with the source it came from.

Precedence: command-line option, then environment variable, then ini key, then default.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Declaration:
    """How a user can set one setting."""

    name: str
    help: str
    option: str | None = None
    env_var: str | None = None
    ini: str | None = None
    default: Any = None
    flag: bool = False
    repeatable: bool = False
    ini_type: str = "string"
    metavar: str | None = None


DECLARATIONS: tuple[Declaration, ...] = (
    Declaration("env", "environments to target, comma-separated (required once a suite is "
                "collected)", option="--env", env_var="DEPLOYCHECK_ENV", repeatable=True,
                metavar="NAME[,NAME...]"),
    Declaration("environments", "the environments file", option="--environments",
                ini="deploycheck_environments", default="environments.yaml", metavar="PATH"),
    Declaration("suites", "folders (relative to the rootdir) whose *.yaml/*.yml files are "
                "suites", ini="deploycheck_suites", ini_type="args", default="suites"),
    Declaration("state_dir", "folder for baselines and other state (relative to the rootdir)",
                ini="deploycheck_state_dir", default=".deploycheck"),
    Declaration("no_start", "do not start the environments' start: processes (already running)",
                option="--no-start", flag=True, default=False),
)


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str

    def __str__(self) -> str:
        return f"{self.value} (from {self.source})"


class _Config(Protocol):
    def getoption(self, name: str) -> Any: ...
    def getini(self, name: str) -> Any: ...


def option_dest(declaration: Declaration) -> str:
    """The argparse destination of a declaration's command-line option."""
    return f"deploycheck_{declaration.name}"


def resolve_one(declaration: Declaration, config: _Config,
                environ: Mapping[str, str]) -> Setting:
    if declaration.option:
        value = config.getoption(option_dest(declaration))
        if value not in (None, False, [], ""):
            return Setting(value, declaration.option)
    if declaration.env_var and environ.get(declaration.env_var):
        return Setting(environ[declaration.env_var], f"environment variable "
                       f"{declaration.env_var}")
    if declaration.ini:
        value = config.getini(declaration.ini)
        # getini answers the default when the key is unset; an ini value equal to the default
        # is reported as the default, which is the same setting.
        if value not in (None, [], "", declaration.default, [declaration.default]):
            return Setting(value, f"ini {declaration.ini}")
    return Setting(declaration.default, "default")


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run."""

    env: Setting  # tuple[str, ...]
    environments: Setting  # Path
    suites: Setting  # tuple[str, ...]
    state_dir: Setting  # Path
    no_start: Setting  # bool

    def describe(self) -> str:
        def show(value: Any) -> str:
            if isinstance(value, tuple):
                return ",".join(value) or "(none)"
            return str(value)

        return ", ".join(f"{name}={show(getattr(self, name).value)} "
                         f"({getattr(self, name).source})"
                         for name in ("env", "environments", "suites", "state_dir",
                                      "no_start"))


def _names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(part.strip() for item in items if item for part in str(item).split(",")
                 if part.strip())


# Converters get the value and the folder relative paths start from.
_CONVERT: dict[str, Callable[[Any, Path], Any]] = {
    "env": lambda value, base: _names(value),
    "environments": lambda value, base: base / value,
    "suites": lambda value, base: _names(value.split() if isinstance(value, str) else value),
    "state_dir": lambda value, base: base / value,
    "no_start": lambda value, base: bool(value),
}


def resolve(config: _Config, rootdir: Path, invocation_dir: Path,
            environ: Mapping[str, str] = os.environ) -> Settings:
    """All settings of this run with their sources.

    Paths given on the command line are relative to where pytest was invoked, paths from the ini
    file or defaults to the rootdir.
    """
    values = {}
    for declaration in DECLARATIONS:
        raw = resolve_one(declaration, config, environ)
        base = invocation_dir if declaration.option and raw.source == declaration.option \
            else rootdir
        values[declaration.name] = Setting(_CONVERT[declaration.name](raw.value, base),
                                           raw.source)
    return Settings(**values)

