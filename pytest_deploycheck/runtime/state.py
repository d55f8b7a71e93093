"""The state dir (``.deploycheck/`` by default): one JSON file per environment.

Holds each metric check's baseline: the value of its last passing run. Writes are atomic (a
temporary file renamed over the old one) and serialised with a lock file, since xdist workers
may record baselines of the same environment at the same moment.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckError
from .durable import write_json_atomic

FORMAT_VERSION = 1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()



# Deploys whose pre-deploy values and start are kept per environment (the newest).
KEPT_DEPLOYS = 20


@dataclass(frozen=True)
class Baseline:
    value: float
    recorded: str  # ISO 8601, UTC
    query: str


class StateStore:
    """Reads and records baselines under ``folder``; the folder is made on first write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # Whether the run started with nothing recorded: on a CI runner made for the job, no
        # baseline can ever compare unless the folder travels between runs.
        self.empty_at_start = not any(folder.glob("*.json")) if folder.is_dir() else True

    def _file(self, env: str) -> Path:
        return self.folder / f"{env}.json"

    def _read(self, env: str) -> dict[str, Any]:
        path = self._file(env)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "baselines": {}, "deploys": {}}
        except (OSError, ValueError) as exc:
            raise CheckError(f"cannot read the state file {path}: {exc}; delete it to start "
                             f"over (baselines are recorded again by the next passing run)"
                             ) from None
        if not isinstance(document, dict) or not isinstance(document.get("baselines"), dict) \
                or not isinstance(document.setdefault("deploys", {}), dict) \
                or not all(isinstance(one, dict) and isinstance(one.get("values", {}), dict)
                           for one in document["deploys"].values()):
            raise CheckError(f"the state file {path} is not a deploycheck state file; delete it "
                             f"to start over")
        return document

    def baseline(self, env: str, check_id: str) -> Baseline | None:
        entry = self._read(env)["baselines"].get(check_id)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), (int, float)):
            return None
        return Baseline(value=float(entry["value"]), recorded=str(entry.get("recorded", "")),
                        query=str(entry.get("query", "")))

    def deploy(self, env: str, deploy_id: str) -> dict[str, Any]:
        """What the runs of deploy ``deploy_id`` recorded in ``env``: ``started`` (when its
        pre-deploy gate first passed) and ``values`` (each check's first passing pre-deploy
        value, its query kept as a digest: the file travels between CI jobs, and a query may
        hold a secret)."""
        entry = self._read(env)["deploys"].get(deploy_id)
        return entry if isinstance(entry, dict) else {}

    @staticmethod
    def same_query(found: dict[str, Any], query: str) -> bool:
        return found.get("query_sha256") == _digest(query)

    def record_deploy(self, env: str, deploy_id: str, *, started: str | None = None,
                      value: tuple[str, float, str] | None = None) -> Any:
        """Record for deploy ``deploy_id`` when it started, or a check's (id, value, query)
        measured before it; only the last :data:`KEPT_DEPLOYS` deploys are kept. Returns the
        value that stands for the check (an earlier one stays)."""
        kept: Any = None
        recorded = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        with self._locked():
            document = self._read(env)
            deploys = document.setdefault("deploys", {})
            entry = deploys.pop(deploy_id, {})
            # The first record stands: a pre-deploy run repeated after the deploy (same id)
            # must not make what came after it the "before".
            if started is not None:
                entry.setdefault("started", started)
            if value is not None:
                check_id, number, query = value
                kept = entry.setdefault("values", {}).setdefault(check_id, {
                    "value": number, "recorded": recorded, "query_sha256": _digest(query)}
                )["value"]
            deploys[deploy_id] = entry  # last written, last in order
            for old in list(deploys)[:-KEPT_DEPLOYS]:
                del deploys[old]
            self._write(self._file(env), document)
        return kept

    def record(self, env: str, check_id: str, value: float, query: str) -> Baseline:
        recorded = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        baseline = Baseline(value=value, recorded=recorded, query=query)
        with self._locked():
            document = self._read(env)
            document["baselines"][check_id] = {"value": value, "recorded": recorded,
                                               "query": query}
            self._write(self._file(env), document)
        return baseline

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _write(path: Path, document: dict[str, Any]) -> None:
        write_json_atomic(path, document)
