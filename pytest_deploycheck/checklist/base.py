"""What every kind of checklist entry implements, and what it is given to run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..environments import Environment
from ..inputs.located import At
from ..inputs.yamlfile import YamlMap
from ..secrets import Redactor

# Output lines kept per stream for a failure message (the last ones: where errors are printed).
TAIL_LINES = 30
LINE_CHARS = 300


@dataclass(frozen=True)
class Context:
    """What an entry may use while it runs; ``ids`` are the names ``--ack`` accepts for it."""

    env: Environment
    scope: Mapping[str, Any]
    timeout: float
    now: dt.datetime  # real time, for file ages
    deploy_time: dt.datetime  # --deploy-time, or now: when windows are evaluated
    acks: frozenset[str]
    ids: tuple[str, ...]
    rootdir: Path
    environ: Mapping[str, str]
    redactor: Redactor
    own_outputs: tuple[Path, ...] = ()  # what the run writes (see RunContext)

    def acknowledged_by(self, *, explicit_only: bool = False) -> str | None:
        """The ``--ack`` value naming this item (``all`` counts unless ``explicit_only``)."""
        for candidate in self.ids:
            if candidate in self.acks:
                return candidate
        return None if explicit_only or "all" not in self.acks else "all"

    def path(self, value: str | Path) -> Path:
        """A path from a suite, relative to the project's rootdir."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.rootdir / path


@dataclass
class Outcome:
    """What one entry found: ``passed``, ``failed``, ``skipped`` or ``warned`` (passed, with
    ``reason`` as a warning), and the lines that say why.

    ``lines`` are shown under the failure header; ``data`` is plain data for reports.
    """

    status: str
    reason: str
    lines: list[str] = field(default_factory=list)
    note: str = ""
    acknowledged: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class Entry(Protocol):
    """One kind of checklist entry (``command``, ``files``, ``git``, ...), parsed at collection."""

    @property
    def key(self) -> str:
        """The entry's key in the suite (``command``, ``files``, ...)."""
        ...

    def names(self) -> set[str]:
        """Template names the entry uses, checked against each environment at collection."""
        ...

    def run(self, context: Context) -> Outcome: ...


class EntryType(Protocol):
    """A module that provides one kind of checklist entry."""

    @property
    def KEYS(self) -> tuple[str, ...]:  # a module constant, read-only here
        """The keys it adds to a check."""
        ...

    def parse(self, node: YamlMap, at: At) -> Entry: ...


def tail(text: str, label: str) -> list[str]:
    """The last lines of a command's output, indented, each cut to a readable length."""
    lines = text.rstrip("\n").splitlines()
    if not lines:
        return [f"  {label}: (empty)"]
    shown = lines[-TAIL_LINES:]
    out = [f"  {label}:" + (f" (last {len(shown)} of {len(lines)} lines)"
                            if len(lines) > len(shown) else "")]
    out.extend("    " + (line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…")
               for line in shown)
    return out
