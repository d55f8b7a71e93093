"""Read-only SQL queries: PostgreSQL through psycopg 3, SQLite through the standard library.

The drivers are used directly rather than through SQLAlchemy: a check runs one statement and
reads its rows, which both drivers do in a few lines, and psycopg imports in about half the time
of SQLAlchemy with its psycopg dialect (0.22 s against 0.43 s), which would add 29 MB to the
driver it needs anyway.

Every query is read-only by construction, whatever its text says:

- PostgreSQL: the session starts with ``default_transaction_read_only=on`` and the query runs in
  a ``BEGIN READ ONLY`` transaction that is rolled back, as a prepared statement, which the
  server refuses to hold more than one command (so ``COMMIT; SET ...; DELETE ...`` cannot leave
  the read-only transaction). ``statement_timeout`` is the check's timeout.
- SQLite: the file is opened with ``mode=ro`` (a missing file is an error, not a new empty
  database) and ``PRAGMA query_only``; a progress handler interrupts the query at its timeout.

Template values are never pasted into SQL: :func:`bind` turns each ``{{ name }}`` into a
parameter of the driver.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import CheckError
from ..inputs.templating import lookup, tokens

SCHEMES = ("postgresql", "postgres", "sqlite")
INSTALL_HINT = "pip install 'pytest-deploycheck[sql]' (psycopg 3) to query PostgreSQL"
MAX_ROWS = 10_000  # rows read of an answer; a check that needs more counts them in SQL


class SqlError(CheckError):
    """The database could not answer: unreachable, refused the login or the statement, timed
    out. The message never carries the connection string's password."""


class DriverUnavailable(SqlError):
    """The database's driver is not installed: nothing is known, and it is no deploy's fault."""


@dataclass(frozen=True)
class Rows:
    """What a query answered: column names and rows of plain values (numbers, text, bool,
    None; dates and times as ISO text)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False


@dataclass(frozen=True)
class Bound:
    """A query's text cut at its templates, and the value of each template: the driver joins
    the pieces with its own placeholder."""

    pieces: tuple[str, ...]
    values: tuple[Any, ...]

    def shown(self) -> str:
        """The query as a person reads it, parameters in place (for messages, redacted)."""
        out = [self.pieces[0]]
        for value, piece in zip(self.values, self.pieces[1:], strict=True):
            out += [repr(value), piece]
        return "".join(out)


def url_problem(url: str) -> str | None:
    """Why ``url`` names no database this module can query, or None."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        return f"'{describe(url)}' is not a database URL: use postgresql://user@host/db or " \
               f"sqlite:///path/to/file.db"
    if parts.scheme == "sqlite" and (parts.netloc or not parts.path.strip("/")):
        return "a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db"
    return None


# Statements that ask: the read-only transaction refuses writes, but not a server-side COPY TO
# a file, and SQLite's read-only mode does not stop ATTACH or VACUUM INTO creating files.
# (PostgreSQL runs the query as a cursor, which takes only SELECT, VALUES and TABLE forms.)
QUERY_KEYWORDS = ("select", "with", "values", "table")


def _skip_comments(text: str) -> str:
    """``text`` from its first token: comments and blanks skipped, ``/* */`` nested as
    PostgreSQL nests them, and opening parentheses (``(SELECT 1)``)."""
    index = 0
    while index < len(text):
        if text[index].isspace() or text[index] == "(":
            index += 1
        elif text.startswith("--", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end + 1
        elif text.startswith("/*", index):
            depth, index = 1, index + 2
            while index < len(text) and depth:
                if text.startswith("/*", index):
                    depth, index = depth + 1, index + 2
                elif text.startswith("*/", index):
                    depth, index = depth - 1, index + 2
                else:
                    index += 1
        else:
            break
    return text[index:]


def statement_problem(query: str) -> str | None:
    """Why ``query`` is not a query a check may run, or None."""
    first = re.match(r"(\w+)", _skip_comments(query))
    keyword = first.group(1).lower() if first else ""
    if keyword not in QUERY_KEYWORDS:
        shown = keyword.upper() or "an empty statement"
        return f"{shown} is not a query: a check runs one SELECT, WITH, VALUES or TABLE " \
               f"statement"
    return None


def describe(url: str) -> str:
    """``url`` without its password (``postgresql://app@db:5432/orders``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}@{host}", query=_without_password(parts.query)).geturl()


def _without_password(query: str) -> str:
    return "&".join(pair for pair in query.split("&") if not pair.startswith("password="))


def bind(query: str, scope: Mapping[str, Any]) -> Bound:
    """``query`` with each ``{{ name }}`` taken out as a parameter; raises :class:`CheckError`
    for an undefined name."""
    pieces, values, text = [], [], []
    start = 0
    for begin, end, name in tokens(query):
        text.append(query[start:begin])
        start = end
        if name is None:  # a literal {{
            text.append("{{")
            continue
        pieces.append("".join(text))
        text = []
        values.append(_parameter(lookup(name, scope)))
    pieces.append("".join([*text, query[start:]]))
    return Bound(tuple(pieces), tuple(values))


def quoted_template(query: str) -> str | None:
    """The first template written inside quotes (``'{{ x }}'``), which a parameter cannot
    stand for (it would be the text ``$1``), or None."""
    for begin, end, name in tokens(query):
        before, after = query[:begin].rstrip(), query[end:].lstrip()
        if name is not None and before.endswith(("'", '"')) and after.startswith(("'", '"')):
            return name
    return None


def _parameter(value: Any) -> Any:
    # Booleans and numbers keep their type (a parameter is typed); anything else is text.
    return value if isinstance(value, (bool, int, float, str)) or value is None else str(value)


def run_query(url: str, bound: Bound, timeout: float, base_dir: Path,
              protected: str | None = None) -> Rows:
    """Run ``bound`` read-only against ``url`` within ``timeout`` seconds; ``protected`` names
    the environment when it is protected (PostgreSQL then refuses a superuser's session).

    The driver waits on the server, which keeps the statement timeout; a server that stops
    answering altogether (a frozen connection) is given up on here, :data:`GRACE` seconds
    later: the query runs in a thread of its own, left to end with the connection.
    """
    problem = statement_problem(bound.pieces[0])
    if problem:
        raise SqlError(problem)
    if urlsplit(url).scheme == "sqlite":
        return _sqlite(url, bound, timeout, base_dir)
    done: list[Rows | BaseException] = []
    finished = threading.Event()

    def query() -> None:
        try:
            done.append(_postgresql(url, bound, timeout, protected))
        except BaseException as exc:  # handed to the caller
            done.append(exc)
        finally:
            finished.set()

    threading.Thread(target=query, name="deploycheck-sql", daemon=True).start()
    if not finished.wait(timeout + GRACE):
        raise SqlError(f"{describe(url)} did not answer within {timeout + GRACE:g}s (the "
                       f"query's timeout and {GRACE:g}s more): the connection was given up")
    if isinstance(done[0], BaseException):
        raise done[0]
    return done[0]


GRACE = 5.0  # seconds past the statement timeout for the server's own answer (a cancel)


def plain(value: Any) -> Any:
    """A value of a row as JSON would have it: Decimal as a number, dates as ISO text."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and value.is_finite() \
            else float(value)
    if isinstance(value, (dt.date, dt.time, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def _rows(columns: Sequence[str], fetched: list[Any], more: bool) -> Rows:
    return Rows(tuple(columns), tuple(tuple(plain(v) for v in row) for row in fetched), more)


# --- PostgreSQL -------------------------------------------------------------------------------

def _postgresql(url: str, bound: Bound, timeout: float, protected: str | None) -> Rows:
    try:
        import psycopg
    except ImportError:
        raise DriverUnavailable(f"PostgreSQL needs psycopg: {INSTALL_HINT}") from None
    text = "%s".join(piece.replace("%", "%%") for piece in bound.pieces)
    millis = max(1, int(timeout * 1000))
    try:
        # libpq takes whole seconds, at least 2, for the connection; tcp_user_timeout ends a
        # connection whose peer stopped acknowledging (a frozen failover).
        with psycopg.connect(url, connect_timeout=max(2, int(timeout + 0.999)),
                             options=f"-c default_transaction_read_only=on "
                                     f"-c statement_timeout={millis}",
                             tcp_user_timeout=millis + 2000,
                             application_name="pytest-deploycheck") as connection:
            if protected and connection.info.parameter_status("is_superuser") == "on":
                raise SqlError(f"environment '{protected}' is protected, and "
                               f"{connection.info.user!r} is a superuser, whose functions may "
                               f"write whatever the query says: connect as a read-only role "
                               f"(GRANT pg_read_all_data)")
            connection.read_only = True
            try:
                # A server-side cursor: DECLARE takes one SELECT, VALUES or TABLE query (no
                # second statement, no data-modifying WITH), and rows come a batch at a time.
                with connection.cursor(name="deploycheck") as cursor:
                    cursor.itersize = 1000
                    cursor.execute(text, bound.values)
                    fetched = cursor.fetchmany(MAX_ROWS + 1)
                    columns = [column.name for column in cursor.description or ()]
            finally:
                connection.rollback()
    except psycopg.Error as exc:
        raise SqlError(_postgresql_reason(exc, url, timeout)) from None
    return _rows(columns, fetched[:MAX_ROWS], len(fetched) > MAX_ROWS)


def _postgresql_reason(exc: Exception, url: str, timeout: float) -> str:
    import psycopg

    text = " ".join(str(exc).split())
    text = text.replace(url, describe(url))
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return f"the query was cancelled at its timeout ({timeout:g}s): {text}"
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return f"{text}: checks only read (the query runs in a read-only transaction)"
    if "multiple commands" in text:
        return f"{text}: a check runs one statement"
    if "data-modifying" in text:
        return f"{text}: checks only read"
    if "syntax error" in text and isinstance(exc, psycopg.errors.SyntaxError):
        return f"{text} (a check runs one SELECT, VALUES or TABLE query)"
    if isinstance(exc, psycopg.OperationalError):
        return f"cannot query {describe(url)}: {text}"
    return text


# --- SQLite -----------------------------------------------------------------------------------

def sqlite_path(url: str, base_dir: Path) -> Path:
    """The file of a ``sqlite:///`` URL: relative to ``base_dir`` after three slashes,
    absolute after four."""
    path = unquote(urlsplit(url).path)
    relative = path[1:]
    return Path(relative) if relative.startswith("/") else base_dir / relative


def _sqlite(url: str, bound: Bound, timeout: float, base_dir: Path) -> Rows:
    import sqlite3  # here: a run without SQL checks does not load it

    path = sqlite_path(url, base_dir)
    if not path.is_file():
        raise SqlError(f"no SQLite database at {path}")
    deadline = time.monotonic() + timeout
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout,
                                     check_same_thread=False)
    except sqlite3.Error as exc:
        raise SqlError(f"cannot open {path}: {exc}") from None
    try:
        connection.execute("PRAGMA query_only = ON")
        # Called every 1000 virtual machine instructions: a non-zero answer interrupts.
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        cursor = connection.execute("?".join(bound.pieces), bound.values)
        if cursor.description is None:
            raise SqlError("the statement returned no rows (a check runs one SELECT)")
        fetched = cursor.fetchmany(MAX_ROWS + 1)
        columns = [column[0] for column in cursor.description]
    except sqlite3.OperationalError as exc:
        if str(exc) == "interrupted":
            raise SqlError(f"the query was interrupted at its timeout ({timeout:g}s)") from None
        raise SqlError(_sqlite_reason(exc)) from None
    except (sqlite3.Error, sqlite3.Warning) as exc:
        raise SqlError(_sqlite_reason(exc)) from None
    finally:
        connection.close()
    return _rows(columns, fetched[:MAX_ROWS], len(fetched) > MAX_ROWS)


def _sqlite_reason(exc: Exception) -> str:
    text = str(exc)
    if re.search(r"readonly|read-only|query_only", text):
        return f"{text}: checks only read (the database is opened read-only)"
    if "one statement at a time" in text:
        return f"{text}: a check runs one statement"
    return text
