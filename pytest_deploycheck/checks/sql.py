"""The check type ``sql``: a read-only query against an environment's ``type: sql`` source.

    - name: migrations are applied
      kind: health
      sql: {source: db, query: "SELECT count(*) FROM schema_migrations WHERE applied_at IS NULL"}
      expect: {value: 0}

``expect.rows`` is a row count (``3``, or a threshold like ``"> 0"``) or the exact rows;
``expect.value`` the single value (one row of one column); ``threshold`` a numeric limit on
that value. Without any of them the check passes when the query runs. Templates in the query
are bound as parameters (see :mod:`~pytest_deploycheck.runtime.sql`), never pasted into SQL.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import CheckError, ConfigError
from ..inputs.located import error_at, threshold_at
from ..inputs.templating import names_in
from ..inputs.yamlfile import YamlList, YamlMap
from ..metrics.sql import SqlSource
from ..runtime.sql import (
    Bound,
    DriverUnavailable,
    Rows,
    bind,
    plain,
    quoted_template,
    statement_problem,
)
from ..secrets import Redactor
from ..units import Threshold, format_duration, parse_threshold
from .base import (
    Attachment,
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
from .retry import Retry, own_retry, run_retrying

if TYPE_CHECKING:
    from ..environments import Environment

EXPECT_KEYS = ("rows", "value")
SHOWN_ROWS = 10  # rows quoted in a failure message; the report attaches up to MAX_CSV_ROWS
MAX_CSV_ROWS = 1000


@dataclass(frozen=True)
class SqlSpec:
    source: str
    query: str
    rows: int | Threshold | tuple[tuple[Any, ...], ...] | None
    value: Any
    has_value: bool
    threshold: Threshold | None
    retry: Retry | None = None
    type: str = "sql"

    # A query only reads: the transaction is read-only whatever the statement.
    read_only = True
    waits = False

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(names_in(self.query))

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        where = check.where
        source = source_at(env, self.source, check, "sql", f"{where}.sql.source")
        if not isinstance(source, SqlSource):
            raise ConfigError(f"source '{self.source}' in environment '{env.name}' is "
                              f"{source.describe()}, not a database: a sql check needs a "
                              f"'type: sql' source", file=check.file, line=check.line_of("sql"),
                              key=f"{where}.sql.source")
        check_names(dict.fromkeys(self.template_names, (check.line_of("sql"),
                                                        f"{where}.sql.query")),
                    known, env, check.file)

    def services(self) -> list[str]:
        return [f"sql: {self.source}"]

    def calls(self) -> list[str]:
        return []

    def companion(self, name: str) -> None:
        return None

    def describe_expectations(self) -> list[str]:
        out = []
        if self.rows is not None:
            shown = (f"{len(self.rows)} given rows" if isinstance(self.rows, tuple)
                     else str(self.rows))
            out.append(f"rows: {shown}")
        if self.has_value:
            out.append(f"value: {json.dumps(self.value)}")
        if self.threshold is not None:
            out.append(f"value {self.threshold}")
        return out or ["the query runs"]

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        if not isinstance(result, SqlResult):
            return []
        summary = [f"source: {result.source}", f"query: {result.query}",
                   f"expected: {', '.join(self.describe_expectations())}"]
        if result.error:
            summary.append(f"error: {result.error}")
        shown: list[Evidence] = [Attachment("query", redactor.redact("\n".join(summary)))]
        if result.found is not None:
            shown.append(Attachment("rows", redactor.redact(_csv(result.found)), "csv"))
        return shown


@dataclass
class SqlResult:
    outcome: str
    reason: str
    source: str
    query: str
    found: Rows | None
    error: str
    duration: float
    note: str = ""
    attempts: int = 1

    def details(self) -> dict[str, Any]:
        return {"source": self.source, "query": self.query, "duration": self.duration,
                "attempts": self.attempts,
                "rows": len(self.found.rows) if self.found else None,
                "value": self.value, "error": self.error or None}

    @property
    def value(self) -> Any:
        found = self.found
        return found.rows[0][0] if found and len(found.rows) == 1 and found.columns else None

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        lines = [*instance.failure_header(), f"  source: {self.source}", f"  query: {self.query}"]
        if self.found is not None:
            lines.append(f"  -> {len(self.found.rows)} row(s) in "
                         f"{format_duration(self.duration)}")
            lines += _table(self.found)
        lines.append(f"  FAILED {self.reason}")
        if self.attempts > 1:
            lines.append(f"  (last of {self.attempts} attempts)")
        return redactor.redact("\n".join(lines))


def _table(found: Rows) -> list[str]:
    if not found.rows:
        return []
    lines = ["  " + " | ".join(found.columns)]
    lines += ["  " + " | ".join(json.dumps(v, default=str) for v in row)
              for row in found.rows[:SHOWN_ROWS]]
    if len(found.rows) > SHOWN_ROWS:
        lines.append(f"  ({len(found.rows) - SHOWN_ROWS} more rows)")
    return lines


def _csv(found: Rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found.columns)
    writer.writerows(found.rows[:MAX_CSV_ROWS])
    return out.getvalue()


def same(found: Any, expected: Any) -> bool:
    """Equal as JSON values are: ``false`` is not ``0``, nor ``1.0`` ``true``."""
    if isinstance(found, (tuple, list)) and isinstance(expected, (tuple, list)):
        return len(found) == len(expected) and all(map(same, found, expected))
    if isinstance(found, bool) or isinstance(expected, bool):
        return isinstance(found, bool) and isinstance(expected, bool) and found == expected
    return bool(found == expected)


def judge(spec: SqlSpec, found: Rows) -> str | None:
    """Why ``found`` does not meet ``spec``'s expectations, or None."""
    count = len(found.rows)
    if isinstance(spec.rows, int) and count != spec.rows:
        return f"rows: {count}, expected {spec.rows}"
    if isinstance(spec.rows, Threshold) and not spec.rows.check(count):
        return f"rows: {count}, expected {spec.rows}"
    if isinstance(spec.rows, tuple) and not same(found.rows, spec.rows):
        return (f"rows differ: expected {json.dumps([list(r) for r in spec.rows])}, got "
                f"{json.dumps([list(r) for r in found.rows[:SHOWN_ROWS]], default=str)}")
    if not spec.has_value and spec.threshold is None:
        return None
    if count != 1 or len(found.columns) != 1:
        return (f"expected a single value (one row of one column), got {count} row(s) of "
                f"{len(found.columns)} column(s)")
    value = found.rows[0][0]
    if spec.has_value and not same(value, spec.value):
        return f"value: {json.dumps(value, default=str)}, expected {json.dumps(spec.value)}"
    if spec.threshold is not None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"value {json.dumps(value, default=str)} is not a number, so it cannot be " \
                   f"judged by '{spec.threshold}'"
        if not spec.threshold.check(value):
            return f"value {value!r} breaches '{spec.threshold}'"
    return None


class SqlRunner:
    def __init__(self, context: RunContext) -> None:
        self.sleep = context.sleep

    def run(self, instance: CheckInstance) -> SqlResult:
        spec = instance.check.spec
        assert isinstance(spec, SqlSpec)
        return run_retrying(lambda: self._once(instance), spec.retry, instance.check.timeout,
                            self.sleep)

    def _once(self, instance: CheckInstance) -> SqlResult:
        check = instance.check
        spec = check.spec
        assert isinstance(spec, SqlSpec)
        source = instance.env.metric_source(spec.source)
        assert isinstance(source, SqlSource)  # resolved at collection
        timeout = check.timeout if check.timeout is not None else source.timeout
        shown = f"{spec.source} ({source.describe()})"
        started = time.monotonic()
        bound = Bound((spec.query,), ())
        try:
            bound = bind(spec.query, instance.scope())
            found = source.rows(bound, timeout)
        except CheckError as exc:
            # A driver that is not installed says nothing of the deploy: nothing rolls back.
            outcome = "inconclusive" if isinstance(exc, DriverUnavailable) else "failed"
            return SqlResult(outcome, str(exc), shown, bound.shown(), None, str(exc),
                             time.monotonic() - started)
        duration = time.monotonic() - started
        problem = judge(spec, found)
        if problem is None and found.truncated:
            problem = f"the query answered more than {len(found.rows)} rows: count them in " \
                      f"SQL (SELECT count(*) ...)"
        return SqlResult("failed" if problem else "passed", problem or "", shown,
                         bound.shown(), found, "", duration)


class _SqlType:
    """Checks of any kind that run a read-only query (``sql:``)."""

    name = "sql"
    # Templates of the query become parameters of the statement.
    templates = Templates(values=("sql/query",))
    keys = frozenset(("sql", "expect", "threshold", "retry"))

    def keys_for(self, kind: str) -> frozenset[str]:
        return self.keys

    def parse(self, node: YamlMap, at: ParseContext) -> SqlSpec | None:
        if "sql" not in node:
            return None
        sql = node["sql"]
        inner = at.inner("sql")
        query = sql["query"]
        problem = statement_problem(query)
        if problem:
            raise error_at(problem, sql, "query", inner)
        quoted = quoted_template(query)
        if quoted:
            raise error_at(f"'{{{{ {quoted} }}}}' is bound as a parameter: write it without "
                           f"quotes around it", sql, "query", inner)
        expect = node.get("expect", YamlMap())
        for key in expect:
            if key not in EXPECT_KEYS:
                raise error_at(f"'{key}' is not an expectation of a sql check; use "
                               f"{', '.join(EXPECT_KEYS)} (or 'threshold' on the check)",
                               expect, key, at.inner("expect"))
        return SqlSpec(
            source=sql["source"], query=query,
            rows=_rows(expect, at.inner("expect")) if "rows" in expect else None,
            value=plain(expect.get("value")), has_value="value" in expect,
            threshold=threshold_at(node, "threshold", at.where) if "threshold" in node
            else None, retry=own_retry(node, at.where))

    def runner(self, context: RunContext) -> SqlRunner:
        return SqlRunner(context)


def _rows(expect: YamlMap, where: str) -> int | Threshold | tuple[tuple[Any, ...], ...]:
    value = expect["rows"]
    if isinstance(value, bool):
        raise error_at("rows: a count (3), a threshold ('> 0') or a list of rows", expect,
                       "rows", where)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return parse_threshold(value)
        except ValueError as exc:
            raise error_at(f"{exc} (rows: a count, a threshold like '> 0', or a list of rows)",
                           expect, "rows", where) from None
    assert isinstance(value, YamlList)  # the schema allows nothing else
    rows = []
    for index, row in enumerate(value):
        if not isinstance(row, list):
            raise error_at("each expected row is a list of its column values ([1, 'eu'])",
                           value, index, f"{where}.rows")
        rows.append(tuple(plain(v) for v in row))
    return tuple(rows)


TYPE = _SqlType()
