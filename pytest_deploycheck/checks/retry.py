"""``retry:``: running a check again until it passes, for every kind that waits for readiness.

``until`` (a duration) and/or ``attempts`` bound the tries, ``interval`` spaces them (default
1 s); a check's ``timeout`` bounds them too, and no sleep runs past either. Requests also take
``stop_if`` (an answer that means waiting is pointless), parsed by the http check type.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..inputs.located import duration_at, error_at
from ..inputs.yamlfile import YamlMap

DEFAULT_INTERVAL = 1.0
_R = TypeVar("_R", bound="Retried")


@dataclass(frozen=True)
class Retry:
    until: float | None
    interval: float
    attempts: int | None
    stop_if: Any = None  # an Expectation of a request's answer (http checks only)


def parse_retry(node: YamlMap | None, where: str, stop_if: Any = None) -> Retry | None:
    """``node`` (a ``retry:`` mapping) as a :class:`Retry`; ``stop_if`` is its parsed
    ``stop_if``, for the types that have one."""
    if node is None:
        return None
    retry = Retry(until=duration_at(node, "until", where),
                  interval=duration_at(node, "interval", where) or DEFAULT_INTERVAL,
                  attempts=node.get("attempts"), stop_if=stop_if)
    if retry.until is None and retry.attempts is None:
        raise error_at("retry needs 'until' or 'attempts'", node, None, where)
    return retry


def retrying(once: Callable[[], tuple[bool, bool]], retry: Retry | None, deadline: float | None,
             clock: Callable[[], float], sleep: Callable[[float], None]) -> int:
    """Call ``once`` (returning ok, give-up) until it succeeds or ``retry`` runs out.

    Returns how many attempts were made. Never sleeps past ``retry.until`` or ``deadline``.
    """
    start = clock()
    until = start + retry.until if retry and retry.until is not None else None
    attempts = 0
    while True:
        attempts += 1
        ok, stop = once()
        if ok or stop or retry is None:
            return attempts
        if retry.attempts is not None and attempts >= retry.attempts:
            return attempts
        now = clock()
        limits = [limit for limit in (until, deadline) if limit is not None]
        if limits and now >= min(limits):
            return attempts
        sleep(max(min([retry.interval, *(limit - now for limit in limits)]), 0.0))


def own_retry(node: YamlMap, where: str) -> Retry | None:
    """The ``retry`` of a check type without ``stop_if`` (sql, alerts, browser)."""
    retry = node.get("retry")
    if retry is not None and "stop_if" in retry:
        raise error_at("'stop_if' judges a request's answer; this check sends none", retry,
                       "stop_if", f"{where}.retry")
    return parse_retry(retry, f"{where}.retry")


class Retried(Protocol):
    """A result a retried check returns: its outcome, and where the retries are recorded."""

    outcome: str
    attempts: int
    duration: float


def run_retrying(once: Callable[[], _R], retry: Retry | None, timeout: float | None,
                 sleep: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic) -> _R:
    """The last result of ``once``, retried by ``retry`` until its outcome is ``passed``
    (``inconclusive`` is not retried: it will not change by waiting), with the attempts made
    and the time they all took."""
    last: list[_R] = []

    def attempt() -> tuple[bool, bool]:
        last[:] = [once()]
        return last[0].outcome == "passed", last[0].outcome == "inconclusive"

    started = clock()
    deadline = started + timeout if timeout is not None else None
    attempts = retrying(attempt, retry, deadline, clock, sleep)
    last[0].attempts, last[0].duration = attempts, clock() - started
    return last[0]
