"""What a ``kind: metric`` check asks (SPEC §4), parsed once at collection."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError
from ..inputs.yamlfile import YamlMap, error_at
from ..units import (
    RelativeLimit,
    format_duration,
    parse_duration,
    parse_quantity,
    parse_relative,
    parse_threshold,
)

AGGREGATES: Mapping[str, Callable[[Sequence[float]], float]] = {
    "max": max, "min": min, "avg": statistics.fmean, "last": lambda values: values[-1],
}
# How several series become one: "each" judges every series on its own.
SERIES_COMBINE: Mapping[str, Callable[[Sequence[float]], float] | None] = {
    "each": None, "sum": math.fsum, "avg": statistics.fmean, "max": max, "min": min,
}
NO_DATA = ("fail", "pass", "skip", "inconclusive")
NON_FINITE = ("no_data", "fail")
DEFAULT_ERROR_LIMIT = 4  # Argo Rollouts' consecutiveErrorLimit default


class Rule(Protocol):
    """Something a value must satisfy: a threshold, a range, a baseline limit."""

    def check(self, value: float) -> bool: ...
    def __str__(self) -> str: ...


@dataclass(frozen=True)
class Between:
    """``between: [low, high]``, both ends included, with units like thresholds."""

    low: float
    high: float
    text: str

    def check(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Observe:
    """Live polling, Argo-style: measure every ``interval`` for ``duration``."""

    duration: float
    interval: float
    failure_limit: int
    error_limit: int

    @property
    def count(self) -> int:
        """Measurements taken: at the start, then every interval until ``duration``."""
        return int(self.duration / self.interval + 1e-9) + 1


@dataclass(frozen=True)
class MetricSpec:
    source: str
    query: str
    rule: Rule | None  # threshold or between; None when only a baseline judges
    window: float | None
    step: float | None
    aggregate: str | None
    series: str | None
    observe: Observe | None
    no_data: str
    non_finite: str
    baseline: RelativeLimit | None

    def describe_rule(self) -> str:
        if self.rule is None:
            return "no threshold (baseline only)"
        scope = ""
        if self.window is not None:
            scope = (f" ({self.aggregate} of the last {format_duration(self.window)})"
                     if self.aggregate else
                     f" (every sample of the last {format_duration(self.window)})")
        return f"{self.rule}{scope}"


METRIC_KEYS = ("source", "query", "threshold", "between", "window", "step", "aggregate",
               "series", "observe", "no_data", "non_finite", "baseline")


def _duration(node: YamlMap, key: str, where: str, positive: bool = True) -> float | None:
    if key not in node:
        return None
    try:
        value = parse_duration(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None
    if positive and value <= 0:
        raise error_at(f"{key} must be longer than 0", node, key, where)
    return value


def _rule(node: YamlMap, where: str) -> Rule | None:
    if "threshold" in node and "between" in node:
        raise error_at("use either 'threshold' or 'between', not both", node, "between", where)
    if "threshold" in node:
        try:
            return parse_threshold(node["threshold"])
        except ValueError as exc:
            raise error_at(str(exc), node, "threshold", where) from None
    if "between" in node:
        pair = node["between"]
        try:
            low, high = (parse_quantity(value) for value in pair)
        except ValueError as exc:
            raise error_at(str(exc), node, "between", where) from None
        if low > high:
            raise error_at(f"between: {pair[0]} is above {pair[1]}; write [low, high]", node,
                         "between", where)
        return Between(low, high, f"between {pair[0]} and {pair[1]}")
    return None


def _observe(node: YamlMap, where: str, timeout: float | None) -> Observe | None:
    spec = node.get("observe")
    if spec is None:
        return None
    inner = f"{where}.observe"
    duration = _duration(spec, "duration", inner)
    interval = _duration(spec, "interval", inner)
    assert duration is not None and interval is not None  # required by the schema
    if interval > duration:
        raise error_at(f"interval ({format_duration(interval)}) is longer than the duration "
                     f"({format_duration(duration)})", spec, "interval", inner)
    if timeout is not None and timeout <= duration:
        raise error_at(f"the check's timeout ({format_duration(timeout)}) ends the observation "
                     f"before its duration ({format_duration(duration)}); raise or drop it",
                     node, "timeout", where)
    return Observe(duration=duration, interval=interval,
                   failure_limit=spec.get("failure_limit", 0),
                   error_limit=spec.get("error_limit", DEFAULT_ERROR_LIMIT))


def parse_metric(node: YamlMap, where: str, timeout: float | None) -> MetricSpec:
    """The metric part of a check; raises :class:`ConfigError` naming file, line and key."""
    rule = _rule(node, where)
    baseline = None
    if "baseline" in node:
        try:
            baseline = parse_relative(node["baseline"]["relative"])
        except ValueError as exc:
            raise error_at(str(exc), node["baseline"], "relative", f"{where}.baseline") from None
    if rule is None and baseline is None:
        raise ConfigError("a metric check needs 'threshold', 'between' or 'baseline'",
                          file=node.file, line=node.line, key=where)
    window = _duration(node, "window", where)
    step = _duration(node, "step", where)
    if step is not None and window is None:
        raise error_at("'step' only applies with 'window'", node, "step", where)
    if window is not None and step is not None and step > window:
        raise error_at(f"step ({format_duration(step)}) is longer than the window "
                     f"({format_duration(window)})", node, "step", where)
    if "aggregate" in node and window is None:
        raise error_at("'aggregate' summarises the samples of a 'window'; add a window", node,
                     "aggregate", where)
    return MetricSpec(
        source=node.get("source", "default"), query=node["query"], rule=rule, window=window,
        step=step, aggregate=node.get("aggregate"), series=node.get("series"),
        observe=_observe(node, where, timeout), no_data=node.get("no_data", "fail"),
        non_finite=node.get("non_finite", "no_data"), baseline=baseline)
