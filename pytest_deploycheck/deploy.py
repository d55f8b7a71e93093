"""What a run knows of the deploy it gates (SPEC §10): the phases checks run in, and the
deploy's facts that messages and reports name (version, commit, who, which deploy, how long).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .units import format_duration

# What templates may read of ``deploy`` (see :meth:`Deploy.facts`).
FACTS = ("id", "version", "commit", "short_commit", "actor", "started", "duration")
# When a check runs: before the deploy (its gate may block it), after it (its gate may roll
# it back), or after a rollback (it verifies what was rolled back to; the gate runs it).
PHASES = ("predeploy", "postdeploy", "postrollback")


@dataclass(frozen=True)
class Deploy:
    """The deploy a run gates. Every field may be empty: a fact nobody gave is not made up."""

    id: str
    version: str
    commit: str
    actor: str
    started: dt.datetime | None  # when the deploy started (--deploy-started)

    def facts(self, now: dt.datetime, run_started: dt.datetime) -> dict[str, Any]:
        """``deploy.*`` for templates: ``duration`` runs from the deploy's start, or from this
        run's when nobody said when the deploy started."""
        since = self.started or run_started
        return {"id": self.id, "version": self.version, "commit": self.commit,
                "short_commit": self.commit[:7], "actor": self.actor,
                "started": since.isoformat().replace("+00:00", "Z"),
                "duration": format_duration(max(0.0, (now - since).total_seconds()))}


def phase_label(phases: list[str]) -> str:
    """The phases of a run as one word: ``predeploy``, ``postdeploy`` or
    ``predeploy+postdeploy``."""
    return "+".join(phase for phase in PHASES if phase in phases)
