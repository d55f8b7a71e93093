"""What every metric source shares: samples, series, errors, and the interface a source offers.

A source turns a query into series of samples. HTTP sources do not send requests themselves: the
check runner hands them a :class:`Fetch` bound to the run's shared clients, so a source module is
only "which URL, which parameters, and how to read the answer".
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import CheckError
from ..inputs.endpoints import Service
from ..inputs.located import At
from ..inputs.yamlfile import YamlMap
from ..jsondoc import JsonBodyError, NotJsonError, loads
from ..units import is_clock_time, parse_quantity


@dataclass(frozen=True)
class Sample:
    timestamp: float  # Unix seconds
    value: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


@dataclass(frozen=True)
class Series:
    """The samples of one labelled series (labels empty for a scalar)."""

    labels: str
    samples: tuple[Sample, ...]


class MetricQueryError(CheckError):
    """The source could not answer: unreachable, timed out, refused the query, bad answer.

    Counted as an error, never as a threshold breach.
    """


class NoHistory(MetricQueryError):
    """The source only knows the current value, so it cannot answer a ``window`` query."""


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self, what: str) -> Any:
        try:
            return loads(self.body)
        except NotJsonError:
            snippet = self.body[:200].decode(errors="replace")
            raise MetricQueryError(f"{what} answered {self.status} with a body that is not JSON: "
                                   f"{snippet!r}") from None
        except JsonBodyError as exc:  # JSON, but with no one reading to judge
            raise MetricQueryError(f"{what} answered {self.status} with a body that is not "
                                   f"usable: {exc}") from None


class Fetch(Protocol):
    """GET ``path`` (relative to ``endpoint.url``) with ``params`` and extra ``headers``.

    Raises :class:`MetricQueryError` with a one-line reason when no answer came back.
    """

    def __call__(self, endpoint: Service, path: str, params: Mapping[str, str],
                 headers: Mapping[str, str], timeout: float) -> Fetched: ...


class MetricSource(Protocol):
    """One configured source of an environment (``metrics:`` in environments.yaml)."""

    @property
    def name(self) -> str: ...

    @property
    def history(self) -> bool:
        """Whether the source can answer range queries (``window``)."""
        ...

    @property
    def timeout(self) -> float: ...

    def describe(self) -> str:
        """``prometheus http://…``: what the failure message names as the source."""
        ...

    def query_error(self, query: str) -> str | None:
        """Why ``query`` (with its ``{{ }}`` templates unrendered) can never work, when the
        source can tell before asking (at collection); ``None`` otherwise."""
        ...

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        """The current value(s) of ``query`` (at Unix time ``at``)."""
        ...

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        """Samples of ``query`` from ``start`` to ``end``; raises :class:`NoHistory` when the
        source has no history."""
        ...


@dataclass(frozen=True)
class Alert:
    """An alert or monitor a source reports, in one shape whatever the source: ``labels``
    include ``alertname`` (a Datadog monitor's name, with its tags as labels)."""

    name: str
    labels: Mapping[str, str]
    state: str
    since: str  # when it started, as the source wrote it ("" when unknown)
    summary: str  # its summary or description annotation, or message

    def describe(self) -> str:
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(self.labels.items())
                           if k != "alertname")
        since = f" since {self.since}" if self.since else ""
        summary = f": {self.summary}" if self.summary else ""
        return f"{self.state} {self.name} {{{labels}}}{since}{summary}"


class AlertSource(Protocol):
    """A source that also lists alerts (``alerts`` checks): Prometheus, Alertmanager, Datadog."""

    @property
    def name(self) -> str: ...

    @property
    def timeout(self) -> float: ...

    @property
    def alert_states(self) -> tuple[str, ...]:
        """The states its alerts can be in; the first ``default_states`` count by default."""
        ...

    @property
    def default_states(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...

    def alerts(self, timeout: float, fetch: Fetch) -> list[Alert]:
        """Every alert the source reports now, in any state; raises
        :class:`MetricQueryError` when it cannot tell."""
        ...


def text_of(value: Any) -> str:
    """A label or annotation value from an answer, as text."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def number(value: Any, what: str) -> float:
    """A sample value from an answer: a number, or a numeric string like ``"0.5"`` or ``"NaN"``.

    Raises :class:`MetricQueryError` naming ``what`` when it is neither.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise MetricQueryError(f"{what} is not a number: {snippet(value)}")
    if isinstance(value, str):
        try:
            return float(value)  # also "NaN", "+Inf", "1e-3"
        except ValueError:
            pass
        try:
            parse_quantity(value)
        except ValueError:
            raise MetricQueryError(f"{what} is not a number: {value[:80]!r}") from None
        # A threshold's unit says what its written number means, so "800ms" read as 0.8
        # passed "< 500" (meant as milliseconds, as the value was written): refused instead
        # of guessing which unit the rule is in.
        raise MetricQueryError(f"{what} has a unit ({value[:80]!r}): a metric value is a plain "
                               f"number, and the threshold's unit says what its limit means")
    return float(value)


def timestamp(value: Any, what: str) -> float:
    """A sample's time from an answer (Unix seconds): a finite number a date can be made of.

    A sample at no valid time is a malformed answer, not evidence: raises
    :class:`MetricQueryError` naming ``what``.
    """
    found = number(value, what)
    if not is_clock_time(found):
        raise MetricQueryError(f"{what} is not a time: {snippet(value)}")
    return found


def snippet(value: Any) -> str:
    """The start of a value from an answer, for a one-line reason."""
    return json.dumps(value, default=str)[:80]


@dataclass(frozen=True)
class SourceContext(At):
    """Where a source's configuration sits, the timeout it inherits from its environment, and
    the environment's name when it is protected."""

    timeout: float
    protected: str | None = None


class SourceType(Protocol):
    """A module that provides one type of metric source."""

    SCHEMA: Mapping[str, Any]

    def parse(self, name: str, node: YamlMap, context: SourceContext) -> MetricSource: ...
