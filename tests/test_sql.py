"""SQL evidence: the ``sql`` metric source and the ``sql`` check, against a real PostgreSQL
(Debian's package, started by the ``postgresql`` fixture) and SQLite files."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import psycopg
import pytest

from conftest import Project, assert_bad_input, free_port, runpytest
from db_servers import PASSWORD, PostgreSQL


def environments(project: Project, url: str, extra: str = "") -> None:
    project.environments(f"""\
        environments:
          prod:
            metrics:
              db: {{type: sql, url: "{url}"}}
              prom: {{type: prometheus, url: "http://127.0.0.1:9"}}
        {extra}""")


def sqlite_db(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE jobs (id integer, state text, queue text);
            INSERT INTO jobs VALUES (1, 'done', 'mail'), (2, 'failed', 'mail'),
                                    (3, 'done', 'billing'), (4, 'queued', 'billing');
        """)
    connection.close()
    return path


def workflows(postgresql: PostgreSQL) -> int:
    with psycopg.connect(postgresql.url()) as connection:
        row = connection.execute("SELECT count(*) FROM workflows").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("workers", ["0", "2"])
def test_sql_checks_pass_and_fail_on_postgresql(project: Project, postgresql: PostgreSQL,
                                                workers: str) -> None:
    environments(project, postgresql.url())
    project.suite("db.yaml", """\
        checks:
          - name: tagged workflows
            kind: health
            sql: {source: db, query: "SELECT count(*) FROM workflows WHERE tags IS NOT NULL"}
            expect: {value: 4}
          - name: regions
            kind: smoke
            sql: {source: db, query: "SELECT region, count(*) AS n FROM workflows GROUP BY region ORDER BY region"}
            expect: {rows: [["ap", 1], ["eu", 2], ["us", 2]]}
          - name: some workflows
            kind: health
            sql: {source: db, query: "SELECT id FROM workflows"}
            expect: {rows: "> 3"}
          - name: migrations applied
            kind: health
            on_fail: block
            sql: {source: db, query: "SELECT version, applied_at FROM schema_migrations WHERE applied_at IS NULL"}
            expect: {rows: 0}
          - name: few untagged
            kind: health
            on_fail: warn
            sql: {source: db, query: "SELECT count(*)::numeric / 5 FROM workflows WHERE tags IS NULL"}
            threshold: "< 10%"
        """)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json")
    out = result.stdout.str()
    result.assert_outcomes(passed=4, failed=1)
    assert "rows: 1, expected 0" in out
    assert '"003" | null' in out  # the unapplied migration, in the message
    assert "value 0.2 breaches '< 10%'" in out
    assert PASSWORD not in out
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"


def test_queries_are_read_only_whatever_they_say(project: Project,
                                                 postgresql: PostgreSQL) -> None:
    """A write, a write after COMMIT, and a template value written as SQL all leave the data
    as it was; the template value is a parameter."""
    before = workflows(postgresql)
    environments(project, postgresql.url())
    project.suite("db.yaml", """\
        vars:
          tag: "x'; DELETE FROM workflows; --"
        checks:
          - name: delete
            kind: health
            sql: {source: db, query: "WITH gone AS (DELETE FROM workflows RETURNING id) SELECT count(*) FROM gone"}
          - name: escape the transaction
            kind: health
            sql: {source: db, query: "SELECT 1; COMMIT; SET default_transaction_read_only = off; DELETE FROM workflows"}
          - name: injected
            kind: health
            sql: {source: db, query: "SELECT count(*) FROM workflows WHERE tags = {{ tag }}"}
            expect: {value: 0}
          - name: percent signs stay text
            kind: health
            sql: {source: db, query: "SELECT count(*) FROM workflows WHERE region LIKE 'e%' AND id < {{ limit }}"}
            parametrize: {limit: [10]}
            expect: {value: 2}
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=2)
    assert "DECLARE CURSOR must not contain data-modifying statements in WITH: checks only " \
           "read" in out
    assert "cannot insert multiple commands into a prepared statement: a check runs one " \
           "statement" in out
    assert workflows(postgresql) == before


def test_statement_timeout_wrong_password_and_a_down_database(project: Project,
                                                              postgresql: PostgreSQL) -> None:
    closed = free_port()
    project.environments(f"""\
        environments:
          prod:
            metrics:
              db: {{type: sql, url: "{postgresql.url()}"}}
              wrong: {{type: sql, url: "{postgresql.url(password='not-it-31337')}"}}
              down: {{type: sql, url: "postgresql://deploy:down-pw-4242@127.0.0.1:{closed}/app"}}
        """)
    project.suite("db.yaml", """\
        checks:
          - {name: slow, kind: health, timeout: 1s, sql: {source: db, query: "SELECT pg_sleep(20)"}}
          - {name: login, kind: health, sql: {source: wrong, query: "SELECT 1"}}
          - {name: down, kind: health, timeout: 3s, sql: {source: down, query: "SELECT 1"}}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod")
    took = time.monotonic() - started
    out = result.stdout.str()
    result.assert_outcomes(failed=3)
    assert took < 15, took
    assert "the query was cancelled at its timeout (1s)" in out
    assert 'password authentication failed for user "deploy"' in out
    assert f"cannot query postgresql://deploy@127.0.0.1:{closed}/app" in out
    assert "Connection refused" in out
    for secret in (PASSWORD, "not-it-31337", "down-pw-4242"):
        assert secret not in out


def test_sql_metric_source_series_and_observe(project: Project, postgresql: PostgreSQL) -> None:
    environments(project, postgresql.url())
    project.suite("metrics.yaml", """\
        checks:
          - name: untagged per region
            kind: metric
            source: db
            query: "SELECT region, count(*) FILTER (WHERE tags IS NULL) FROM workflows GROUP BY region"
            threshold: "< 1"
            series: each
          - name: workflows
            kind: metric
            source: db
            query: "SELECT count(*) FROM workflows"
            threshold: ">= 5"
            observe: {duration: 1s, interval: 0.5s}
          - name: nothing yet
            kind: metric
            source: db
            query: "SELECT avg(id) FROM workflows WHERE id > 100"
            threshold: "< 5"
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=2)
    assert '{region="eu"}' in out
    assert "nothing yet" in out


def test_sqlite_source_and_check(project: Project) -> None:
    sqlite_db(project.path / "jobs.db")
    before = (project.path / "jobs.db").read_bytes()
    project.environments("""\
        environments:
          prod:
            metrics:
              jobs: {type: sql, url: "sqlite:///jobs.db"}
              missing: {type: sql, url: "sqlite:///nope.db"}
        """)
    project.suite("jobs.yaml", """\
        checks:
          - name: no failed jobs
            kind: health
            sql: {source: jobs, query: "SELECT id, queue FROM jobs WHERE state = {{ bad }}"}
            parametrize: {bad: [failed]}
            expect: {rows: 0}
          - name: queued
            kind: metric
            source: jobs
            query: "SELECT count(*) FROM jobs WHERE state = 'queued'"
            threshold: "<= 1"
          - name: write
            kind: health
            sql: {source: jobs, query: "SELECT count(*) FROM jobs WHERE id IN (SELECT 1) -- ;DELETE FROM jobs"}
          - name: two statements
            kind: health
            sql: {source: jobs, query: "SELECT 1; DELETE FROM jobs"}
          - name: missing file
            kind: health
            sql: {source: missing, query: "SELECT 1"}
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=3)
    assert "rows: 1, expected 0" in out
    assert "a check runs one statement" in out
    assert f"no SQLite database at {project.path / 'nope.db'}" in out
    assert (project.path / "jobs.db").read_bytes() == before
    assert not (project.path / "nope.db").exists()


def test_sql_check_before_the_deploy_blocks(project: Project) -> None:
    """In the pre-deploy phase a failing query blocks the deploy and rolls nothing back."""
    sqlite_db(project.path / "jobs.db")
    environments(project, "sqlite:///jobs.db", """\
            rollback:
              - {name: undo, command: "touch rolled-back"}
        """.replace("            ", "    ", 1))
    project.suite("pre.yaml", """\
        phase: predeploy
        checks:
          - name: queue drained
            kind: checklist
            sql: {source: db, query: "SELECT count(*) FROM jobs WHERE state = 'queued'"}
            expect: {value: 0}
        """)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "blocked"
    assert not (project.path / "rolled-back").exists()


@pytest.mark.parametrize(("suite", "message"), [
    ('{name: a, kind: health, sql: {source: nope, query: "SELECT 1"}}',
     "suites/s.yaml:2: checks[0].sql.source: unknown metric source 'nope' in environment 'prod'*"),
    ('{name: a, kind: health, sql: {source: prom, query: "SELECT 1"}}',
     "checks[0].sql.source: source 'prom' in environment 'prod' is prometheus http://127.0.0.1:9, not a database*"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1"}, expect: {status: 200}}',
     "checks[0].expect.status: 'status' is not an expectation of a sql check*"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1"}, query: "up"}',
     "checks[0].query: 'query' does not apply to a health check"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1"}, request: {url: "http://127.0.0.1:9/"}}',
     "checks[0].request: 'request' does not apply to a health check with 'sql'"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1 WHERE x = \'{{ v }}\'"}}',
     "checks[0].sql.query: '{{ v }}' is bound as a parameter: write it without quotes around it"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1"}, expect: {rows: "lots"}}',
     "checks[0].expect.rows: *rows: a count, a threshold like '> 0', or a list of rows)"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT {{ nope }}"}}',
     "checks[0].sql.query: template '{{ nope }}' is not defined in environment 'prod'*"),
    ('{name: a, kind: health, sql: {source: db}}', "checks[0].sql: missing required key 'query'"),
    ('{name: a, kind: metric, source: db, query: "SELECT {{ env }}", threshold: "< 1"}',
     "checks[0].query: a metric query of a sql source takes no {{ }} templates*"),
    ('{name: a, kind: health, sql: {source: db, query: "DELETE FROM jobs"}}',
     "checks[0].sql.query: DELETE is not a query: a check runs one SELECT, WITH, VALUES or TABLE statement"),
    ('{name: a, kind: health, sql: {source: db, query: " /* x */ -- y\\n COPY (SELECT 1) TO \'/tmp/x\'"}}',
     "checks[0].sql.query: COPY is not a query*"),
    ('{name: a, kind: health, sql: {source: db, query: "/* /* */ SELECT */ COPY (SELECT 1) TO PROGRAM \'id\'"}}',
     "checks[0].sql.query: COPY is not a query*"),
    ('{name: a, kind: health, sql: {source: db, query: "SHOW server_version"}}',
     "checks[0].sql.query: SHOW is not a query*"),
    ('{name: a, kind: health, sql: {source: db, query: "ATTACH DATABASE \'/tmp/x.db\' AS x"}}',
     "checks[0].sql.query: ATTACH is not a query*"),
    ('{name: a, kind: metric, source: db, query: "VACUUM INTO \'/tmp/x.db\'", threshold: "< 1"}',
     "checks[0].query: VACUUM is not a query*"),
    ('{name: a, kind: health, sql: {source: db, query: "SELECT 1"}, retry: {attempts: 2, stop_if: {rows: 0}}}',
     "checks[0].retry.stop_if: 'stop_if' judges a request's answer; this check sends none"),
    ('{name: a, kind: health, request: {url: "http://127.0.0.1:9/"}, expect: {rows: 1}}',
     "checks[0].expect.rows: 'rows' is an expectation of a sql check, not of a request"),
])
def test_bad_sql_checks(project: Project, suite: str, message: str) -> None:
    environments(project, "sqlite:///jobs.db")
    project.suite("s.yaml", f"checks:\n  - {suite}\n")
    assert_bad_input(project, message.replace("[", "[[]"), "--env=prod")


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u@h/db", "environments.yaml:4: environments.prod.metrics.db.url: 'mysql://u@h/db' is not a database URL*"),
    ("sqlite://host/x.db", "*metrics.db.url: a SQLite URL is sqlite:///relative/path.db*"),
])
def test_bad_sql_sources(project: Project, url: str, message: str) -> None:
    environments(project, url)
    project.suite("s.yaml", 'checks:\n  - {name: a, kind: health, sql: {source: db, query: "SELECT 1"}}\n')
    assert_bad_input(project, message, "--env=prod")


def test_a_sql_check_retries_until_the_data_is_there(project: Project) -> None:
    """A migration still running when the check starts: retried until its row is there."""
    import threading

    db = sqlite_db(project.path / "jobs.db")
    project.environments("""\
        environments:
          prod:
            metrics:
              jobs: {type: sql, url: "sqlite:///jobs.db"}
        """)
    project.suite("jobs.yaml", """\
        checks:
          - name: the migration has run
            kind: health
            sql: {source: jobs, query: "SELECT count(*) FROM jobs WHERE queue = 'reports'"}
            expect: {value: 1}
            retry: {until: 20s, interval: 0.2s}
          - name: never there
            kind: health
            sql: {source: jobs, query: "SELECT count(*) FROM jobs WHERE queue = 'nowhere'"}
            expect: {value: 1}
            retry: {attempts: 3, interval: 0.1s}
        """)

    def migrate() -> None:
        with sqlite3.connect(db) as connection:
            connection.execute("INSERT INTO jobs VALUES (5, 'queued', 'reports')")
        connection.close()

    timer = threading.Timer(1.5, migrate)
    timer.start()
    try:
        result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    finally:
        timer.cancel()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  FAILED value: 0, expected 1", "  (last of 3 attempts)"])
    checks = {c["name"]: c for c in json.loads((project.path / "gate.json").read_text())["checks"]}
    assert checks["the migration has run"]["duration"] >= 0.5  # it waited for the row


def test_a_database_that_stops_answering_fails_at_the_timeout(project: Project,
                                                              postgresql: PostgreSQL) -> None:
    """A proxy that passes the login, then swallows the query (a frozen failover): the check
    fails at its timeout and a little more, instead of hanging the run."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def pipe(source: socket.socket, target: socket.socket, swallow: bytes | None) -> None:
        frozen = False
        while not stop.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            frozen = frozen or (swallow is not None and swallow in data)
            if not frozen:
                target.sendall(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", postgresql.port))
            threading.Thread(target=pipe, args=(client, upstream, b"DECLARE"), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client, None), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        url = postgresql.url().replace(f":{postgresql.port}/", f":{port}/")
        project.environments(f"""\
            environments:
              prod:
                metrics:
                  db: {{type: sql, url: "{url}", timeout: 2s}}
            """)
        project.suite("db.yaml", 'checks:\n  - {name: frozen, kind: health, sql: {source: db, query: "SELECT 1"}}\n')
        started = time.monotonic()
        result = runpytest(project.pytester, "--env=prod")
        took = time.monotonic() - started
    finally:
        stop.set()
        listener.close()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*did not answer within 7s (the query's timeout and 5s more)*"])
    assert took < 15, took


def test_a_protected_environment_refuses_a_superuser_session(project: Project,
                                                             postgresql: PostgreSQL) -> None:
    """A superuser's functions write whatever the query says (COPY TO PROGRAM, replication
    slots): a protected environment wants a read-only role."""
    project.environments(f"""\
        environments:
          production:
            protected: true
            metrics:
              db: {{type: sql, url: "{postgresql.url()}"}}
        """)
    project.suite("db.yaml", 'checks:\n  - {name: read, kind: health, sql: {source: db, query: "SELECT 1"}}\n')
    result = runpytest(project.pytester, "--env=production")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*environment 'production' is protected, and 'deploy' is a "
                                 "superuser*connect as a read-only role*"])


def test_json_equality_and_a_missing_driver(project: Project, monkeypatch: pytest.MonkeyPatch,
                                            postgresql: PostgreSQL) -> None:
    """``value: 0`` is not ``false``; ``(SELECT ...)`` is a query; without psycopg the check
    is inconclusive and rolls nothing back."""
    import sys

    environments(project, postgresql.url(), """\
            rollback:
              - {name: undo, command: "touch rolled-back"}
        """.replace("            ", "    ", 1))
    project.suite("db.yaml", """\
        checks:
          - {name: false is not 0, kind: health, sql: {source: db, query: "SELECT false"}, expect: {value: 0}}
          - {name: in parentheses, kind: health, on_fail: warn, sql: {source: db, query: "(SELECT 1)"}, expect: {value: 1}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*value: false, expected 0"])
    (project.path / "rolled-back").unlink()
    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.stdout.fnmatch_lines(["*PostgreSQL needs psycopg: pip install 'pytest-deploycheck[[]sql]'*"])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "inconclusive"
    assert not (project.path / "rolled-back").exists()


def test_a_secret_bound_into_a_query_is_masked_where_the_query_is_shown(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The failure text and the Allure query attachment show the query with its parameters in
    place: a secret among them is masked there as everywhere."""
    sqlite_db(project.path / "jobs.db")
    monkeypatch.setenv("JOBS_API_TOKEN", "tok-5f1e9a7c33")
    project.environments("""\
        environments:
          prod:
            vars: {token: "${JOBS_API_TOKEN}"}
            metrics:
              jobs: {type: sql, url: "sqlite:///jobs.db"}
        """)
    project.suite("jobs.yaml", """\
        checks:
          - name: owned by the token
            kind: health
            sql: {source: jobs, query: "SELECT count(*) FROM jobs WHERE queue = {{ token }}"}
            expect: {value: 1}
        """)
    result = runpytest(project.pytester, "--env=prod", "--alluredir=allure",
                       "--gate-report=gate.json", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "queue = '***'" in out
    written = "".join(path.read_text(errors="replace")
                      for path in [*(project.path / "allure").iterdir(),
                                   project.path / "gate.json", project.path / "junit.xml"])
    assert "tok-5f1e9a7c33" not in out + written
