"""pytest's side of the concurrent engine: which items run ahead, and when they start.

Items stay the unit of selection and reporting: once the final item list is known (after
``-m``, ``-k``, ``--lf`` and deselection), each stretch of consecutive side-effect-free check
items goes to the engine at once (which starts them together once the run waits on the network,
see ``runtime/engine.py``), and the items report as their checks finish. Any
other item (a check that writes or runs a command, a Python test, a skip-marked check) is a
fence: it runs on its own, after everything before it has reported and before anything after it
starts, so the order of effects is the order of the items.

Without xdist the plugin runs the loop itself (:meth:`Prefetcher.pytest_runtestloop`), reporting
a stretch's items in the order their checks finish, so that ``-x``, ``--maxfail`` and
``--rollback-fast`` act on the first failure found, not the first in file order. An xdist worker
learns its items only as the controller sends them: before each item it reads the queue of
indices xdist keeps for it (:class:`~.xdist.WorkerQueue`, read under its lock, never changed)
and starts the stretch ahead; items then report in the order xdist hands them out.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence

import pytest

from ..deployrun import DeployRun
from ..runtime.engine import Engine
from . import xdist
from .yamlitems import CheckItem

_CONCURRENT = pytest.StashKey[bool]()


class Prefetcher:
    """Registered at session start in each process that runs items (not on an xdist
    controller), when ``concurrency`` is above 1."""

    def __init__(self, session: pytest.Session, run: DeployRun) -> None:
        self.config = session.config
        self.session = session
        self.run = run
        self.engine: Engine = run.engine
        self._worker = xdist.is_worker(self.config)
        self._queue = xdist.WorkerQueue(self.config)
        self._last: list[int] = []  # the queue when last read

    def concurrent(self, item: pytest.Item) -> bool:
        """Whether ``item`` may run ahead and alongside others (decided once per item)."""
        known = item.stash.get(_CONCURRENT, None)
        if known is None:
            known = isinstance(item, CheckItem) and item.instance.check.spec.read_only \
                and not item.unneeded \
                and item.get_closest_marker("skip") is None \
                and item.get_closest_marker("skipif") is None
            item.stash[_CONCURRENT] = known
        return known

    def stretch(self, upcoming: Iterable[pytest.Item]) -> list[pytest.Item]:
        """The side-effect-free items at the head of ``upcoming``, up to the first fence."""
        head = []
        for item in upcoming:
            if not self.concurrent(item):
                break
            head.append(item)
        return head

    def start(self, items: Sequence[pytest.Item]) -> None:
        for item in items:
            assert isinstance(item, CheckItem)
            self.engine.submit(item.nodeid, functools.partial(item.run_timed, self.run),
                               waiting=item.instance.check.spec.waits)

    # --- without xdist: the run loop ------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        # xdist's loop runs a worker; pytest's own handles collection errors, --collect-only,
        # and runs with nothing to run concurrently.
        if self._worker or self.config.option.collectonly or \
                (session.testsfailed and not self.config.option.continue_on_collection_errors):
            return None
        items = session.items
        if not any(self.concurrent(a) and self.concurrent(b)
                   for a, b in itertools.pairwise(items)):
            return None
        stretches = []
        index = 0
        while index < len(items):
            stretch = self.stretch(itertools.islice(items, index, None)) or [items[index]]
            index += len(stretch)
            stretches.append(stretch)
        try:
            for stretch, after in itertools.zip_longest(stretches, stretches[1:]):
                self._run_stretch(session, stretch, after or [])
        finally:
            self.engine.stop()
        return True

    def _run_stretch(self, session: pytest.Session, stretch: list[pytest.Item],
                     after: list[pytest.Item]) -> None:
        if len(stretch) > 1:
            self.start(stretch)
        pending = {item.nodeid: item for item in stretch}
        while pending:
            if len(pending) > 1:
                item = pending.pop(self.engine.first_done(pending))
            else:
                item = pending.popitem()[1]
            # pytest tears an item down to what it is told runs next, and its next setup
            # asserts that nothing of another file is still set up. Which item of a stretch
            # finishes next is not known yet, so it is told the node all candidates share:
            # the rest of this stretch, or the whole next one (the item after a fence, or
            # after a stretch's last item, is any item of the next stretch).
            candidates = list(pending.values()) or after
            nextitem = _shared_node(candidates) if candidates else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)

    # --- on an xdist worker: start what the worker's queue holds --------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if not self._worker or not self.concurrent(item):
            return
        queued, last = self._queue.pending(), self._last
        self._last = queued
        # With this item started and the queue as it was but for what was taken off its head,
        # there is nothing new to start or cancel; going over the queue again for every item
        # cost O(items²) per worker.
        if self.engine.submitted(item.nodeid) and queued == last[len(last) - len(queued):]:
            return
        items = self.session.items
        upcoming = [item, *([nextitem] if nextitem is not None else []),
                    *(items[index] for index in queued)]
        self.engine.forget(keep=[one.nodeid for one in upcoming])
        stretch = self.stretch(upcoming)
        if len(stretch) > 1:  # alone, it runs at its item like any other
            self.start(stretch)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        self.engine.stop()


def _shared_node(items: Sequence[pytest.Item]) -> pytest.Item | pytest.Collector:
    """The one item, or the innermost collector above all of ``items``: what pytest may keep
    set up whichever of them runs next."""
    if len(items) == 1:
        return items[0]
    shared: pytest.Item | pytest.Collector = items[0].session
    for nodes in zip(*(item.listchain() for item in items), strict=False):
        if any(node is not nodes[0] for node in nodes):
            break
        shared = nodes[0]
    return shared
