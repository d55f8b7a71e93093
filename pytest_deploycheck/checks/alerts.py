"""The check type ``alerts``: no alert firing, over a Prometheus, Alertmanager or Datadog source.

    - name: no critical alerts
      kind: health
      alerts:
        source: alertmanager
        match: {severity: critical|page}        # labels, each a regex of the whole value
        ignore: [Watchdog, {alertname: "Disk.*", instance: db-2}]
        states: [active]                        # default: what each source calls firing

It fails when an alert is left that matches ``match`` (every alert, without it), is not ignored
by any ``ignore`` entry (an alert name, or labels that must all match), and is in one of
``states``. It never passes without asking: a source that cannot answer fails the check.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..inputs.located import error_at
from ..inputs.yamlfile import YamlMap
from ..metrics import Alert, AlertSource, MetricQueryError
from ..secrets import Redactor
from .base import (
    Attachment,
    Check,
    CheckInstance,
    CheckResult,
    Evidence,
    ParseContext,
    RunContext,
    Templates,
    source_at,
)
from .metric import PoolFetch
from .retry import Retry, own_retry, run_retrying

if TYPE_CHECKING:
    from ..environments import Environment
    from ..runtime.clients import ClientPool

SHOWN_ALERTS = 10

Matcher = Mapping[str, re.Pattern[str]]  # label -> a regex its whole value must match


def matches(matcher: Matcher, alert: Alert) -> bool:
    return all(pattern.fullmatch(alert.labels.get(label, "")) for label, pattern in
               matcher.items())


@dataclass(frozen=True)
class AlertsSpec:
    source: str
    match: Matcher
    ignore: tuple[Matcher, ...]
    states: tuple[str, ...] | None  # None: the source's default
    retry: Retry | None = None  # until the alerts resolve
    type: str = "alerts"

    read_only = True
    waits = False
    template_names: frozenset[str] = frozenset()

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        where = f"{check.where}.alerts"
        source = source_at(env, self.source, check, "alerts", f"{where}.source")
        states = getattr(source, "alert_states", None)
        if states is None:
            raise ConfigError(f"source '{self.source}' in environment '{env.name}' is "
                              f"{source.describe()}, which lists no alerts: an alerts check "
                              f"needs a prometheus, alertmanager or datadog source",
                              file=check.file, line=check.line_of("alerts"),
                              key=f"{where}.source")
        unknown = [state for state in self.states or () if state not in states]
        if unknown:
            raise ConfigError(f"state {unknown[0]!r} is not one of {source.describe()}'s: "
                              f"{', '.join(states)}", file=check.file,
                              line=check.line_of("alerts"), key=f"{where}.states")

    def services(self) -> list[str]:
        return [f"alerts: {self.source}"]

    def calls(self) -> list[str]:
        return []

    def companion(self, name: str) -> None:
        return None

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        if not isinstance(result, AlertsResult):
            return []
        rows = [{"verdict": verdict, "name": alert.name, "state": alert.state,
                 "labels": dict(alert.labels), "since": alert.since, "summary": alert.summary}
                for verdict, alert in result.judged]
        text = json.dumps({"source": result.source, "error": result.error or None,
                           "alerts": rows}, indent=2)
        return [Attachment("alerts", redactor.redact(text))]


@dataclass
class AlertsResult:
    outcome: str
    reason: str
    source: str
    # (counted | ignored | not matched | other state | unknown state, alert)
    judged: list[tuple[str, Alert]]
    error: str
    duration: float
    note: str = ""
    attempts: int = 1

    @property
    def firing(self) -> list[Alert]:
        return [alert for verdict, alert in self.judged if verdict == "counted"]

    def details(self) -> dict[str, Any]:
        return {"source": self.source, "duration": self.duration, "error": self.error or None,
                "attempts": self.attempts,
                "firing": [alert.describe() for alert in self.firing],
                "ignored": [a.name for verdict, a in self.judged if verdict == "ignored"]}

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        lines = [*instance.failure_header(), f"  source: {self.source}"]
        firing = self.firing
        lines += [f"  {alert.describe()}" for alert in firing[:SHOWN_ALERTS]]
        if len(firing) > SHOWN_ALERTS:
            lines.append(f"  ({len(firing) - SHOWN_ALERTS} more)")
        lines.append(f"  FAILED {self.reason}")
        if self.attempts > 1:
            lines.append(f"  (last of {self.attempts} attempts)")
        return redactor.redact("\n".join(lines))


def judge(spec: AlertsSpec, states: tuple[str, ...], known: tuple[str, ...],
          alerts: list[Alert]) -> list[tuple[str, Alert]]:
    out = []
    for alert in alerts:
        if not matches(spec.match, alert):
            verdict = "not matched"
        elif any(matches(one, alert) for one in spec.ignore):
            verdict = "ignored"
        elif alert.state not in known:
            verdict = "unknown state"
        elif alert.state not in states:
            verdict = "other state"
        else:
            verdict = "counted"
        out.append((verdict, alert))
    return out


class AlertsRunner:
    def __init__(self, pool: ClientPool, sleep: Callable[[float], None]) -> None:
        self.pool, self.sleep = pool, sleep

    def run(self, instance: CheckInstance) -> AlertsResult:
        spec = instance.check.spec
        assert isinstance(spec, AlertsSpec)
        return run_retrying(lambda: self._once(instance), spec.retry, instance.check.timeout,
                            self.sleep)

    def _once(self, instance: CheckInstance) -> AlertsResult:
        check = instance.check
        spec = check.spec
        assert isinstance(spec, AlertsSpec)
        source = instance.env.metric_source(spec.source)
        assert hasattr(source, "alerts")  # resolved at collection
        alert_source: AlertSource = source  # type: ignore[assignment]
        states = spec.states or alert_source.default_states
        shown = f"{spec.source} ({source.describe()})"
        timeout = check.timeout if check.timeout is not None else source.timeout
        started = time.monotonic()
        try:
            found = alert_source.alerts(timeout, PoolFetch(self.pool, instance.env))
        except MetricQueryError as exc:
            return AlertsResult("failed", f"cannot list alerts: {exc}", shown, [], str(exc),
                                time.monotonic() - started)
        judged = judge(spec, states, alert_source.alert_states, found)
        result = AlertsResult("passed", "", shown, judged, "", time.monotonic() - started)
        strange = [alert for verdict, alert in judged if verdict == "unknown state"]
        if strange:
            # Not knowing what a state means, the check cannot say nothing fires.
            result.outcome = "failed"
            result.reason = (f"alert {strange[0].name or '(no name)'} is in state "
                             f"{strange[0].state!r}, which {source.describe()} does not have "
                             f"({', '.join(alert_source.alert_states)})")
            return result
        firing = result.firing
        ignored = sorted({alert.name for verdict, alert in judged if verdict == "ignored"})
        if firing:
            names = sorted({alert.name for alert in firing})
            result.outcome = "failed"
            result.reason = (f"{len(firing)} alert(s) {'/'.join(states)}: "
                             f"{', '.join(names[:SHOWN_ALERTS])}")
        unmatched = [alert for verdict, alert in judged
                     if verdict == "not matched" and alert.state in states]
        notes = [f"ignored: {', '.join(ignored)}"] if ignored else []
        if unmatched and not firing:  # a misspelt label in `match` would hide every alert
            notes.append(f"{len(unmatched)} {'/'.join(states)} alert(s) left out by 'match': "
                         f"{', '.join(sorted({alert.name for alert in unmatched}))}")
            labels = {label for alert in found for label in alert.labels}
            absent = sorted(set(spec.match) - labels)
            if absent:
                result.outcome = "warned"
                result.reason = (f"no alert has the label {absent[0]!r} that 'match' names "
                                 f"(misspelt?), so 'match' leaves out every alert; labels "
                                 f"seen: {', '.join(sorted(labels)[:15])}")
        result.note = "; ".join(notes)
        return result


class _AlertsType:
    """Checks of any kind that ask a source which alerts fire (``alerts:``)."""

    name = "alerts"
    templates = Templates(values=())
    keys = frozenset(("alerts", "retry"))

    def keys_for(self, kind: str) -> frozenset[str]:
        return self.keys

    def parse(self, node: YamlMap, at: ParseContext) -> AlertsSpec | None:
        if "alerts" not in node:
            return None
        alerts = node["alerts"]
        where = at.inner("alerts")
        ignore = []
        for index, entry in enumerate(alerts.get("ignore", [])):
            if isinstance(entry, str):
                ignore.append(_matcher({"alertname": entry}, alerts["ignore"], index,
                                       f"{where}.ignore"))
            else:
                ignore.append(_matcher(entry, alerts["ignore"], index, f"{where}.ignore"))
        for index, one in enumerate(ignore):
            if all(all(pattern.fullmatch(sample) for sample in _ANY_LABEL_VALUES)
                   for pattern in one.values()):
                raise error_at("this entry ignores every alert, so the check could never fail; "
                               "name the alerts to ignore", alerts["ignore"], index,
                               f"{where}.ignore")
        states = alerts.get("states")
        return AlertsSpec(
            source=alerts["source"],
            match=_matcher(alerts.get("match", {}), alerts, "match", where),
            ignore=tuple(ignore), states=tuple(states) if states is not None else None,
            retry=own_retry(node, at.where))

    def runner(self, context: RunContext) -> AlertsRunner:
        return AlertsRunner(context.pool, context.sleep)


def _matcher(labels: Mapping[str, Any], node: Any, key: str | int, where: str) -> Matcher:
    out = {}
    for label, pattern in labels.items():
        try:
            out[str(label)] = re.compile(str(pattern))
        except re.error as exc:
            raise error_at(f"bad regex {pattern!r} for label '{label}': {exc}", node, key,
                           where) from None
    return out


# Values any label may have: an ignore entry whose patterns match them all ignores everything.
_ANY_LABEL_VALUES = ("a", "HighErrorRate", "critical", "db-1", "us-east-1", "Any value 42")

TYPE = _AlertsType()
