"""``files:`` entries: files that must exist, optionally newer than ``max_age``.

A path may be a glob (``backups/db-*.dump``): at least one file must match, and the newest match
is the one whose age counts. Paths are relative to the rootdir; ``{{ names }}`` are filled in.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import CheckError
from ..inputs.located import At, duration_at
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlMap
from ..units import format_duration, utc_iso
from .base import Context, Outcome

KEYS = ("files",)


@dataclass(frozen=True)
class FileRule:
    path: str
    max_age: float | None
    max_age_text: str = ""  # as written, for messages


@dataclass(frozen=True)
class FilesEntry:
    files: tuple[FileRule, ...]
    key: str = "files"

    def names(self) -> set[str]:
        return names_in([rule.path for rule in self.files])

    def run(self, context: Context) -> Outcome:
        lines, problems, seen = [], [], []
        for rule in self.files:
            try:
                written = str(render(rule.path, context.scope))
            except CheckError as exc:
                return Outcome("failed", str(exc))
            found = _newest(context.path(written))
            if found is None and context.path(written).is_dir():
                problems.append(f"{written}: a folder, not a file")
                lines.append(f"  FAILED {written}: a folder, not a file")
                continue
            if found is None:
                problems.append(f"{written}: not found")
                lines.append(f"  FAILED {written}: not found (looked at "
                             f"{context.path(written)})")
                continue
            path, mtime = found
            age = context.now.timestamp() - mtime
            modified = utc_iso(mtime, "seconds")
            seen.append({"path": str(path), "modified": modified, "age": age})
            described = f"{path} (modified {modified}, {format_duration(max(age, 0))} ago)"
            if rule.max_age is not None and age > rule.max_age:
                problems.append(f"{written}: {format_duration(age)} old, max_age "
                                f"{rule.max_age_text}")
                lines.append(f"  FAILED {described}: older than max_age {rule.max_age_text}")
            else:
                lines.append(f"  ok {described}")
        if problems:
            return Outcome("failed", "; ".join(problems), lines, data={"files": seen})
        return Outcome("passed", "", data={"files": seen})


def _newest(path: Path) -> tuple[Path, float] | None:
    """``path`` (or the newest file matching it as a glob) and its modification time."""
    text = str(path)
    candidates = [Path(p) for p in glob.glob(text)] if any(c in text for c in "*?[") else [path]
    stamps = []
    for candidate in candidates:
        try:
            status = os.stat(candidate)
        except OSError:
            continue
        # A folder is no file: `backups/db-*.dump` matching a folder whose mtime changed
        # when something was added to it would pass max_age for a dump that is old.
        if stat.S_ISREG(status.st_mode):
            stamps.append((candidate, status.st_mtime))
    return max(stamps, key=lambda pair: pair[1]) if stamps else None


def parse(node: YamlMap, at: At) -> FilesEntry:
    rules = []
    for index, item in enumerate(node["files"]):
        if isinstance(item, str):
            rules.append(FileRule(item, None))
            continue
        max_age = duration_at(item, "max_age", f"{at.inner('files')}[{index}]")
        rules.append(FileRule(str(item["path"]), max_age, str(item.get("max_age", ""))))
    return FilesEntry(tuple(rules))
