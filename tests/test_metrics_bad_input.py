"""Bad metric checks and metric sources: collection errors naming file, line and key."""

from __future__ import annotations

import fnmatch

import pytest

from conftest import Project, runpytest

SOURCES = """\
environments:
  test:
    metrics:
      default: {type: prometheus, url: "http://127.0.0.1:9"}
      stats: {type: http, url: "http://127.0.0.1:9/stats"}
"""


def check(*lines: str) -> str:
    return "checks:\n  - name: m\n    kind: metric\n" + "".join(f"    {line}\n" for line in lines)


def assert_error(project: Project, message: str) -> None:
    result = runpytest(project.pytester, "--env=test", "--collect-only")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0, out
    assert "Traceback" not in out and "pytest_deploycheck/" not in out, out
    assert any(fnmatch.fnmatch(line, "*" + message) for line in out.splitlines()), out


@pytest.mark.parametrize(("suite", "message"), [
    (check("query: up", 'threshold: "< fast"'),
     "suites/bad.yaml:5: checks[[]0[]].threshold: '< fast' is not a threshold*"),
    (check("query: up", 'threshold: "< 5 parsecs"'),
     "suites/bad.yaml:5: checks[[]0[]].threshold: '< 5 parsecs' is not a threshold*"),
    (check("query: up", "between: [1, 0]"),
     "suites/bad.yaml:5: checks[[]0[]].between: between: 1 is above 0; write [[]low, high[]]"),
    (check("query: up", "between: [1, fast]"),
     "suites/bad.yaml:5: checks[[]0[]].between: 'fast' is not a number*"),
    (check("query: up", 'threshold: "< 1"', "window: 5 minutes"),
     "suites/bad.yaml:6: checks[[]0[]].window: '5 minutes' is not a duration*"),
    (check("query: up", 'threshold: "< 1"', "window: 1m", "step: 2m"),
     "suites/bad.yaml:7: checks[[]0[]].step: step (2m) is longer than the window (1m)"),
    (check("query: up", 'threshold: "< 1"', "aggregate: max"),
     "suites/bad.yaml:6: checks[[]0[]].aggregate: 'aggregate' summarises the samples of a "
     "'window'; add a window"),
    (check("query: up", 'threshold: "< 1"', "aggregate: median", "window: 1m"),
     "suites/bad.yaml:6: checks[[]0[]].aggregate: 'median' is not one of max, min, avg, last*"),
    (check("query: up", 'threshold: "< 1"', "observe: {duration: 10s, interval: 1m}"),
     "suites/bad.yaml:6: checks[[]0[]].observe.interval: interval (1m) is longer than the "
     "duration (10s)"),
    (check("query: up", 'threshold: "< 1"', "observe: {duration: 10s, interval: 1s, "
           "failure_limit: -1}"),
     "suites/bad.yaml:6: checks[[]0[]].observe.failure_limit: -1 is less than the minimum of 0"),
    (check("query: up", 'threshold: "< 1"', "observe: {duration: 10s}"),
     "suites/bad.yaml:6: checks[[]0[]].observe: missing required key 'interval'"),
    (check("query: up", 'threshold: "< 1"', "timeout: 5s", "observe: {duration: 10s, "
           "interval: 1s}"),
     "suites/bad.yaml:6: checks[[]0[]].timeout: the check's timeout (5s) ends the observation "
     "before its duration (10s); raise or drop it"),
    (check("query: up", 'threshold: "< 1"', "no_data: ignore"),
     "suites/bad.yaml:6: checks[[]0[]].no_data: 'ignore' is not one of fail, pass, skip, "
     "inconclusive"),
    (check("query: up", "baseline: {relative: '+10%'}"),
     "suites/bad.yaml:5: checks[[]0[]].baseline.relative: '+10%' is not a baseline limit*"),
    (check("query: up"),
     "suites/bad.yaml:2: checks[[]0[]]: a metric check needs 'threshold', 'between' or "
     "'baseline'"),
    (check('threshold: "< 1"'), "suites/bad.yaml:2: checks[[]0[]]: a metric check needs 'query'"),
    (check("query: up", 'threshold: "< 1"', "request: {path: /}"),
     "suites/bad.yaml:6: checks[[]0[]].request: 'request' does not apply to a metric check"),
    ("service: api\nchecks:\n  - {name: h, kind: health, request: {path: /}, threshold: '< 1'}\n",
     "suites/bad.yaml:3: checks[[]0[]].threshold: 'threshold' does not apply to a health check with 'request'"),
    (check("query: up", 'threshold: "< 1"', "source: defualt"),
     "suites/bad.yaml:6: checks[[]0[]].source: unknown metric source 'defualt' in environment 'test' "
     "(did you mean 'default'?); its sources: default, stats"),
    (check("query: count", 'threshold: "< 1"', "source: stats", "window: 5m"),
     "suites/bad.yaml:7: checks[[]0[]].window: 'window' needs a source with history, and 'stats' in "
     "environment 'test' is http http://127.0.0.1:9/stats; use 'observe' to watch it live "
     "instead"),
    (check("query: 'items['", 'threshold: "< 1"', "source: stats"),
     "suites/bad.yaml:4: checks[[]0[]].query: bad JMESPath expression 'items[': * (for source "
     "'stats', http http://127.0.0.1:9/stats)"),
    (check("query: 'up{job=\"{{ job }}\"}'", 'threshold: "< 1"'),
     "suites/bad.yaml:4: checks[[]0[]].query: template '{{ job }}' is not defined in environment "
     "'test'*"),
])
def test_bad_metric_check_is_a_collection_error(project: Project, suite: str,
                                                message: str) -> None:
    project.environments(SOURCES)
    project.suite("bad.yaml", suite)
    assert_error(project, message)


@pytest.mark.parametrize(("source", "message"), [
    ("{type: promethus, url: 'http://x'}",
     "environments.yaml:4: environments.test.metrics.default.type: unknown metric source type "
     "'promethus' (did you mean 'prometheus'?); known: prometheus, datadog, http, command, sql, alertmanager"),
    ("{url: 'http://x'}",
     "environments.yaml:4: environments.test.metrics.default: missing required key 'type'"),
    ("{type: prometheus, url: 'http://x', tiemout: 1s}",
     "environments.yaml:4: environments.test.metrics.default.tiemout: unknown key 'tiemout' "
     "(did you mean 'timeout'?)*"),
    ("{type: prometheus, url: 'http://x', username: me}",
     "environments.yaml:4: environments.test.metrics.default.username: basic auth needs both "
     "'username' and 'password'"),
    ("{type: prometheus, url: 'localhost:9090'}",
     "environments.yaml:4: environments.test.metrics.default.url: 'localhost:9090' is not an "
     "http(s) URL"),
    ("{type: datadog, api_key: k}",
     "environments.yaml:4: environments.test.metrics.default: missing required key 'app_key'"),
    ("{type: datadog, api_key: k, app_key: a, lookback: soon}",
     "environments.yaml:4: environments.test.metrics.default.lookback: 'soon' is not a "
     "duration*"),
    ("{type: command}",
     "environments.yaml:4: environments.test.metrics.default: missing required key 'command'"),
    ("{type: command, command: 'echo 1', timeout: forever}",
     "environments.yaml:4: environments.test.metrics.default.timeout: 'forever' is not a "
     "duration*"),
])
def test_bad_metric_source_names_file_line_and_key(project: Project, source: str,
                                                   message: str) -> None:
    project.metric_source(source)
    project.suite("ok.yaml", check("query: up", 'threshold: "< 1"'))
    assert_error(project, message)
