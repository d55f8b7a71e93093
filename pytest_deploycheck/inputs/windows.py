"""Deploy windows and blackouts (an environment's ``windows:``), evaluated at one instant.

Weekly windows are wall-clock times in an IANA time zone, so "14:00-17:00 Europe/Berlin" moves
with daylight saving time. Every interval is converted to UTC before it is compared: Python
compares two datetimes of the same zone by their wall clock, which is wrong across a DST change.

A wall-clock time that does not exist (02:30 on a spring-forward night) is read with the offset
before the change, and one that happens twice (01:30 on a fall-back night) as its first
occurrence; that is how :mod:`zoneinfo` resolves ``fold=0``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from .located import error_at
from .validation import suggest
from .yamlfile import YamlList, YamlMap

UTC = dt.UTC
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# How far ahead the next allowed window is looked for: past any yearly freeze.
HORIZON = dt.timedelta(days=400)
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")
_MONTH_DAY = re.compile(r"^(\d\d)-(\d\d)$")

Interval = tuple[dt.datetime, dt.datetime]  # [start, end) in UTC


class Rule(Protocol):
    """A set of time intervals: a weekly window or a (possibly yearly) date range."""

    @property
    def tz(self) -> ZoneInfo: ...

    def intervals(self, lo: dt.datetime, hi: dt.datetime) -> Iterator[Interval]:
        """Every interval overlapping ``[lo, hi)``, in order."""
        ...

    def describe(self) -> str: ...


def _utc(day: dt.date, minutes: int, tz: ZoneInfo) -> dt.datetime:
    extra, minutes = divmod(minutes, 1440)  # 24:00 is midnight of the next day
    local = dt.datetime.combine(day + dt.timedelta(days=extra),
                                dt.time(minutes // 60, minutes % 60), tzinfo=tz)
    return local.astimezone(UTC)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _day_list(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "daily"
    ordered = sorted(days)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{DAY_NAMES[ordered[0]]}-{DAY_NAMES[ordered[-1]]}"
    return ",".join(DAY_NAMES[d] for d in ordered)


@dataclass(frozen=True)
class Weekly:
    """The same wall-clock hours on some weekdays; ``end <= start`` runs past midnight."""

    days: frozenset[int]
    start: int  # minutes after midnight
    end: int  # minutes after midnight, up to 1440 (24:00)
    tz: ZoneInfo

    def intervals(self, lo: dt.datetime, hi: dt.datetime) -> Iterator[Interval]:
        day = lo.astimezone(self.tz).date() - dt.timedelta(days=1)
        last = hi.astimezone(self.tz).date()
        while day <= last:
            if day.weekday() in self.days:
                start = _utc(day, self.start, self.tz)
                end_day = day + dt.timedelta(days=1) if self.end <= self.start else day
                end = _utc(end_day, self.end, self.tz)
                if start < end and end > lo and start < hi:
                    yield start, end
            day += dt.timedelta(days=1)

    def describe(self) -> str:
        hours = " all day" if (self.start, self.end) == (0, 1440) else \
            f" {_hhmm(self.start)}-{_hhmm(self.end)}"
        return f"{_day_list(self.days)}{hours} {self.tz.key}"


@dataclass(frozen=True)
class Dated:
    """From one instant to another; with ``yearly`` the month-days repeat every year."""

    start: dt.datetime | None
    end: dt.datetime | None
    yearly: tuple[tuple[int, int], tuple[int, int]] | None
    tz: ZoneInfo
    text: str

    def intervals(self, lo: dt.datetime, hi: dt.datetime) -> Iterator[Interval]:
        if self.yearly is None:
            assert self.start is not None and self.end is not None
            if self.end > lo and self.start < hi:
                yield self.start, self.end
            return
        (m1, d1), (m2, d2) = self.yearly
        for year in range(lo.astimezone(self.tz).year - 1, hi.astimezone(self.tz).year + 1):
            try:
                first = dt.date(year, m1, d1)
                last = dt.date(year + ((m2, d2) < (m1, d1)), m2, d2)
            except ValueError:  # 02-29 outside a leap year
                continue
            start, end = _utc(first, 0, self.tz), _utc(last, 1440, self.tz)
            if end > lo and start < hi:
                yield start, end

    def describe(self) -> str:
        return f"{self.text} {self.tz.key}" + (" every year" if self.yearly else "")


@dataclass(frozen=True)
class AllowWindow:
    rule: Weekly
    emergency: bool  # only emergency deploys (acknowledged ones) may go out in it
    preferred: bool = False  # a deploy outside it still goes, with a warning


@dataclass(frozen=True)
class Blackout:
    rule: Weekly | Dated
    reason: str
    emergency: bool = False  # an acknowledged emergency deploy may go out during it


@dataclass(frozen=True)
class Decision:
    """Whether a deploy may start at ``at``, why, and when it may (next) start and must end."""

    at: dt.datetime
    open: bool
    reason: str
    emergency: bool  # closed, but an acknowledged emergency deploy may go
    window: tuple[dt.datetime, dt.datetime, ZoneInfo] | None  # current or next allowed window
    warning: str = ""  # open, but outside every preferred window


@dataclass(frozen=True)
class DeployWindows:
    """An environment's allowed windows (none: always allowed) and blackouts."""

    allow: tuple[AllowWindow, ...]
    blackout: tuple[Blackout, ...]
    tz: ZoneInfo  # ``windows.tz``: the zone of entries without their own, and of messages

    @property
    def _regular(self) -> list[AllowWindow]:
        """The windows a deploy must be inside (none: always, outside blackouts). Preferred
        windows only warn; emergency windows need an acknowledgement."""
        return [w for w in self.allow if not w.emergency and not w.preferred]

    @property
    def _restricted(self) -> bool:
        """Whether deploys must be inside a window: there are regular windows, or only
        emergency ones (every other time is closed). With preferred windows and no regular
        ones, any time outside blackouts and emergency windows is open (with a warning
        outside the preferred ones)."""
        return bool(self._regular) or (bool(self.allow)
                                       and not any(w.preferred for w in self.allow))

    def decide(self, at: dt.datetime) -> Decision:
        at = at.astimezone(UTC)
        window = self._next_allowed(at)
        if window is not None and window[0] == at:
            inside = next((w.rule.describe() + (" (preferred)" if w.preferred else "")
                           for w in (*self._regular, *(w for w in self.allow if w.preferred))
                           if _contains(w.rule, at)), None)
            reason = f"inside {inside}" if inside else "no deploy windows restrict it"
            return Decision(at, True, reason, False, window, self._outside_preferred(at))
        blackouts = [b for b in self.blackout if _contains(b.rule, at)]
        emergency = next((w for w in self.allow if w.emergency and _contains(w.rule, at)), None)
        if blackouts:
            # An emergency acknowledgement lifts blackouts that allow it, not the windows:
            # the instant must still be inside a window (or an emergency window).
            in_window = not self._restricted or emergency is not None or any(
                _contains(w.rule, at) for w in self._regular)
            liftable = in_window and all(b.emergency for b in blackouts)
            first = blackouts[0]
            reason = f"inside blackout '{first.reason}' ({first.rule.describe()})"
            return Decision(at, False, reason + (", which allows emergency deploys"
                                                 if liftable else ""), liftable, window)
        if emergency is not None:
            return Decision(at, False, f"inside {emergency.rule.describe()}, which is for "
                            f"emergency deploys only", True, window)
        windows = ", ".join(w.rule.describe() for w in self._regular)
        return Decision(at, False, f"outside the deploy windows ({windows or 'none'})", False,
                        window)

    def _outside_preferred(self, at: dt.datetime) -> str:
        preferred = [w for w in self.allow if w.preferred]
        if not preferred or any(_contains(w.rule, at) for w in preferred):
            return ""
        return (f"outside the preferred deploy windows "
                f"({', '.join(w.rule.describe() for w in preferred)})")

    def _next_allowed(self, at: dt.datetime) -> tuple[dt.datetime, dt.datetime, ZoneInfo] | None:
        """The first stretch at or after ``at`` inside an allowed window and no blackout."""
        horizon = at + HORIZON
        candidates = sorted((s, e, w.rule.tz) for w in self._regular
                            for s, e in w.rule.intervals(at, horizon)) \
            if self._restricted else [(at, horizon, self.tz)]
        # Unrestricted, an emergency window is the one time that is not open to all.
        closed = [*(b.rule for b in self.blackout),
                  *(() if self._restricted else (w.rule for w in self.allow if w.emergency))]
        blocks = sorted(interval for rule in closed for interval in rule.intervals(at, horizon))
        for start, end, tz in candidates:
            start = max(start, at)
            moved = True
            while moved:
                moved = False
                for block_start, block_end in blocks:
                    if block_start <= start < block_end:
                        start, moved = block_end, True
            if start < end:
                end = min([end, *(s for s, _ in blocks if start < s < end)])
                return start, end, tz
        return None


def _contains(rule: Rule, at: dt.datetime) -> bool:
    return any(s <= at < e for s, e in rule.intervals(at, at + dt.timedelta(microseconds=1)))


def _when(moment: dt.datetime, tz: ZoneInfo) -> str:
    local = moment.astimezone(tz)
    return f"{local:%a %Y-%m-%d %H:%M} {tz.key}"


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + \
        [f"{minutes}m"] * bool(minutes and not days)
    return " ".join(parts) or "under a minute"


def describe_window(decision: Decision) -> str:
    """``Mon 2026-11-23 14:00 UTC until 17:00 (in 2d 23h)`` for the decision's window."""
    if decision.window is None:
        return f"no allowed window in the next {HORIZON.days} days"
    start, end, tz = decision.window
    if end - start >= HORIZON - dt.timedelta(days=1):
        until = "onwards"
    else:
        local_end = end.astimezone(tz)
        same_day = local_end.date() == start.astimezone(tz).date()
        until = f"until {local_end:%H:%M}" if same_day else f"until {_when(end, tz)}"
    text = f"{_when(start, tz)} {until}"
    if start > decision.at:
        text += f" (in {_span((start - decision.at).total_seconds())})"
    return text


# --- parsing ------------------------------------------------------------------------------

def parse_tz(name: Any, node: YamlMap, key: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise error_at(f"unknown time zone {name!r}{suggest(str(name), available_timezones())} "
                     f"(use an IANA name such as UTC or Europe/Berlin)", node, key,
                     where) from None


def _days(value: Any, node: YamlMap, where: str) -> frozenset[int]:
    items = value if isinstance(value, list) else [value]
    days: set[int] = set()
    for item in items:
        text = str(item).strip().lower()
        first, _, last = text.partition("-")
        try:
            a = _day(first)
            b = _day(last) if last else a
        except KeyError as exc:
            raise error_at(f"unknown weekday {exc.args[0]!r}{suggest(exc.args[0], DAY_NAMES)}; "
                         f"use {', '.join(DAY_NAMES)} or a range like mon-thu", node, "days",
                         where) from None
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    if not days:
        raise error_at("an empty list of days never matches", node, "days", where)
    return frozenset(days)


def _day(text: str) -> int:
    if text in DAY_NAMES:
        return DAY_NAMES.index(text)
    if text in _FULL_NAMES:
        return _FULL_NAMES.index(text)
    raise KeyError(text)


def _minutes(node: YamlMap, key: str, default: int, where: str) -> int:
    if key not in node:
        return default
    value = node[key]
    if isinstance(value, int) and not isinstance(value, bool):
        raise error_at(f"{value!r} is not a time of day; quote it, e.g. \"14:00\" (unquoted, "
                     f"YAML reads 14:00 as the number 840)", node, key, where)
    match = _TIME.match(str(value).strip())
    if not match:
        raise error_at(f"{value!r} is not a time of day (use \"HH:MM\", 00:00 to 24:00)", node,
                     key, where)
    if not match.group(1):
        return 1440
    return int(match.group(1)) * 60 + int(match.group(2))


def _weekly(node: YamlMap, where: str, tz: ZoneInfo) -> Weekly:
    start, end = _minutes(node, "start", 0, where), _minutes(node, "end", 1440, where)
    if start == end or (start == 1440):
        raise error_at(f"start {_hhmm(start)} and end {_hhmm(end)} make an empty window", node,
                     "end", where)
    days = _days(node["days"], node, where) if "days" in node else frozenset(range(7))
    return Weekly(days=days, start=start, end=end, tz=tz)


def _instant(value: Any, node: YamlMap, key: str, where: str, tz: ZoneInfo
             ) -> tuple[dt.datetime | None, tuple[int, int] | None, dt.date | None]:
    """(instant, yearly month-day, whole day) for a ``from``/``to`` value."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=tz)
        return moment.astimezone(UTC), None, None
    if isinstance(value, dt.date):
        return _utc(value, 0, tz), None, value
    text = str(value).strip()
    month_day = _MONTH_DAY.match(text)
    if month_day:
        pair = (int(month_day.group(1)), int(month_day.group(2)))
        try:
            dt.date(2000, *pair)
        except ValueError:
            raise error_at(f"{text!r} is not a month-day", node, key, where) from None
        return None, pair, None
    try:
        if re.fullmatch(r"\d{4}-\d\d-\d\d", text):
            day = dt.date.fromisoformat(text)
            return _utc(day, 0, tz), None, day
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise error_at(f"{value!r} is not a date (2026-12-15), a date and time "
                     f"(2026-12-15T18:00, with an optional offset) or a yearly month-day "
                     f"(12-15)", node, key, where) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    return moment.astimezone(UTC), None, None


def _dated(node: YamlMap, where: str, tz: ZoneInfo) -> Dated:
    for key in ("from", "to"):
        if key not in node:
            raise error_at("a dated blackout needs 'from' and 'to' (or use 'days')", node, key,
                         where)
    start, start_md, _ = _instant(node["from"], node, "from", where, tz)
    end, end_md, end_day = _instant(node["to"], node, "to", where, tz)
    text = f"{node['from']} - {node['to']}"
    if (start_md is None) != (end_md is None):
        raise error_at("'from' and 'to' must both be yearly month-days (12-15) or both dates",
                     node, "to", where)
    if start_md is not None and end_md is not None:
        return Dated(None, None, (start_md, end_md), tz, text)
    assert start is not None and end is not None
    if end_day is not None:  # a date in 'to' includes that whole day
        end = _utc(end_day, 1440, tz)
    if start >= end:
        raise error_at(f"'from' ({node['from']}) is after 'to' ({node['to']})", node, "from",
                     where)
    return Dated(start, end, None, tz, text)


def parse_windows(node: YamlMap, where: str) -> DeployWindows:
    """A :class:`DeployWindows` from an environment's ``windows:`` (already schema-checked)."""
    default_tz = parse_tz(node["tz"], node, "tz", where) if "tz" in node else ZoneInfo("UTC")
    allow: list[AllowWindow] = []
    for index, entry in enumerate(node.get("allow", YamlList())):
        entry_where = f"{where}.allow[{index}]"
        tz = parse_tz(entry["tz"], entry, "tz", entry_where) if "tz" in entry else default_tz
        if entry.get("emergency") and entry.get("preferred"):
            raise error_at("a window is either for emergencies or preferred, not both", entry,
                           "preferred", entry_where)
        allow.append(AllowWindow(_weekly(entry, entry_where, tz),
                                 bool(entry.get("emergency", False)),
                                 bool(entry.get("preferred", False))))
    blackout: list[Blackout] = []
    for index, entry in enumerate(node.get("blackout", YamlList())):
        entry_where = f"{where}.blackout[{index}]"
        tz = parse_tz(entry["tz"], entry, "tz", entry_where) if "tz" in entry else default_tz
        if "days" in entry or "start" in entry:
            for key in ("from", "to"):
                if key in entry:
                    raise error_at("a blackout has either 'days' (weekly) or 'from'/'to' "
                                 "(dates), not both", entry, key, entry_where)
            rule: Weekly | Dated = _weekly(entry, entry_where, tz)
        else:
            rule = _dated(entry, entry_where, tz)
        blackout.append(Blackout(rule, str(entry.get("reason", "blackout")),
                                 entry.get("emergency") == "allowed"))
    return DeployWindows(tuple(allow), tuple(blackout), default_tz)
