"""Everything this plugin knows of pytest-xdist, in one place.

xdist is a dependency but its processes are optional: without ``-n`` there is no controller and
no worker, and every function here answers as for a single process. What the plugin relies on,
beyond the documented ``workerinput`` attribute of a worker's config:

- the controller's ``dsession`` plugin and its ``shouldstop`` (``--rollback-fast`` stops the
  workers through it, as ``-x`` does);
- the ``???`` phase of the report xdist makes for an item whose worker died;
- a worker's queue of item indices, ``WorkerInteractor.torun``, read under ``torun.lock()``
  (pytest-xdist 3.7.0, the version ``pyproject.toml`` requires): the items handed to the worker
  but not yet started, which it starts ahead.
"""

from __future__ import annotations

from typing import Any

import pytest

# The phase of the report xdist makes for an item whose worker crashed.
CRASH_PHASE = "???"


def run_uid(config: pytest.Config) -> str | None:
    """The id xdist gives one run, the same on every worker (None without workers)."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["testrunuid"]) if workerinput else None


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.get_plugin("dsession") is not None


def stopping(config: pytest.Config) -> bool:
    """Whether the controller stops handing out items (``-x``, ``--maxfail``, or
    :func:`stop_workers`); False without xdist."""
    dsession = config.pluginmanager.get_plugin("dsession")
    return bool(getattr(dsession, "shouldstop", False))


def stop_workers(config: pytest.Config, reason: str) -> None:
    """Ask the controller to stop handing out items (no-op without xdist)."""
    dsession = config.pluginmanager.get_plugin("dsession")
    if dsession is not None:
        dsession.shouldstop = reason


class WorkerQueue:
    """A worker's queue of the items xdist has handed it but not yet started."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._queue: Any = None  # the worker's TestQueue, found on first use

    def pending(self) -> list[int]:
        """The indices (into ``session.items``) of the items queued, in order; empty when
        there is no queue to read."""
        if self._queue is None:
            self._queue = next((plugin.torun for plugin in self.config.pluginmanager.get_plugins()
                                if hasattr(getattr(plugin, "torun", None), "lock")), False)
        if not self._queue:
            return []
        with self._queue.lock() as indices:
            return [index for index in indices if isinstance(index, int)]
