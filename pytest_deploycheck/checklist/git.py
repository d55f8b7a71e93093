"""``git:`` entries: the state of the working tree a deploy is made from.

``clean`` (nothing modified or untracked), ``branch`` and ``tag`` (glob patterns; the tag must
point at HEAD; a detached HEAD, as a release tag's checkout, is on a branch that contains it)
and ``up_to_date`` (HEAD is neither behind nor ahead of a remote-tracking ref: the branch's
upstream for ``true``, or the ref given). Nothing is fetched: the check judges the last fetched
state, so CI should fetch first. A folder that is not a git repository skips the item with that
reason.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckError
from ..inputs.located import At
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlMap
from ..runtime.commands import CommandResult, run_command
from .base import Context, Outcome

KEYS = ("git",)
MAX_LISTED = 10
# Stable, parseable output whatever the user's locale and git configuration.
_GIT = ("git", "-c", "core.quotepath=off", "-c", "color.ui=false")
_GIT_ENV = {"LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


class GitFailed(Exception):
    """git could not answer (missing, hung, or an error other than 'not a repository')."""


@dataclass(frozen=True)
class GitEntry:
    path: str
    clean: bool
    branch: str | None
    tag: str | None
    up_to_date: bool | str
    key: str = "git"

    def names(self) -> set[str]:
        return names_in([self.path, self.branch, self.tag,
                         self.up_to_date if isinstance(self.up_to_date, str) else None])

    def run(self, context: Context) -> Outcome:
        try:
            folder = context.path(str(render(self.path, context.scope)))
            branch = render(self.branch, context.scope)
            tag = render(self.tag, context.scope)
            remote = render(self.up_to_date, context.scope)
        except CheckError as exc:
            return Outcome("failed", str(exc))
        git = _Git(folder, context.timeout)
        try:
            if not folder.is_dir():
                return Outcome("skipped", f"not a git repository: {folder} does not exist")
            inside = git.run("rev-parse", "--is-inside-work-tree")
            if "not a git repository" in inside.stderr or inside.stdout.strip() == "false":
                return Outcome("skipped", f"not a git repository: {folder}")
            if inside.exit_code != 0:
                raise GitFailed(f"git cannot read {folder}: {_last_line(inside)}")
            return self._judge(git, folder, branch, tag, remote, context.own_outputs)
        except GitFailed as exc:
            return Outcome("failed", str(exc), [f"  repository: {folder}"])

    def _judge(self, git: _Git, folder: Path, branch: str | None, tag: str | None,
               remote: bool | str, own_outputs: tuple[Path, ...]) -> Outcome:
        lines, problems = [f"  repository: {folder}"], []
        unavailable = ""
        if self.clean:
            dirty = self._changes(git, own_outputs)
            if dirty:
                problems.append(f"working tree not clean ({len(dirty)} changed or untracked)")
                lines.append(f"  FAILED clean: {len(dirty)} changed or untracked:")
                lines.extend(f"    {line}" for line in dirty[:MAX_LISTED])
                if len(dirty) > MAX_LISTED:
                    lines.append(f"    … and {len(dirty) - MAX_LISTED} more")
            else:
                lines.append("  ok clean")
        current = git.lines("symbolic-ref", "--short", "-q", "HEAD", check=False)
        head = current[0] if current else None
        if branch is not None and head is None:
            # A tag or a CI checkout: detached, and fine when a matching branch (local or
            # remote-tracking) contains the commit.
            holders = self._branches_containing_head(git, branch)
            if holders:
                lines.append(f"  ok branch: detached HEAD, contained in {', '.join(holders)}")
            else:
                problems.append(f"HEAD is detached and no branch matching {branch} contains it")
                lines.append(f"  FAILED branch: detached HEAD, in no branch matching {branch}")
        elif branch is not None:
            assert head is not None
            if not fnmatch.fnmatchcase(head, branch):
                problems.append(f"on branch {head}, expected {branch}")
            lines.append(f"  {'ok' if fnmatch.fnmatchcase(head, branch) else 'FAILED'}"
                         f" branch: {head}, expected {branch}")
        if tag is not None:
            tags = git.lines("tag", "--points-at", "HEAD")
            matching = [t for t in tags if fnmatch.fnmatchcase(t, tag)]
            if not matching:
                problems.append(f"no tag matching {tag} on HEAD"
                                + (f" (HEAD has {', '.join(tags)})" if tags else ""))
            lines.append(f"  {'ok' if matching else 'FAILED'} tag {tag}: "
                         f"{', '.join(matching) or 'none on HEAD'}")
        if remote:
            ref = remote if isinstance(remote, str) else self._upstream(git, head)
            if ref is None:
                unavailable = (f"cannot check up_to_date: branch {head} has no upstream; set one "
                               f"(git branch -u origin/{head}) or name the ref "
                               f"(up_to_date: origin/main)" if head else
                               "cannot check up_to_date: HEAD is detached; name the ref "
                               "(up_to_date: origin/main)")
                lines.append(f"  skipped {unavailable}")
            else:
                lines.append(self._compare(git, ref, problems))
        if problems:
            return Outcome("failed", "; ".join(problems), lines)
        if unavailable:
            return Outcome("skipped", unavailable)
        return Outcome("passed", "", data={"branch": head})

    @staticmethod
    def _changes(git: _Git, own_outputs: tuple[Path, ...]) -> list[str]:
        """``git status`` lines of what is changed or untracked, but for what this run writes
        itself (its gate report and Allure results in the working tree)."""
        if not own_outputs:
            return git.lines("status", "--porcelain=v1", "--untracked-files=normal")
        top = git.lines("rev-parse", "--show-toplevel")[0]
        root = Path(top).resolve()
        # An output folder that holds the repository (--alluredir=.) would hide everything.
        mine = [path.resolve() for path in own_outputs
                if path.resolve() != root and not root.is_relative_to(path.resolve())]
        kept = []
        # Every untracked file on its own, so that a folder holding the run's outputs and
        # something else still shows the something else.
        for line in git.lines("status", "--porcelain=v1", "--untracked-files=all"):
            path = root / line[3:].strip('"').split(" -> ")[-1]
            if not (line.startswith("??") and
                    any(path == one or path.is_relative_to(one) for one in mine)):
                kept.append(line)
        return kept

    @staticmethod
    def _branches_containing_head(git: _Git, pattern: str) -> list[str]:
        """The branches matching ``pattern`` that contain HEAD (``origin/main`` matches
        ``main``)."""
        found = git.lines("for-each-ref", "--contains", "HEAD", "--format=%(refname)",
                          "refs/heads", "refs/remotes", check=False)
        holders = []
        for ref in found:
            if ref.startswith("refs/heads/"):
                name = shown = ref.removeprefix("refs/heads/")
            else:
                shown = ref.removeprefix("refs/remotes/")
                name = shown.partition("/")[2]
            if name != "HEAD" and fnmatch.fnmatchcase(name, pattern):
                holders.append(shown)
        return holders[:MAX_LISTED]

    @staticmethod
    def _upstream(git: _Git, head: str | None) -> str | None:
        if head is None:
            return None
        found = git.lines("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}",
                          check=False)
        return found[0] if found else None

    @staticmethod
    def _compare(git: _Git, ref: str, problems: list[str]) -> str:
        counted = git.run("rev-list", "--left-right", "--count", f"HEAD...{ref}")
        if counted.exit_code != 0:
            problems.append(f"cannot compare HEAD with {ref} (unknown ref? fetch it first)")
            return f"  FAILED up_to_date: {ref}: {counted.stderr.strip()[:200]}"
        ahead, behind = (int(n) for n in counted.stdout.split())
        if ahead or behind:
            problems.append(f"HEAD is {behind} behind and {ahead} ahead of {ref}")
            return f"  FAILED up_to_date: {behind} behind and {ahead} ahead of {ref}"
        return f"  ok up_to_date with {ref}"


class _Git:
    def __init__(self, folder: Path, timeout: float) -> None:
        self.folder = folder
        self.timeout = timeout

    def run(self, *args: str) -> CommandResult:
        try:
            result = run_command([*_GIT, "-C", str(self.folder), *args], timeout=self.timeout,
                                 env=_GIT_ENV)
        except OSError as exc:
            raise GitFailed(f"cannot run git: {exc.strerror or exc}") from None
        if result.timed_out:
            raise GitFailed(f"git {args[0]} timed out after {self.timeout:g}s")
        return result

    def lines(self, *args: str, check: bool = True) -> list[str]:
        result = self.run(*args)
        if result.exit_code != 0:
            if not check:
                return []
            raise GitFailed(f"git {' '.join(args)} failed: {_last_line(result)}")
        return [line for line in result.stdout.splitlines() if line.strip()]


def _last_line(result: CommandResult) -> str:
    lines = result.stderr.strip().splitlines()
    return lines[-1][:300] if lines else f"exit code {result.exit_code}"


def parse(node: YamlMap, at: At) -> GitEntry:
    spec = node["git"]
    return GitEntry(path=str(spec.get("path", ".")), clean=bool(spec.get("clean", False)),
                    branch=spec.get("branch"), tag=spec.get("tag"),
                    up_to_date=spec.get("up_to_date", False))
