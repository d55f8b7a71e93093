"""Durations (``500ms``, ``10s``, ``5m``) and thresholds (``"< 500ms"``, ``">= 99%"``)."""

from __future__ import annotations

import datetime as dt
import math
import operator
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> float:
    """Seconds for ``value``: a number of seconds, or ``500ms``, ``10s``, ``5m``, ``1h``, ``1h30m``.

    Raises ``ValueError`` with a message fit for the user.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value < 0 or math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value!r} is not a duration (seconds must be finite and >= 0)")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return parse_duration(number)
        pos, total = 0, 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _SECONDS[match.group(2)]
            pos = match.end()
        if pos == len(text) and pos > 0:
            return total
    raise ValueError(f"{value!r} is not a duration (use e.g. 500ms, 10s, 5m, 1h or seconds)")


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120 and seconds % 60:
        return f"{seconds:.3g}s"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= 2 * size or (seconds >= size and seconds % size == 0):
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds / 60:.3g}m"


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}
_THRESHOLD = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*"
                        r"(ms|s|m|h|d|%)?\s*$")
_UNIT_SCALE = {**_SECONDS, "%": 0.01}


@dataclass(frozen=True)
class Threshold:
    """A comparison like ``< 500ms``; ``limit`` is in base units (seconds, or a fraction for %).

    Units say what the written number means, not what the measured value is: ``"< 500ms"``
    compares a value in seconds against 0.5, ``"> 99%"`` compares a fraction against 0.99.
    """

    text: str
    op: str
    limit: float

    def check(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)

    def __str__(self) -> str:
        return self.text


_QUANTITY = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(ms|s|m|h|d|%)?\s*$")


def parse_quantity(value: object) -> float:
    """A number, or a number with a unit (``500ms`` → 0.5, ``99%`` → 0.99), in base units."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a number (use e.g. 0.5, 500ms or 99%)")
    number, unit = match.groups()
    return float(number) * (_UNIT_SCALE[unit] if unit else 1.0)


def parse_threshold(text: object) -> Threshold:
    """Parse ``"< 500ms"``; raises ``ValueError`` with a message fit for the user."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a threshold (write it as a string, e.g. \"< 500ms\")")
    match = _THRESHOLD.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a threshold (use an operator < <= > >= == != , a "
                         "number and an optional unit ms, s, m, h, d or %, e.g. \"< 500ms\")")
    op, number, unit = match.groups()
    return Threshold(text=text.strip(), op=op, limit=parse_quantity(number + (unit or "")))


@dataclass(frozen=True)
class RelativeLimit:
    """A limit against a recorded baseline: ``"<= +10%"`` (relative) or ``"<= +0.005"``.

    A percentage scales the baseline (``<= +10%`` allows up to baseline × 1.1); a plain number
    is added to it, which also works for a baseline of zero.
    """

    text: str
    op: str
    delta: float
    percent: bool

    def limit(self, baseline: float) -> float:
        return baseline * (1 + self.delta) if self.percent else baseline + self.delta

    def threshold(self, baseline: float) -> Threshold:
        limit = self.limit(baseline)
        return Threshold(text=f"{self.op} {limit:.6g} (baseline {baseline:.6g} {self.text})",
                         op=self.op, limit=limit)


_RELATIVE = re.compile(r"^\s*(<=|>=|<|>)\s*([-+]\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*(%)?\s*$")


def parse_relative(text: object) -> RelativeLimit:
    """Parse ``"<= +10%"`` or ``">= -0.5"``; raises ``ValueError`` with a message fit for the
    user."""
    match = _RELATIVE.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a baseline limit (use an operator < <= > >=, a signed "
                         "change and an optional %, e.g. \"<= +10%\" or \">= -0.5\")")
    op, number, percent = match.groups()
    delta = float(number) / 100 if percent else float(number)
    return RelativeLimit(text=str(text).strip(), op=op, delta=delta, percent=bool(percent))


# The last moment (Unix seconds) every date function can show: the end of the year 9999.
LAST_TIME = 253402300799.0


def is_clock_time(timestamp: float) -> bool:
    """Whether ``timestamp`` (Unix seconds) is a moment a date can be made of: finite, from
    1970 to the year 9999."""
    return math.isfinite(timestamp) and 0 <= timestamp <= LAST_TIME


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def one_line(text: str) -> str:
    """``text`` as one line of plain text: its control characters (newlines, terminal
    escapes) become spaces. A check's name or a server's message may hold any."""
    return _CONTROL.sub(" ", text)


def utc_iso(timestamp: float | None = None, timespec: str = "milliseconds") -> str:
    """``2026-11-22T14:05:01.120Z``: Unix time ``timestamp`` (default now) in UTC."""
    moment = dt.datetime.fromtimestamp(time.time() if timestamp is None else timestamp, dt.UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
