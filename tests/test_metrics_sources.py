"""The datadog, http and command metric sources, against loopback servers and real commands."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import Project, runpytest
from metric_servers import DD_API_KEY, DD_APP_KEY, DatadogServer
from pytest_deploycheck.demo.server import DemoServer
from servers import LoopbackServer


def datadog_env(project: Project, url: str, api_key: str = DD_API_KEY) -> None:
    project.environments(f"""\
        environments:
          test:
            metrics:
              dd: {{type: datadog, url: "{url}", api_key: "{api_key}", app_key: "{DD_APP_KEY}"}}
        """)


def test_datadog_window_is_one_query_over_the_window(project: Project,
                                                     datadog: DatadogServer) -> None:
    datadog.series["avg:trace.http.request.errors{env:prod}"] = [("env:prod", 0.004)]
    datadog.series["p99:trace.http.request{env:prod}"] = [("env:prod", 0.72)]
    datadog_env(project, datadog.url)
    project.suite("dd.yaml", """\
        checks:
          - {name: errors, kind: metric, source: dd, window: 5m,
             query: "avg:trace.http.request.errors{env:prod}", threshold: "< 1%"}
          - {name: p99, kind: metric, source: dd, query: "p99:trace.http.request{env:prod}",
             threshold: "< 500ms"}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"  source: dd (datadog {datadog.url})",
                                 "*env:prod 0.72  BREACH < 500ms"])
    windowed, instant = sorted(datadog.requests, key=lambda r: r["query"])
    assert int(windowed["to"]) - int(windowed["from"]) == 300
    assert int(instant["to"]) - int(instant["from"]) == 300  # the source's lookback
    assert abs(int(windowed["to"]) - time.time()) < 30


def test_datadog_null_points_are_no_data(project: Project, datadog: DatadogServer) -> None:
    datadog.series["avg:empty{*}"] = [("*", None)]
    datadog_env(project, datadog.url)
    project.suite("dd.yaml", """\
        checks:
          - {name: empty, kind: metric, source: dd, query: "avg:empty{*}", threshold: "< 1"}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED no data: the query returned no samples*"])


@pytest.mark.parametrize(("query", "api_key", "reason"), [
    ("avg:x{*}", "wrong-key-123", "*FAILED Datadog answered 403: Forbidden (check api_key and "
                                  "app_key)"),
    ("rate.limited", DD_API_KEY, "*FAILED Datadog rate limit reached (300 requests per 3600s); "
                                 "it resets in 1234s"),
    ("avg:not a query", DD_API_KEY, "*FAILED Datadog answered 400: Error parsing query: *"),
])
def test_datadog_errors_fail_the_item_with_datadogs_reason(
        project: Project, datadog: DatadogServer, query: str, api_key: str, reason: str) -> None:
    datadog_env(project, datadog.url, api_key=api_key)
    project.suite("dd.yaml", f"""\
        checks:
          - {{name: q, kind: metric, source: dd, query: "{query}", threshold: "< 1"}}
        """)
    result = runpytest(project.pytester, "--env=test", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([reason])
    assert DD_APP_KEY not in result.stdout.str() and api_key not in result.stdout.str()


def test_datadog_site_picks_the_regional_api(project: Project) -> None:
    project.environments("""\
        environments:
          test:
            metrics:
              dd: {type: datadog, site: datadoghq.eu, api_key: k-123, app_key: a-123}
        """)
    project.suite("dd.yaml", """\
        checks:
          - {name: q, kind: metric, source: dd, query: "avg:x{*}", threshold: "< 1"}
        """)
    result = runpytest(project.pytester, "--env=test", "--collect-only", "-q")
    result.assert_outcomes()
    from pytest_deploycheck.environments import EnvironmentsFile
    from pytest_deploycheck.secrets import Redactor

    env = EnvironmentsFile(project.path / "environments.yaml", "environments.yaml").resolve(
        "test", {}, Redactor())
    assert env.metric_source("dd").describe() == "datadog https://api.datadoghq.eu"


def http_env(project: Project, url: str) -> None:
    project.metric_source(f'{{type: http, url: "{url}", timeout: 1s}}')


def test_http_source_reads_the_demo_stats(project: Project, demo: DemoServer) -> None:
    url = f"http://127.0.0.1:{demo.server_port}"
    http_env(project, f"{url}/stats")
    project.suite("stats.yaml", """\
        checks:
          - {name: error rate, kind: metric, query: error_rate, threshold: "< 1%"}
          - {name: p99, kind: metric, query: p99_ms, threshold: "< 500"}
        """)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=2)
    demo.state.faults.error_rate = 0.5
    import httpx

    for _ in range(10):
        httpx.get(f"{url}/v1/workflows")
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  query: error_rate", "*0.5  BREACH < 1%"])


def test_http_source_list_gives_one_series_per_element(project: Project,
                                                       server: LoopbackServer) -> None:
    http_env(project, f"{server.url}/ok")
    project.suite("stats.yaml", """\
        checks:
          - {name: worst, kind: metric, query: "items[*].n", threshold: "< 2", series: max}
          - {name: best, kind: metric, query: "items[*].n", threshold: "< 2", series: min}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*max of 2 series 2  BREACH < 2"])


@pytest.mark.parametrize(("path", "query", "reason"), [
    ("/status/500", "count", "*FAILED http://127.0.0.1:*/status/500 answered 500"),
    ("/text", "count", "*FAILED * answered 200 with a body that is not JSON*"),
    ("/ok", "name", "*FAILED name is not a number: 'svc'"),
    ("/hang", "count", "*FAILED timed out after 1s (ReadTimeout)"),
])
def test_http_source_faults_fail_the_item(project: Project, server: LoopbackServer, path: str,
                                          query: str, reason: str) -> None:
    http_env(project, f"{server.url}{path}")
    project.suite("stats.yaml", f"""\
        checks:
          - {{name: q, kind: metric, query: "{query}", threshold: "< 1"}}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([reason])


def command_env(project: Project, command: str, timeout: str = "5s") -> None:
    project.metric_source(f"{{type: command, command: {command}, timeout: {timeout}}}")


def test_command_source_value_is_the_last_line_printed(project: Project) -> None:
    command_env(project, """'echo "checking..."; echo {{ query }}'""")
    project.suite("cmd.yaml", """\
        checks:
          - {name: low, kind: metric, query: "0.004", threshold: "< 1%"}
          - {name: high, kind: metric, query: "0.2", threshold: "< 1%"}
          - {name: quoted, kind: metric, query: "0.5; echo 0", threshold: "> 0.1"}
        """)
    result = runpytest(project.pytester, "--env=test")
    # The query is shell-quoted: "0.5; echo 0" reaches echo as one argument, not a command.
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*0.2  BREACH < 1%", "*FAILED the command's last line is not "
                                 "a number: '0.5; echo 0'"])


def test_command_source_as_a_list_runs_without_a_shell(project: Project) -> None:
    command_env(project, '[python, -c, "print({{ query }} * 2)"]')
    project.suite("cmd.yaml", """\
        checks:
          - {name: doubled, kind: metric, query: "0.25", between: [0.5, 0.5]}
        """)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)


@pytest.mark.parametrize(("command", "reason"), [
    ("'echo -n'", "*FAILED command printed no number (stdout is empty)"),
    ("'echo oops >&2; exit 3'", "*FAILED command exited with 3: oops"),
    ("[no-such-program-4711]", "*FAILED cannot run no-such-program-4711: *No such file*"),
    ("""'python -c "print(chr(49) * 5000000)"'""", "*FAILED command printed more than 64 KB*"),
])
def test_command_source_faults_fail_the_item(project: Project, command: str,
                                             reason: str) -> None:
    command_env(project, command)
    project.suite("cmd.yaml", """\
        checks:
          - {name: q, kind: metric, query: x, threshold: "< 1"}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    assert time.monotonic() - started < 10
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([reason])


def test_hanging_command_is_killed_with_its_children_at_the_timeout(project: Project) -> None:
    marker = f"dc-metric-hang-{time.monotonic_ns()}"
    sleeper = f'python -c "import time; time.sleep(30)" {marker}'
    command_env(project, f"'{sleeper} & {sleeper}; echo 1'", timeout="1s")
    project.suite("cmd.yaml", """\
        checks:
          - {name: q, kind: metric, query: x, threshold: "< 1"}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED command timed out after 1s and was killed"])
    assert elapsed < 6
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == ""
