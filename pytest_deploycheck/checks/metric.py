"""The check type ``metric``: what a ``kind: metric`` check asks (SPEC §4), and running it.

Parsed once at collection into a :class:`MetricSpec`; run by querying the source, judging
every sample, observing, no data, baselines.

A measurement is one query (instant, or a range over ``window``) judged against the check's
rules; a plain check takes one, an ``observe`` check one per interval, counting threshold
breaches and query errors apart as Argo Rollouts does. Everything judged is kept on the
:class:`MetricResult` for the failure message and for reports.
"""

from __future__ import annotations

import datetime
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import httpx

from ..environments import Environment
from ..errors import CheckError, ConfigError
from ..inputs.endpoints import Service, describe_error
from ..inputs.located import duration_at, error_at, threshold_at
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlMap
from ..metrics import Fetch, Fetched, MetricQueryError, MetricSource, Sample, Series
from ..runtime.clients import BodyError, ClientPool, read_body
from ..runtime.state import Baseline
from ..secrets import Redactor
from ..units import (
    RelativeLimit,
    format_duration,
    parse_duration,
    parse_quantity,
    parse_relative,
    utc_iso,
)
from .base import (
    Attachment,
    Chart,
    Check,
    CheckInstance,
    CheckResult,
    Evidence,
    ParseContext,
    RunContext,
    Templates,
    check_names,
    source_at,
)

AGGREGATES: Mapping[str, Callable[[Sequence[float]], float]] = {
    "max": max, "min": min, "avg": statistics.fmean, "last": lambda values: values[-1],
}
# How several series become one: "each" judges every series on its own.
SERIES_COMBINE: Mapping[str, Callable[[Sequence[float]], float] | None] = {
    "each": None, "sum": math.fsum, "avg": statistics.fmean, "max": max, "min": min,
}
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
    # Where the baseline comes from: None, the last passing run; "predeploy", the value this
    # check measured in this deploy's pre-deploy run; "before_deploy", the same query over
    # ``before_deploy`` seconds before the deploy started.
    baseline_from: str | None = None
    before_deploy: float | None = None
    # Set on the pre-deploy companion of a "predeploy" baseline: the check whose value it
    # records (it judges only the threshold).
    records_for: str | None = None

    type: str = "metric"

    # A metric query waits by design.
    waits = True

    @property
    def read_only(self) -> bool:
        """A metric query only reads (a ``command`` source is a query too); but one that
        compares with its pre-deploy companion runs at its item, after the companion (which
        comes first) has recorded, when a run has both."""
        return self.baseline_from != "predeploy"

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(names_in(self.query))

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        """The source exists in ``env`` and can answer the query; its names are known."""
        where = check.where
        source = source_at(env, self.source, check, "source", f"{where}.source")
        if self.baseline_from == "before_deploy" and not source.history:
            raise ConfigError(f"'before_deploy' needs a source with history, and "
                              f"'{self.source}' in environment '{env.name}' is "
                              f"{source.describe()}; use 'from: predeploy' to compare with the "
                              f"value measured before the deploy", file=check.file,
                              line=check.line_of("baseline"), key=f"{where}.baseline")
        if self.window is not None and not source.history:
            raise ConfigError(f"'window' needs a source with history, and '{self.source}' in "
                              f"environment '{env.name}' is {source.describe()}; use 'observe' "
                              f"to watch it live instead", file=check.file,
                              line=check.line_of("window"), key=f"{where}.window")
        used = self.template_names
        check_names(dict.fromkeys(used, (check.line_of("query"), f"{where}.query")), known, env,
                    check.file)
        problem = source.query_error(self.query)
        if problem:
            raise ConfigError(f"{problem} (for source '{self.source}', {source.describe()})",
                              file=check.file, line=check.line_of("query"), key=f"{where}.query")

    def services(self) -> list[str]:
        return [f"metrics: {self.source}"]

    def calls(self) -> list[str]:
        return []

    def companion(self, name: str) -> MetricSpec | None:
        """With ``baseline: {from: predeploy}``: the same query in the pre-deploy phase,
        judged by the threshold alone, recording its value for check ``name``."""
        if self.baseline_from != "predeploy":
            return None
        return replace(self, baseline=None, baseline_from=None, records_for=name)

    def thresholds(self) -> list[tuple[str, float]]:
        """The rule's limits, as lines on a chart."""
        return _lines(self.rule)

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        """The query and rules, every sample judged (CSV), and a chart of them."""
        if not isinstance(result, MetricResult):
            return []
        rows = ["time (UTC),series,value,verdict,rule broken"]
        series: dict[str, list[tuple[float, float]]] = {}
        breaches: list[tuple[float, float]] = []
        for measurement in result.measurements:
            for judged in measurement.judged:
                # A sample within the threshold still breaches when its measurement's value
                # broke the baseline's limit: it is what made that value.
                broken = judged.failed_rule or (measurement.value_breach if judged.ok else "")
                verdict = "ignored" if judged.ok is None else "BREACH" if broken else "ok"
                # Masked before quoting: a secret with a '"' in it is doubled by the quoting,
                # and no longer found afterwards. A series' labels may hold one (a tenant).
                name = redactor.redact(judged.series)
                rows.append(f"{utc_iso(judged.sample.timestamp, 'seconds')},"
                            f"{_csv(name)},{judged.sample.value!r},{verdict},"
                            f"{_csv(redactor.redact(broken)) if broken else ''}")
                point = (judged.sample.timestamp, judged.sample.value)
                series.setdefault(name, []).append(point)
                if verdict == "BREACH":
                    breaches.append(point)
        summary = [f"source: {result.source}", f"query: {result.query}",
                   f"rules: {', '.join(result.rules)}"]
        if result.baseline is not None:
            summary.append(f"baseline: {result.baseline.value!r} ({result.baseline.recorded})")
        errors = [f"{utc_iso(m.at, 'seconds')}: {m.message}" for m in result.measurements
                  if m.message]
        return [Attachment("query", redactor.redact("\n".join([*summary, "", *errors]))),
                Attachment("samples", redactor.redact("\n".join(rows)), "csv"),
                Chart("chart", redactor.redact(result.query), sorted(series.items()),
                      self.thresholds(), limits=[(redactor.redact(f"baseline limit: {label}"),
                                                  value)
                                                 for label, value in _lines(result.value_rule)],
                      breaches=breaches,
                      marks=[("observation start", result.measurements[0].at)]
                      if result.observed and result.measurements else [])]

    def describe_rule(self) -> str:
        if self.rule is None:
            return "no threshold (baseline only)"
        scope = ""
        if self.window is not None:
            scope = (f" ({self.aggregate} of the last {format_duration(self.window)})"
                     if self.aggregate else
                     f" (every sample of the last {format_duration(self.window)})")
        return f"{self.rule}{scope}"


def _lines(rule: Rule | None) -> list[tuple[str, float]]:
    """A rule's limits, as ``(label, value)`` lines on a chart."""
    if rule is None:
        return []
    return [(str(rule), float(getattr(rule, name))) for name in ("limit", "low", "high")
            if isinstance(getattr(rule, name, None), (int, float))]


METRIC_KEYS = ("source", "query", "threshold", "between", "window", "step", "aggregate",
               "series", "observe", "no_data", "non_finite", "baseline")


def _rule(node: YamlMap, where: str) -> Rule | None:
    if "threshold" in node and "between" in node:
        raise error_at("use either 'threshold' or 'between', not both", node, "between", where)
    if "threshold" in node:
        return threshold_at(node, "threshold", where)
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
    duration = duration_at(spec, "duration", inner, positive=True)
    interval = duration_at(spec, "interval", inner, positive=True)
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
    baseline_from, before_deploy = None, None
    if "baseline" in node:
        spec = node["baseline"]
        try:
            baseline = parse_relative(spec["relative"])
        except ValueError as exc:
            raise error_at(str(exc), spec, "relative", f"{where}.baseline") from None
        if "from" in spec and "before_deploy" in spec:
            raise error_at("a baseline comes either 'from: predeploy' or 'before_deploy', not "
                           "both", spec, "before_deploy", f"{where}.baseline")
        if "from" in spec:
            baseline_from = "predeploy"
        if "before_deploy" in spec:
            baseline_from = "before_deploy"
            before_deploy = duration_at(spec, "before_deploy", f"{where}.baseline",
                                        positive=True)
    if rule is None and baseline is None:
        raise ConfigError("a metric check needs 'threshold', 'between' or 'baseline'",
                          file=node.file, line=node.line, key=where)
    window = duration_at(node, "window", where, positive=True)
    step = duration_at(node, "step", where, positive=True)
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
        non_finite=node.get("non_finite", "no_data"), baseline=baseline,
        baseline_from=baseline_from, before_deploy=before_deploy)


MAX_SAMPLES_SHOWN = 200
MAX_SAMPLES_KEPT = 1000


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


@dataclass(frozen=True)
class Judged:
    """One sample and what the rules made of it (``ok`` is None for an ignored NaN/Inf)."""

    series: str
    sample: Sample
    ok: bool | None
    failed_rule: str = ""


@dataclass
class Measurement:
    """One query and its verdict: ``ok``, ``breach``, ``error`` or ``no_data``."""

    at: float
    status: str
    message: str = ""
    judged: list[Judged] = field(default_factory=list)
    value: float | None = None
    value_breach: str = ""  # how the value broke the baseline's limit, if it did


@dataclass
class MetricResult:
    """The outcome of one metric check instance."""

    outcome: str  # passed | failed | skipped | inconclusive
    reason: str
    failure: str | None  # breach | error | no_data, when failed
    source: str
    query: str
    rules: list[str]
    baseline: Baseline | None
    measurements: list[Measurement]
    duration: float
    observed: bool = False  # measured repeatedly (``observe``)
    note: str = ""
    value_rule: Rule | None = None  # the baseline's limit on the value, when there was one
    # With ``observe``: measurements taken and planned, breaches, errors, seconds.
    observation: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def value(self) -> float | None:
        values = [m.value for m in self.measurements if m.value is not None]
        return statistics.fmean(values) if values else None

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        """The failure message: source, query, every sample judged, rules and baseline."""
        lines = instance.failure_header()
        lines += [f"  source: {self.source}", f"  query: {self.query}"]
        lines += [f"  rule: {rule}" for rule in self.rules]
        if self.baseline is not None:
            lines.append(f"  baseline: {_num(self.baseline.value)} (recorded "
                         f"{self.baseline.recorded})")
        shown = 0
        for number, measurement in enumerate(self.measurements, 1):
            if self.observed:
                lines.append(f"  measurement {number} at {utc_iso(measurement.at)}: "
                             f"{measurement.status}"
                             + (f" ({measurement.message})" if measurement.message else ""))
            for judged in measurement.judged:
                if shown >= MAX_SAMPLES_SHOWN:
                    break
                shown += 1
                verdict = {True: "ok", False: f"BREACH {judged.failed_rule}",
                           None: "ignored (not a finite number)"}[judged.ok]
                series = f"{judged.series} " if judged.series else ""
                lines.append(f"    {utc_iso(judged.sample.timestamp)}  {series}"
                             f"{_num(judged.sample.value)}  {verdict}")
        total = sum(len(m.judged) for m in self.measurements)
        if total > shown:
            lines.append(f"    … {total - shown} more samples not shown")
        lines.append(f"  FAILED {self.reason}")
        return redactor.redact("\n".join(lines))

    def details(self) -> dict[str, Any]:
        """Plain data for reports (crosses from xdist workers with the report)."""
        samples = [[j.sample.timestamp, j.sample.value, j.ok, j.series]
                   for m in self.measurements for j in m.judged][:MAX_SAMPLES_KEPT]
        return {"source": self.source, "query": self.query, "rules": self.rules,
                "baseline": self.baseline.value if self.baseline else None,
                "value": self.value, "failure": self.failure, "note": self.note,
                "measurements": [{"at": m.at, "status": m.status, "value": m.value,
                                  "message": m.message} for m in self.measurements],
                "samples": samples, "observation": self.observation}


class PoolFetch:
    """A :class:`~pytest_deploycheck.metrics.Fetch` over the run's shared clients, for one
    environment."""

    def __init__(self, pool: ClientPool, env: Environment) -> None:
        self.pool, self.env = pool, env

    def __call__(self, endpoint: Service, path: str, params: Mapping[str, str],
                 headers: Mapping[str, str], timeout: float) -> Fetched:
        client = self.pool.client(self.env, endpoint)
        started = time.perf_counter()
        try:
            with client.stream("GET", endpoint.url + path, params=params or None,
                               headers=dict(headers), timeout=timeout) as answer:
                body = read_body(answer, started, timeout)
                return Fetched(answer.status_code, answer.headers, body)
        except BodyError as exc:
            raise MetricQueryError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise MetricQueryError(describe_error(exc, timeout)) from None


def combine(series: list[Series], how: str | None, windowed: bool) -> list[Series]:
    """Several series made into one by ``how`` (``each`` keeps them apart).

    Without ``how``, more than one series is an error naming them: judging an arbitrary one of
    them would be a silent guess.
    """
    if len(series) <= 1 or how == "each":
        return series
    reducer = SERIES_COMBINE.get(how or "")
    if reducer is None:
        names = ", ".join(s.labels or "{}" for s in series[:5])
        more = f" and {len(series) - 5} more" if len(series) > 5 else ""
        raise MetricQueryError(f"the query returned {len(series)} series ({names}{more}); make "
                               f"it return one (e.g. sum(...)) or set 'series: each|sum|avg|max"
                               f"|min'")
    empty = next((s for s in series if not s.samples), None)
    if empty is not None and any(s.samples for s in series):
        # Listed with no sample (Datadog's null points): that series is unknown, not 0.
        raise MetricQueryError(f"series {empty.labels or '{}'} has no sample: 'series: {how}' "
                               f"would judge fewer series")
    if not windowed:
        latest = [s.samples[-1] for s in series if s.samples]
        if not latest:
            return []
        return [Series(f"{how} of {len(series)} series",
                       (Sample(max(p.timestamp for p in latest),
                               reducer([p.value for p in latest])),))]
    by_time: dict[float, list[float]] = {}
    for one in series:
        for sample in one.samples:
            by_time.setdefault(round(sample.timestamp, 3), []).append(sample.value)
    _refuse_gaps(series, sorted(by_time), how or "")
    return [Series(f"{how} of {len(series)} series",
                   tuple(Sample(t, reducer(values)) for t, values in sorted(by_time.items())))]


def _refuse_gaps(series: list[Series], times: list[float], how: str) -> None:
    """Raise when a series lacks a sample at a time between its first and last one.

    Combined over the series present, such a time would be judged on less evidence than the
    rule says: a pod that reported no errors for some minutes is unknown there, not 0, and
    its sum with the others could pass where the whole would not. A series that starts or
    ends inside the window did not exist outside its samples (a pod started or replaced), as
    PromQL's own sum() sees it, and is no gap.
    """
    for one in series:
        have = {round(sample.timestamp, 3) for sample in one.samples}
        if len(have) < 2:
            continue
        first, last = min(have), max(have)
        missing = next((t for t in times if first < t < last and t not in have), None)
        if missing is not None:
            raise MetricQueryError(f"series {one.labels or '{}'} has no sample at "
                                   f"{utc_iso(missing)} (a gap inside the window): 'series: "
                                   f"{how}' would judge fewer series there")


class MetricRunner:
    """Runs metric check instances. ``progress`` receives a line per observe measurement."""

    def __init__(self, context: RunContext, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.context = context
        self.pool, self.state, self.redactor = context.pool, context.state, context.redactor
        self.clock, self.wall, self.sleep = clock, wall, sleep

    def run(self, instance: CheckInstance) -> MetricResult:
        check, env = instance.check, instance.env
        spec = check.spec
        assert isinstance(spec, MetricSpec)
        started = self.clock()
        source = env.metric_source(spec.source)
        query = str(render(spec.query, instance.scope()))
        result = MetricResult(outcome="failed", reason="", failure=None,
                              source=f"{spec.source} ({source.describe()})", query=query,
                              rules=[spec.describe_rule()], baseline=None, measurements=[],
                              duration=0.0, observed=spec.observe is not None)
        missing = ""  # why a baseline of this deploy is not there: judged on the rest
        try:
            baseline = self._baseline(instance, spec, query, result)
        except CheckError as exc:
            result.reason, result.failure = str(exc), "error"
            return result
        except _NoBaseline as exc:
            baseline, missing = None, str(exc)
        rules: list[tuple[str, Rule]] = []
        if spec.rule is not None:
            rules.append((str(spec.rule), spec.rule))
        value_rule = None
        if spec.baseline is not None and baseline is not None:
            value_rule = spec.baseline.threshold(baseline.value)
            result.rules.append(f"value {value_rule}")
            result.value_rule = value_rule
        deadline = started + check.timeout if check.timeout is not None else None
        fetch = PoolFetch(self.pool, env)

        def measure() -> Measurement:
            return self._measure(source, spec, query, rules, value_rule, fetch, deadline)

        if spec.observe is None:
            result.measurements.append(measure())
            self._decide_once(result, spec)
        else:
            self._observe(result, spec, measure, instance.name)
        result.duration = self.clock() - started
        if missing and result.passed:  # nothing to compare with: never a pass
            result.outcome, result.reason = "inconclusive", missing
        elif missing:
            result.note = f"and no baseline: {missing}"
        if spec.records_for is not None and result.passed and result.value is not None:
            self._record_for_deploy(instance, spec, query, result)
        elif result.passed and spec.baseline is not None and result.value is not None \
                and spec.baseline_from is None:
            self._record(instance, query, result, baseline)
        return result

    def _deploy_id(self) -> str:
        deploy = self.context.deploy() if self.context.deploy else None
        if deploy is None or not deploy.id:
            raise _NoBaseline("no deploy id: pass --deploy-id (or run in CI, which gives one) "
                              "so that the pre- and post-deploy runs of one deploy meet")
        return deploy.id

    def _record_for_deploy(self, instance: CheckInstance, spec: MetricSpec, query: str,
                           result: MetricResult) -> None:
        """The pre-deploy companion: keep the value for its check's post-deploy run."""
        assert result.value is not None and spec.records_for is not None
        key = _baseline_id(instance, spec.records_for)
        try:
            deploy_id = self._deploy_id()
            kept = self.state.record_deploy(instance.env.name, deploy_id,
                                            value=(key, result.value, query))
        except (_NoBaseline, OSError, CheckError) as exc:
            # Unrecorded, the post-deploy run would have nothing to compare with.
            result.outcome, result.failure = "failed", "error"
            result.reason = f"could not record the pre-deploy value: {exc}"
            return
        note = f"recorded {_num(result.value)} as the pre-deploy value of deploy " \
               f"'{deploy_id}'" if kept == result.value else \
               f"the pre-deploy value of deploy '{deploy_id}' stays {_num(kept)}, recorded " \
               f"earlier (measured {_num(result.value)} now; a new deploy needs a new id)"
        result.note = f"{result.note}; {note}" if result.note else note

    def _baseline(self, instance: CheckInstance, spec: MetricSpec, query: str,
                  result: MetricResult) -> Baseline | None:
        if spec.baseline is None:
            return None
        if spec.baseline_from == "predeploy":
            return self._predeploy_baseline(instance, query, result)
        if spec.baseline_from == "before_deploy":
            return self._before_deploy_baseline(instance, spec, query, result)
        baseline = self.state.baseline(instance.env.name, _baseline_id(instance))
        if baseline is not None and baseline.query != query:
            result.note = (f"the query changed since the baseline was recorded "
                           f"({baseline.recorded}); the baseline is not used")
            return None
        result.baseline = baseline
        return baseline

    def _predeploy_baseline(self, instance: CheckInstance, query: str,
                            result: MetricResult) -> Baseline:
        deploy_id = self._deploy_id()
        try:
            found = self.state.deploy(instance.env.name, deploy_id).get("values", {}).get(
                _baseline_id(instance))
        except CheckError as exc:
            raise _NoBaseline(str(exc)) from None
        if not isinstance(found, dict) or not isinstance(found.get("value"), (int, float)):
            raise _NoBaseline(
                f"no pre-deploy value of this check for deploy '{deploy_id}' in "
                f"{self.state.folder}: run the pre-deploy gate (-m predeploy) with the same "
                f"--deploy-id first, and carry the state dir from that job to this one")
        if not self.state.same_query(found, query):
            raise _NoBaseline(f"the pre-deploy run of deploy '{deploy_id}' measured another "
                              f"query (the check or its values changed); nothing to compare "
                              f"with")
        baseline = Baseline(value=float(found["value"]),
                            recorded=f"in the pre-deploy run of deploy '{deploy_id}' at "
                                     f"{found.get('recorded')}",
                            query=query)
        result.baseline = baseline
        return baseline

    def _before_deploy_baseline(self, instance: CheckInstance, spec: MetricSpec, query: str,
                                result: MetricResult) -> Baseline:
        assert spec.before_deploy is not None
        deploy = self.context.deploy() if self.context.deploy else None
        started = deploy.started if deploy else None
        if started is None and deploy is not None and deploy.id:
            try:
                recorded = self.state.deploy(instance.env.name, deploy.id).get("started")
                started = datetime.datetime.fromisoformat(recorded) \
                    if isinstance(recorded, str) else None
            except (CheckError, ValueError) as exc:
                raise _NoBaseline(f"cannot read when the deploy started: {exc}") from None
        if started is None:
            raise _NoBaseline("no deploy start to compare before: pass --deploy-started, or "
                              "run the pre-deploy gate of this deploy with the same --deploy-id "
                              "(it records when the deploy may start) and carry the state dir")
        # Never later than now: a window "before the deploy" holds nothing after it.
        end = min(started.timestamp(), self.wall())
        begin = end - spec.before_deploy
        source = instance.env.metric_source(spec.source)
        step = spec.step or max(1.0, spec.before_deploy / 60)
        try:
            found = source.range(query, begin, end, step, source.timeout,
                                 PoolFetch(self.pool, instance.env))
            series = combine(found, spec.series, True)
        except MetricQueryError as exc:
            raise _NoBaseline(f"the baseline before the deploy could not be read: {exc}") \
                from None
        values = [s.value for one in series for s in one.samples if s.finite]
        if not values:
            raise _NoBaseline(f"no samples in the {format_duration(spec.before_deploy)} before "
                              f"the deploy started ({utc_iso(begin)} - {utc_iso(end)})")
        how = spec.aggregate or "avg"
        baseline = Baseline(
            value=AGGREGATES[how](values),
            recorded=f"as the {how} of {len(values)} samples in the "
                     f"{format_duration(spec.before_deploy)} before the deploy started: "
                     f"{utc_iso(begin)} - {utc_iso(end)}", query=query)
        result.baseline = baseline
        return baseline

    def _record(self, instance: CheckInstance, query: str, result: MetricResult,
                baseline: Baseline | None) -> None:
        assert result.value is not None
        try:
            self.state.record(instance.env.name, _baseline_id(instance), result.value, query)
        except (OSError, CheckError) as exc:
            result.note = f"could not record the baseline: {exc}"
            return
        if baseline is None:
            prefix = f"{result.note}; " if result.note else "no baseline yet: "
            if self.state.empty_at_start and not result.note:
                prefix = (f"no baseline: the state dir {self.state.folder} was empty (a fresh "
                          f"CI runner? carry it between runs: docs/how-to/baselines-in-ci.md); ")
            result.note = f"{prefix}recorded {_num(result.value)} as the baseline"

    def _measure(self, source: MetricSource, spec: MetricSpec, query: str,
                 rules: list[tuple[str, Rule]], value_rule: Rule | None, fetch: Fetch,
                 deadline: float | None) -> Measurement:
        now = self.wall()
        timeout = source.timeout
        if deadline is not None:
            timeout = max(min(timeout, deadline - self.clock()), 0.001)
        try:
            if spec.window is not None:
                step = spec.step or max(1.0, spec.window / 60)
                found = source.range(query, now - spec.window, now, step, timeout, fetch)
            else:
                found = source.instant(query, now, timeout, fetch)
            series = combine(found, spec.series, spec.window is not None)
        except MetricQueryError as exc:
            return Measurement(at=now, status="error", message=str(exc))
        return self._judge(now, series, spec, rules, value_rule)

    def _judge(self, now: float, series: list[Series], spec: MetricSpec,
               rules: list[tuple[str, Rule]], value_rule: Rule | None) -> Measurement:
        measurement = Measurement(at=now, status="ok")
        values: list[float] = []
        for one in series:
            samples = list(one.samples)
            finite = [s for s in samples if s.finite]
            if spec.non_finite == "no_data":
                measurement.judged += [Judged(one.labels, s, None) for s in samples
                                       if not s.finite]
                samples = finite
            if not samples:
                continue
            if spec.aggregate is not None:
                # Under ``non_finite: fail`` a NaN among the samples makes the aggregate NaN.
                aggregate = AGGREGATES[spec.aggregate]([s.value for s in samples]) \
                    if len(finite) == len(samples) else math.nan
                samples = [Sample(samples[-1].timestamp, aggregate)]
            for sample in samples:
                failed = "not a finite number" if not sample.finite else next(
                    (text for text, rule in rules if not rule.check(sample.value)), "")
                measurement.judged.append(Judged(one.labels, sample, not failed, failed))
                if sample.finite:
                    values.append(sample.value)
        judged = [j for j in measurement.judged if j.ok is not None]
        if not judged:
            measurement.status = "no_data"
            measurement.message = "the query returned no samples" if not measurement.judged \
                else "every sample was NaN or infinite"
            return measurement
        measurement.value = statistics.fmean(values) if values else None
        breaches = [j for j in judged if not j.ok]
        # Every rule broken is reported: the threshold's and the baseline's are different
        # problems (an absolute limit, a regression) with different fixes.
        problems = []
        if breaches:
            worst = breaches[0]
            problems.append(f"{len(breaches)} of {len(judged)} samples breach "
                            f"{worst.failed_rule} (first: {_num(worst.sample.value)} at "
                            f"{utc_iso(worst.sample.timestamp)})")
        if value_rule is not None and measurement.value is not None \
                and not value_rule.check(measurement.value):
            measurement.value_breach = f"value {_num(measurement.value)} breaches {value_rule}"
            problems.append(measurement.value_breach)
        if problems:
            measurement.status, measurement.message = "breach", "; ".join(problems)
        return measurement

    def _decide_once(self, result: MetricResult, spec: MetricSpec) -> None:
        measurement = result.measurements[0]
        if measurement.status == "ok":
            result.outcome = "passed"
        elif measurement.status == "no_data":
            self._no_data(result, spec, measurement.message)
        else:
            result.failure, result.reason = measurement.status, measurement.message

    def _no_data(self, result: MetricResult, spec: MetricSpec, message: str) -> None:
        result.outcome = {"fail": "failed", "pass": "passed", "skip": "skipped",
                          "inconclusive": "inconclusive"}[spec.no_data]
        result.reason = f"no data: {message} (no_data: {spec.no_data})"
        result.failure = "no_data" if result.outcome == "failed" else None
        if result.passed:
            # The one way a check passes on no evidence: said wherever passes are listed.
            result.note = f"passed without evidence (no_data: pass): {message}"

    def _observe(self, result: MetricResult, spec: MetricSpec,
                 measure: Callable[[], Measurement], label: str) -> None:
        observe = spec.observe
        assert observe is not None
        start = self.clock()
        breaches = errors = 0
        for index in range(observe.count):
            wait = start + index * observe.interval - self.clock()
            if wait > 0:
                self.sleep(wait)
            measurement = measure()
            result.measurements.append(measurement)
            if measurement.status == "breach" or (measurement.status == "no_data"
                                                  and spec.no_data == "fail"):
                breaches += 1
            elif measurement.status == "error":
                errors += 1
            if self.context.progress is not None:
                self.context.progress(f"{label}: measurement {index + 1}/{observe.count} "
                              f"{measurement.status} (value {_num(measurement.value)}); "
                              f"{breaches} breaches, {errors} errors so far")
            if breaches > observe.failure_limit or errors > observe.error_limit:
                break
        taken, seconds = len(result.measurements), self.clock() - start
        result.observation = {"taken": taken, "planned": observe.count, "breaches": breaches,
                              "errors": errors, "seconds": round(seconds, 3)}
        summary = (f"{breaches} breaches (failure_limit {observe.failure_limit}) and {errors} "
                   f"errors (error_limit {observe.error_limit}) in {taken} measurements over "
                   f"{format_duration(seconds)}")
        last_bad = next((m for m in reversed(result.measurements)
                         if m.status in ("breach", "error", "no_data")), None)
        detail = f"; last: {last_bad.message}" if last_bad and last_bad.message else ""
        if breaches > observe.failure_limit:
            result.failure, result.reason = "breach", summary + detail
        elif errors > observe.error_limit:
            result.failure, result.reason = "error", summary + detail
        elif all(m.status == "no_data" for m in result.measurements):
            self._no_data(result, spec, f"no measurement returned samples ({summary})")
        elif not any(m.status in ("ok", "breach") for m in result.measurements):
            # Errors (within error_limit) and empty answers only: nothing was judged, so
            # nothing says the metric is fine.
            self._no_data(result, spec, f"no valid measurement ({summary}{detail})")
        else:
            result.outcome, result.reason = "passed", summary


def _baseline_id(instance: CheckInstance, name: str | None = None) -> str:
    """What a check's baselines are kept under: its id (or check ``name``'s of its suite) and
    its parameters."""
    suffix = f"[{instance.params.id}]" if instance.params else ""
    check = instance.check
    return (check.id if name is None else f"{check.suite}::{name}") + suffix


class _NoBaseline(Exception):
    """Nothing to compare with where a baseline is required: the check is inconclusive."""


class MetricReader:
    """``metric(source)`` in Python checks: one metric source of one environment, queried now.

    Both methods want the query to return one series (``sum(...)`` it otherwise) and raise
    :class:`MetricQueryError` with a one-line reason.
    """

    def __init__(self, source: MetricSource, fetch: Fetch,
                 wall: Callable[[], float] = time.time) -> None:
        self.source, self.fetch, self.wall = source, fetch, wall

    def query(self, query: str) -> float:
        """The current value of ``query``."""
        found = combine(self.source.instant(query, self.wall(), self.source.timeout,
                                            self.fetch), None, False)
        if not found or not found[0].samples:
            raise MetricQueryError(f"no data for {query!r} from {self.source.describe()}")
        sample = found[0].samples[-1]
        if not sample.finite:
            # NaN compares false with everything: `assert not value > limit` would pass on it.
            raise MetricQueryError(f"no data for {query!r} from {self.source.describe()}: the "
                                   f"value is {sample.value}, not a finite number")
        return sample.value

    def series(self, query: str, window: float | str, step: float | str | None = None
               ) -> list[Sample]:
        """The samples of ``query`` over the last ``window`` (``"5m"`` or seconds), one per
        ``step`` (default: 60 over the window, at least 1 s); empty when there are none."""
        try:
            span = parse_duration(window)
            every = parse_duration(step) if step is not None else max(1.0, span / 60)
        except ValueError as exc:
            raise MetricQueryError(str(exc)) from None
        now = self.wall()
        found = combine(self.source.range(query, now - span, now, every, self.source.timeout,
                                          self.fetch), None, True)
        return list(found[0].samples) if found else []


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class _MetricType:
    """``kind: metric`` checks: a query of a metric source, judged (SPEC §4)."""

    name = "metric"
    templates = Templates(values=("query",))
    keys = frozenset(METRIC_KEYS)

    def keys_for(self, kind: str) -> frozenset[str]:
        return self.keys if kind == "metric" else frozenset()

    def parse(self, node: YamlMap, at: ParseContext) -> MetricSpec | None:
        if node["kind"] != "metric":
            return None
        if "query" not in node:
            raise error_at("a metric check needs 'query'", node, None, at.where)
        return parse_metric(node, at.where, at.timeout)

    def runner(self, context: RunContext) -> MetricRunner:
        return MetricRunner(context, sleep=context.sleep)


TYPE = _MetricType()
