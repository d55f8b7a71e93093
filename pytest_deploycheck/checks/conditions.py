"""``if:`` on a suite or a check (SPEC §10): whether the check is needed in this deploy.

Three forms, each decided at collection, the same way on every xdist worker:

- ``{changed: GLOB or [GLOBS], base: REF}``: a file that differs between ``REF`` (default
  ``HEAD~1``) and ``HEAD`` matches one of the globs (``**`` spans folders);
- ``{env_var: NAME}``: the variable is set to something other than empty, 0, false, no or off;
- a value, usually a template (``"{{ vars.migration }}"``): true or false once rendered (also
  yes/no, on/off, 1/0).

A check whose condition is false is skipped with the reason, before anything of it runs. A
condition that cannot be decided (an unknown base ref in a shallow clone, a value that is
neither true nor false) is a collection error: the gate never guesses whether a check was
needed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import CheckError, ConfigError
from ..inputs.located import error_at
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlList, YamlMap
from ..runtime.commands import run_command

DEFAULT_BASE = "HEAD~1"
# Where an ``if:`` renders templates (relative to its suite or check).
CONDITION_FIELDS = ("if", "if/changed", "if/changed/[]", "if/base")
GIT_TIMEOUT = 30.0
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True)
class Condition:
    """One ``if:`` (a suite's or a check's), with where it is written."""

    changed: tuple[str, ...] = ()
    base: str = DEFAULT_BASE
    env_var: str | None = None
    value: Any = None  # the third form: rendered, then read as true or false
    file: str = ""
    line: int = 0
    key: str = "if"

    def names(self) -> set[str]:
        return names_in([self.value, self.base, list(self.changed)])

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line, key=self.key)


def parse_condition(node: YamlMap, where: str) -> Condition | None:
    """The ``if:`` of suite or check ``node`` (None when it has none)."""
    if "if" not in node:
        return None
    value = node["if"]
    key = f"{where}.if" if where else "if"
    at = Condition(file=node.file, line=node.line_of("if"), key=key)
    if not isinstance(value, YamlMap):
        if isinstance(value, YamlList):
            raise error_at("if: takes one condition: {changed: ...}, {env_var: ...} or a "
                           "value such as \"{{ vars.migration }}\"", node, "if", where)
        return replace(at, value=value)
    forms = [form for form in ("changed", "env_var") if form in value]
    if len(forms) != 1 or (forms == ["env_var"] and "base" in value):
        raise error_at("if: takes one of {changed: GLOB, base: REF} or {env_var: NAME}",
                       node, "if", where)
    if forms == ["env_var"]:
        return replace(at, env_var=str(value["env_var"]))
    globs = value["changed"]
    globs = tuple(str(one) for one in (globs if isinstance(globs, list) else [globs]))
    if not globs or any(not one.strip() for one in globs):
        raise error_at("changed: needs a glob such as \"prisma/migrations/**\"", value,
                       "changed", key)
    return replace(at, changed=globs, base=str(value.get("base", DEFAULT_BASE)))


def _glob(pattern: str) -> re.Pattern[str]:
    """A path glob relative to the rootdir, read as git reads a pathspec: ``*`` and ``?`` stay
    inside a folder, ``**`` spans folders, a pattern without a slash matches at any depth
    (``*.sql``), and one that names a folder (``prisma``, ``prisma/``, ``./prisma/**``,
    ``/prisma``) matches every file below it."""
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    anchored = "/" in pattern.rstrip("/")  # else, as in .gitignore, it matches at any depth
    pattern = pattern.lstrip("/").rstrip("/")
    out = []
    for index, part in enumerate(re.split(r"(\*\*/?|\*|\?)", pattern)):
        if index % 2 == 0:
            out.append(re.escape(part))
        elif part.startswith("**"):
            out.append("(?:.*/)?" if part.endswith("/") else ".*")
        else:
            out.append("[^/]*" if part == "*" else "[^/]")
    # The file itself, or a file below it when it is a folder.
    return re.compile(("" if anchored else "(?:.*/)?") + "".join(out) + r"(?:/.*)?\Z")


def truth(value: Any) -> bool | None:
    """A rendered condition as true or false (None: neither)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    return True if text in _TRUE else False if text in _FALSE else None


class ChangedFiles:
    """``git diff --name-only BASE HEAD`` in the rootdir, asked once per base in a run."""

    def __init__(self, rootdir: Path, run: Callable[..., Any] = run_command) -> None:
        self.rootdir = rootdir
        self._run = run
        self._known: dict[str, tuple[str, ...] | str] = {}

    def between(self, base: str) -> tuple[str, ...]:
        """The files that differ; raises :class:`CheckError` saying why git could not tell."""
        if base not in self._known:
            self._known[base] = self._ask(base)
        found = self._known[base]
        if isinstance(found, str):
            raise CheckError(found)
        return found

    def _ask(self, base: str) -> tuple[str, ...] | str:
        if base.startswith("-"):
            return f"base {base!r} is not a git revision"
        try:
            # Paths relative to the rootdir (a project inside a bigger repository), and both
            # sides of a rename (a file moved out of a folder changed that folder).
            done = self._run(["git", "-c", "core.quotepath=off", "diff", "--name-only", "-z",
                              "--relative", "--no-renames", base, "HEAD", "--"],
                             timeout=GIT_TIMEOUT, cwd=self.rootdir,
                             env={"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0",
                                  "GIT_OPTIONAL_LOCKS": "0"})
        except OSError as exc:
            return f"cannot run git: {exc}"
        if done.timed_out:
            return f"git diff did not answer within {GIT_TIMEOUT:.0f}s"
        if done.exit_code != 0:
            said = (done.stderr.strip().splitlines() or ["no message"])[0]
            return (f"git cannot compare {base!r} with HEAD in {self.rootdir}: {said} (in CI, "
                    f"fetch the base first: a shallow clone has no history to compare)")
        return tuple(name for name in done.stdout.split("\0") if name)


def skip_reason(conditions: tuple[Condition, ...], scope: Mapping[str, Any],
                environ: Mapping[str, str], changes: ChangedFiles) -> str | None:
    """Why a check with ``conditions`` is not needed (None: it is); raises
    :class:`ConfigError` at the condition when it cannot be decided."""
    for condition in conditions:
        if condition.env_var is not None:
            value = environ.get(condition.env_var, "")
            if value.strip().lower() in _FALSE | {""}:
                shown = "is not set" if condition.env_var not in environ else f"is {value!r}"
                return f"if: ${condition.env_var} {shown}"
            continue
        if condition.changed:
            try:
                base = str(render(condition.base, scope))
                files = changes.between(base)
            except CheckError as exc:
                raise condition.error(str(exc)) from None
            globs = [str(render(one, scope)) for one in condition.changed]
            patterns = [_glob(one) for one in globs]
            if not any(p.match(name) for p in patterns for name in files):
                return (f"if: no file matching {', '.join(globs)} changed since {base} "
                        f"({len(files)} changed)")
            continue
        try:
            rendered = render(condition.value, scope)
        except CheckError as exc:
            raise condition.error(str(exc)) from None
        decided = truth(rendered)
        if decided is None:
            raise condition.error(f"renders {str(rendered)!r}, which is neither true nor false "
                                  f"(true/false, yes/no, on/off, 1/0; an empty value is a "
                                  f"missing one, never false)")
        if not decided:
            shown = condition.value if isinstance(condition.value, str) else str(rendered)
            return f"if: {shown} is false"
    return None

