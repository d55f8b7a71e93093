"""``type: sql``: the value a read-only SQL query answers (PostgreSQL or SQLite, ``url``).

One row of one column is the value. Several rows are several series: the last column is each
row's value and the other columns its labels (``SELECT region, count(*) ... GROUP BY region``
gives one series per region, judged each or combined by ``series:``). A NULL value is a series
without data (``AVG`` over no rows), judged by the check's ``no_data``. The source knows only
the current value, so it answers ``observe`` checks, not ``window`` ones. How queries stay
read-only is in :mod:`~pytest_deploycheck.runtime.sql`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inputs.located import duration_at
from ..inputs.templating import names_in
from ..inputs.yamlfile import YamlMap
from ..runtime.sql import (
    Bound,
    Rows,
    SqlError,
    describe,
    run_query,
    statement_problem,
    url_problem,
)
from .base import Fetch, MetricQueryError, NoHistory, Sample, Series, SourceContext, number

SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type", "url"],
    "properties": {
        "type": {"enum": ["sql"]},
        "url": {"type": "string", "minLength": 1},
        "timeout": {"type": ["string", "number"]},
    },
}


def parse(name: str, node: YamlMap, context: SourceContext) -> SqlSource:
    problem = url_problem(node["url"])
    if problem:
        raise context.error(problem, node, "url")
    return SqlSource(name=name, url=node["url"], base_dir=context.base_dir,
                     timeout=duration_at(node, "timeout", context.where, context.timeout),
                     protected=context.protected)


@dataclass(frozen=True)
class SqlSource:
    name: str
    url: str
    base_dir: Path  # what a relative SQLite path is relative to: the environments file's folder
    timeout: float
    protected: str | None = None  # the environment, when protected: no superuser sessions
    history: bool = False

    def describe(self) -> str:
        return f"sql {describe(self.url)}"

    def query_error(self, query: str) -> str | None:
        problem = statement_problem(query)
        if problem:
            return problem
        if names_in(query):
            return "a metric query of a sql source takes no {{ }} templates (their values " \
                   "would be pasted into SQL); a sql check (sql: {source, query}) binds them " \
                   "as parameters"
        return None

    def rows(self, bound: Bound, timeout: float) -> Rows:
        """The rows of ``bound``; raises :class:`~..runtime.sql.SqlError`."""
        return run_query(self.url, bound, timeout, self.base_dir, self.protected)

    def instant(self, query: str, at: float, timeout: float, fetch: Fetch) -> list[Series]:
        try:
            found = self.rows(Bound((query,), ()), timeout)
        except SqlError as exc:
            raise MetricQueryError(str(exc)) from None
        return series_of(found, at)

    def range(self, query: str, start: float, end: float, step: float, timeout: float,
              fetch: Fetch) -> list[Series]:
        raise NoHistory(f"source '{self.name}' (sql) knows only the current value; use "
                        f"'observe' instead of 'window'")


def series_of(found: Rows, at: float) -> list[Series]:
    """A series per row: the last column the value, the others its labels."""
    if not found.columns:
        raise MetricQueryError("the query answered no columns")
    if found.truncated:
        raise MetricQueryError(f"the query answered more than {len(found.rows)} rows; a metric "
                               f"query answers a value, or one per group")
    *label_columns, value_column = found.columns
    out = []
    for row in found.rows:
        labels = "{" + ", ".join(f'{column}="{value}"'
                                 for column, value in zip(label_columns, row, strict=False)) + "}"
        value = row[-1]
        samples = () if value is None else (
            Sample(at, number(value, f"column '{value_column}'")),)
        out.append(Series(labels if label_columns else "", samples))
    return out
