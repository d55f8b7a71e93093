"""Running side-effect-free checks ahead of their items, a bounded number at a time.

Deploy gates wait on the network, so checks that only read (health checks, GET-only smoke
checks, metric queries and observations, checklist entries that run no command) run in a pool of
threads, each with the run's shared keep-alive clients; their items then only report what they
found. Checks that may change something run at their item, on the calling thread, in order, and
nothing runs concurrently with them (see :func:`side_effect_free`).

Threads, not asyncio: at 50 concurrent loopback requests httpx's ``AsyncClient`` took several
times longer per request than sync clients shared by threads (``bench/http_layer.py``), and the
check runners, expectations and metric sources stay plain blocking code.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .errors import CheckError
from .suites import SAFE_METHODS, Check

_T = TypeVar("_T")
# How often a thread waiting on checks shows the lines they queued (observe progress).
_POLL_SECONDS = 0.2

# Checklist entries that run something: anything but reading files, variables, git or the clock.
_ACTING_ENTRIES = frozenset({"command"})


def side_effect_free(check: Check) -> bool:
    """Whether ``check`` only reads, so that running it early and alongside others is safe.

    HTTP checks qualify when every step uses a safe method (GET, HEAD, OPTIONS) and none allows a
    write; metric checks always (a ``command`` metric source is a query); checklist entries
    unless they run a command.
    """
    if check.metric is not None:
        return True
    if check.checklist is not None:
        return check.checklist.key not in _ACTING_ENTRIES
    return all(step.request.method in SAFE_METHODS and not step.allow_write
               for step in check.steps)


class Cancelled(CheckError):
    """The run is stopping (``-x``, ``--maxfail``, ``--rollback-fast``, Ctrl-C): a check that
    was waiting to retry or to take its next measurement gives up."""


class _DaemonPool:
    """Up to ``size`` daemon threads running submitted calls in order of submission.

    Not :class:`concurrent.futures.ThreadPoolExecutor`: its threads are joined at interpreter
    exit, so a check stuck in a request to a hanging endpoint would hold the finished run until
    that request's timeout. A run that stops abandons such a request instead.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any],
                                            Callable[[], Any]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def submit(self, call: Callable[[], Any]) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, call))
        if len(self._threads) < self._size:
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"deploycheck-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, call = job
            if not future.set_running_or_notify_cancel():
                continue  # cancelled before it started
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to whoever takes the result
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Let the threads end once what they are running returns; start nothing more."""
        for _ in self._threads:
            self._jobs.put(None)


class Engine:
    """A bounded pool running calls ahead of need, keyed by the item that will ask for them.

    ``concurrency`` 1 runs nothing ahead: :meth:`take` then calls on the spot, as pytest would.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}
        self._pool: _DaemonPool | None = None
        self._lines: queue.SimpleQueue[tuple[Callable[[str], None], str]] = queue.SimpleQueue()
        self._owner = threading.get_ident()

    @property
    def enabled(self) -> bool:
        return self.concurrency > 1

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that ends early, raising :class:`Cancelled`, once the run stops."""
        if self._stop.wait(max(seconds, 0.0)):
            raise Cancelled("the run is stopping")

    def relay(self, show: Callable[[str], None]) -> Callable[[str], None]:
        """``show`` made safe to call from the pool: lines from other threads are queued and
        shown by the owning thread while it waits (terminal output is not thread-safe)."""

        def relayed(line: str) -> None:
            if threading.get_ident() == self._owner:
                show(line)
            else:
                self._lines.put((show, line))

        return relayed

    def _flush(self) -> None:
        while True:
            try:
                show, line = self._lines.get_nowait()
            except queue.Empty:
                return
            show(line)

    # --- running ahead --------------------------------------------------------------------

    def submit(self, key: str, call: Callable[[], Any]) -> None:
        """Start ``call`` in the pool (once per key) unless the run is stopping."""
        if not self.enabled or self.stopping or key in self._futures:
            return
        if self._pool is None:
            self._pool = _DaemonPool(self.concurrency)
        self._futures[key] = self._pool.submit(call)

    def submitted(self, key: str) -> bool:
        return key in self._futures

    def first_done(self, keys: Iterable[str]) -> str:
        """The first of ``keys`` (all submitted) to finish, in the given order on ties; waits."""
        waiting = {self._futures[key]: key for key in keys}
        while True:
            done, _ = concurrent.futures.wait(waiting, timeout=_POLL_SECONDS,
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            self._flush()
            if done:
                return next(key for future, key in waiting.items() if future in done)

    def take(self, key: str, call: Callable[[], _T]) -> _T:
        """The result of the call submitted under ``key`` (waiting for it), or of ``call`` now
        when nothing was submitted."""
        future = self._futures.pop(key, None)
        if future is None:
            return call()
        while True:
            try:
                result: _T = future.result(timeout=_POLL_SECONDS)
                return result
            except concurrent.futures.TimeoutError:
                pass
            finally:
                self._flush()

    def forget(self, keep: Iterable[str]) -> None:
        """Cancel what was submitted but is no longer wanted (an xdist worker's items taken
        by another worker); calls already running finish and are dropped."""
        wanted = set(keep)
        for key in [key for key in self._futures if key not in wanted]:
            self._futures.pop(key).cancel()

    def stop(self) -> None:
        """Stop running ahead: cancel what has not started and wake sleeping checks."""
        self._stop.set()
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def close(self) -> None:
        """Stop, without waiting for requests in flight: each ends by its own timeout."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown()
        self._flush()
