"""Running side-effect-free checks ahead of their items, a bounded number at a time.

Deploy gates wait on the network, so checks that only read (health checks, GET-only smoke
checks, metric queries and observations, checklist entries that run no command) run in a pool of
threads, each with the run's shared keep-alive clients; their items then only report what they
found. Checks that may change something run at their item, on the calling thread, in order, and
nothing runs concurrently with them (each check says which it is: ``CheckSpec.read_only``).

Threads, not asyncio: at 50 concurrent loopback requests httpx's ``AsyncClient`` took several
times longer per request than sync clients shared by threads (``bench/http_layer.py``), and the
check runners, expectations and metric sources stay plain blocking code.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from ..errors import CheckError

_T = TypeVar("_T")
# How long the thread collecting results waits before the pool grows (see _DaemonPool), and
# how often it shows the lines the checks queued meanwhile (observe progress).
_GROW_AFTER = 0.02
# Below this share of one core used while waiting, the process is waiting on the network.
_IDLE_SHARE = 0.5
# Held calls run in the pool before the next ones run on the calling thread (see Engine).
PROBES = 8

class Cancelled(CheckError):
    """The run is stopping (``-x``, ``--maxfail``, ``--rollback-fast``, Ctrl-C): a check that
    was waiting to retry or to take its next measurement gives up."""


def _queued() -> float:
    """Seconds this process's threads have spent ready to run but waiting for a CPU (Linux's
    per-thread ``schedstat`` run delay; 0 where the system does not tell)."""
    total = 0
    try:
        for task in os.scandir("/proc/self/task"):
            with open(f"{task.path}/schedstat", "rb") as stat:
                total += int(stat.read().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return total / 1e9


def _clocks() -> tuple[float, float]:
    """Wall time and this process's CPU time (all threads)."""
    return time.perf_counter(), time.process_time()


class _DaemonPool:
    """Up to ``size`` daemon threads running submitted calls in order of submission.

    It starts with one thread and doubles whenever the caller has waited :data:`_GROW_AFTER`
    for a result while the process was mostly idle: its threads then wait on the network, and
    more of them help. Checks answered at once keep the process busy and stay on few threads,
    since more would only contend for the interpreter lock (figures: ``bench/run.py``).

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
        if not self._threads:
            self.grow()
        return future

    def grow(self) -> None:
        """Double the threads, up to ``size``."""
        for _ in range(min(max(len(self._threads), 1), self._size - len(self._threads))):
            thread = threading.Thread(target=self._work, daemon=True,
                                      name=f"deploycheck-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

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

    Above 1, submitted calls are held until the run is seen to wait, and a held call runs when
    its item asks for it (or, in the run loop, when nothing else is running). The first
    :data:`PROBES` run in the pool, one at a time, so that a first check that hangs cannot hold
    the run; when none of them made the run wait, the next ones run on the calling thread,
    without handing each over to another thread and back (CPU time spent on nothing). Once a
    call has kept the run waiting :data:`_GROW_AFTER` with the process mostly idle, or a call
    waits by design (``waiting``), every held call and every later one starts at once. Checks
    answered at once keep the process busy: running them ahead, alongside the thread reporting
    them, only adds contention for the interpreter lock (figures: ``bench/run.py``).
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._stop = threading.Event()
        self._held: dict[str, Callable[[], Any]] = {}
        self._ahead = False
        self._started: str | None = None  # the held call last started, one at a time
        self._probes = 0  # held calls run in the pool without the run waiting
        self._queued_seen = _queued()  # the run queue's reading when last looked at
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}
        # Keys in the order their calls finished: waiting on a queue costs the same for 1000
        # outstanding checks as for 2, where concurrent.futures.wait visits every future.
        self._done: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._finished: set[str] = set()
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

    def submitted(self, key: str) -> bool:
        """Whether a call submitted under ``key`` waits to be taken."""
        return key in self._futures or key in self._held

    def submit(self, key: str, call: Callable[[], Any], waiting: bool = False) -> None:
        """Start ``call`` in the pool (once per key) unless the run is stopping, or hold it
        while the run has not been seen to wait; ``waiting``: the call waits by design."""
        if not self.enabled or self.stopping or self.submitted(key):
            return
        if waiting:
            self._go_ahead()
        if self._ahead:
            self._start(key, call)
        else:
            self._held[key] = call

    def _start(self, key: str, call: Callable[[], Any]) -> None:
        if self._pool is None:
            self._pool = _DaemonPool(self.concurrency)
        future = self._pool.submit(call)
        future.add_done_callback(lambda _: self._done.put(key))
        self._futures[key] = future

    def _go_ahead(self) -> None:
        if not self._ahead:
            self._ahead = True
            held, self._held = self._held, {}
            for key, call in held.items():
                self._start(key, call)

    def _run_here(self, call: Callable[[], Any]) -> Any:
        """Run a held call on this thread; go ahead if it mostly waited."""
        since = _clocks()
        try:
            return call()
        finally:
            if time.perf_counter() - since[0] >= _GROW_AFTER and self._idle(since):
                self._go_ahead()

    def first_done(self, keys: Collection[str]) -> str:
        """The first of ``keys`` (all submitted) whose call finishes; waits for it."""
        held = next((key for key in keys if key in self._held), None) if self._held else None
        if held is not None and self._probes >= PROBES:
            return held  # runs at its item
        if held is not None and self._started not in self._futures:  # taken: start the next
            self._started = held
            self._start(held, self._held.pop(held))
        while True:
            ready = next((key for key in self._finished if key in keys), None)
            if ready is not None:
                self._finished.discard(ready)
                return ready
            since = _clocks()
            try:
                self._finished.add(self._done.get(timeout=_GROW_AFTER))
            except queue.Empty:
                self._grow(since)
            self._flush()

    def take(self, key: str, call: Callable[[], _T]) -> _T:
        """The result of the call submitted under ``key`` (waiting for it), or of ``call`` now
        when nothing was submitted."""
        held = self._held.pop(key, None)
        if held is not None and self._probes >= PROBES:
            ran: _T = self._run_here(held)
            return ran
        if held is not None:
            self._start(key, held)
        future = self._futures.pop(key, None)
        if future is None:
            return call()
        probing = not self._ahead
        while True:
            since = _clocks()
            try:
                result: _T = future.result(timeout=_GROW_AFTER)
                if probing and not self._ahead:
                    self._probes += 1
                return result
            except concurrent.futures.TimeoutError:
                self._grow(since)
            finally:
                self._flush()

    def _grow(self, since: tuple[float, float]) -> None:
        """Run ahead, with more threads, if the process was mostly idle while this one
        waited."""
        if self._pool is not None and self._idle(since, deciding=not self._ahead):
            self._go_ahead()
            self._pool.grow()

    def _idle(self, since: tuple[float, float], deciding: bool = True) -> bool:
        """Whether the process was mostly idle since ``since``.

        ``deciding`` whether to go ahead, time spent queued for a CPU behind other processes
        is not idle: on a loaded machine it looked like waiting on the network and sent fast
        checks ahead. It is read (only when the process looks idle, so that fast checks do not
        pay for it) as the run queue's growth since the last reading. Once ahead, threads
        waiting on the network queue too on a busy machine, and counting that would keep the
        pool from growing for them."""
        wall, cpu = (now - then for now, then in zip(_clocks(), since, strict=True))
        if cpu >= _IDLE_SHARE * wall:
            return False
        if not deciding:
            return True
        total = _queued()
        queued, self._queued_seen = total - self._queued_seen, total
        return cpu + queued < _IDLE_SHARE * wall

    def forget(self, keep: Iterable[str]) -> None:
        """Cancel what was submitted but is no longer wanted (an xdist worker's items taken
        by another worker); calls already running finish and are dropped."""
        wanted = set(keep)
        for key in [key for key in self._futures if key not in wanted]:
            self._futures.pop(key).cancel()
        for key in [key for key in self._held if key not in wanted]:
            del self._held[key]

    def cancel(self) -> None:
        """Wake the sleeping checks, which give up (:class:`Cancelled`): the run is stopping.
        Safe from any thread (an xdist worker learns of the stop on one of its own)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop running ahead: cancel what has not started and wake sleeping checks."""
        self.cancel()
        self._held.clear()
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()

    def close(self) -> None:
        """Stop, without waiting for requests in flight: each ends by its own timeout."""
        self.stop()
        if self._pool is not None:
            self._pool.shutdown()
        self._flush()
