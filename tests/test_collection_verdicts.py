"""Verdicts you can bet a deploy on: what collection refuses, and what a metric check may not
pass on (no evidence, a malformed answer)."""

from __future__ import annotations

import fnmatch
import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conftest import Project, runpytest
from metric_servers import Prometheus

TWO_ENVS = """\
environments:
  staging:
    services:
      api: {url: "http://127.0.0.1:9"}
  production:
    services:
      api: {url: "http://127.0.0.1:9"}
"""


def assert_collection_error(project: Project, message: str, *args: str) -> str:
    result = runpytest(project.pytester, "--env=production", *args)
    out = result.stdout.str() + result.stderr.str()
    assert result.ret not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), out
    assert "Traceback" not in out and "pytest_deploycheck/" not in out, out
    assert any(fnmatch.fnmatch(line, "*" + message) for line in out.splitlines()), out
    return out


# --- 1. environment names -------------------------------------------------------------------

@pytest.mark.parametrize(("suite", "message"), [
    ("envs: [prodution]\nchecks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n",
     "suites/s.yaml:1: envs[[]0[]]: unknown environment 'prodution' (did you mean "
     "'production'?); known: staging, production"),
    ("checks:\n  - name: a\n    kind: health\n    request: {url: 'http://127.0.0.1:9/'}\n"
     "    envs:\n      - staging\n      - prod\n",
     "suites/s.yaml:7: checks[[]0[]].envs[[]1[]]: unknown environment 'prod'*"),
    ("skip_envs: [stagin]\nchecks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n",
     "suites/s.yaml:1: skip_envs[[]0[]]: unknown environment 'stagin' (did you mean 'staging'?)*"),
    ("checks:\n  - name: a\n    kind: health\n    request: {url: 'http://127.0.0.1:9/'}\n"
     "    skip_envs: [staging, productoin]\n",
     "suites/s.yaml:5: checks[[]0[]].skip_envs[[]1[]]: unknown environment 'productoin'*"),
    ("checks:\n  - name: a\n    kind: health\n    request: {url: 'http://127.0.0.1:9/'}\n"
     "    envs: []\n",
     "suites/s.yaml:5: checks[[]0[]].envs: an empty list of environments selects the check "
     "nowhere*"),
    ("envs: []\nchecks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n",
     "suites/s.yaml:1: envs: an empty list of environments selects the check nowhere*"),
])
def test_unknown_environment_in_a_suite_is_a_collection_error(project: Project, suite: str,
                                                              message: str) -> None:
    project.environments(TWO_ENVS)
    project.suite("s.yaml", suite)
    assert_collection_error(project, message)
    # In the gate: the run does not end passed.
    result = runpytest(project.pytester, "--env=production")
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_empty_envs_in_a_python_marker_is_a_collection_error(project: Project) -> None:
    project.environments(TWO_ENVS)
    project.pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.deploycheck(kind="smoke", envs=[])
        def test_a(deploy_env):
            pass
        """)
    assert_collection_error(project, "test_x.py:3: deploycheck(envs=...): an empty list of "
                                     "environments selects the check nowhere*")


def test_extends_of_an_environment_not_selected_is_checked_too(project: Project) -> None:
    project.environments(TWO_ENVS + "  canary:\n    extends: prodution\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    out = assert_collection_error(project, "environments.yaml:9: environments.canary.extends: extends "
                                     "unknown environment 'prodution' (did you mean "
                                     "'production'?)")
    assert "--env:" not in out  # the file is at fault, not the option


# --- 2. no valid measurement ------------------------------------------------------------------

ALWAYS_FAILS = "{type: command, command: 'echo boom >&2; exit 3'}"


def test_an_observation_whose_every_measurement_errored_does_not_pass(project: Project) -> None:
    project.metric_source(ALWAYS_FAILS)
    project.suite("m.yaml", """\
        checks:
          - {name: m, kind: metric, query: up, threshold: "< 1",
             observe: {duration: 2s, interval: 1s}}
        """)
    result = runpytest(project.pytester, "--env=test", "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED no data: no valid measurement (0 breaches (failure_limit"
                                 " 0) and 3 errors (error_limit 4) in 3 measurements*; last: "
                                 "command exited with 3: boom) (no_data: fail)"])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] != "passed"


def test_errors_and_empty_measurements_together_are_no_evidence(project: Project,
                                                                tmp_path: Any) -> None:
    # Alternates: an error, then an answer without samples (NaN).
    counter = tmp_path / "n"
    project.metric_source(f"{{type: command, command: 'n=$(cat {counter} 2>/dev/null || echo 0); "
                          f"echo $((n+1)) > {counter}; [ $((n % 2)) = 0 ] && exit 3; echo NaN'}}")
    project.suite("m.yaml", """\
        checks:
          - {name: m, kind: metric, query: up, threshold: "< 1", no_data: skip,
             observe: {duration: 2s, interval: 1s}}
        """)
    result = runpytest(project.pytester, "--env=test", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no data: no valid measurement*(no_data: skip)*"])


def test_no_data_pass_is_the_only_way_through_and_says_so(project: Project) -> None:
    project.metric_source(ALWAYS_FAILS)
    project.suite("m.yaml", """\
        checks:
          - {name: m, kind: metric, query: up, threshold: "< 1", no_data: pass,
             observe: {duration: 1s, interval: 1s}}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *m[[]test[]]: passed without evidence (no_data: pass): "
                                 "no valid measurement*"])


@pytest.mark.parametrize("printed", ["NaN", "+Inf", "-Inf", "abc", ""])
def test_a_value_that_is_not_a_finite_number_never_passes(project: Project,
                                                          printed: str) -> None:
    project.metric_source(f"{{type: command, command: 'echo \"{printed}\"'}}")
    project.suite("m.yaml", 'checks:\n  - {name: m, kind: metric, query: up, threshold: "< 1"}\n')
    runpytest(project.pytester, "--env=test").assert_outcomes(failed=1)


@pytest.mark.parametrize("extra", ["", ", window: 5m", ", observe: {duration: 1s, interval: 1s}",
                                   ", observe: {duration: 1s, interval: 1s, failure_limit: 5}"])
def test_an_empty_vector_never_passes(project: Project, prometheus: Prometheus,
                                      extra: str) -> None:
    project.metric_source(f'{{type: prometheus, url: "{prometheus.url}"}}')
    project.suite("m.yaml", f'checks:\n  - {{name: m, kind: metric, query: no_such_series, '
                            f'threshold: "< 1"{extra}}}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED *returned*samples*"])


def test_a_window_of_only_nan_never_passes(project: Project, prometheus: Prometheus) -> None:
    project.metric_source(f'{{type: prometheus, url: "{prometheus.url}"}}')
    project.suite("m.yaml", 'checks:\n  - {name: m, kind: metric, query: dc_nan_ratio, '
                            'threshold: "< 1", window: 5m}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED no data: every sample was NaN or infinite*"])


# --- 3. malformed answers ---------------------------------------------------------------------

class CannedServer(ThreadingHTTPServer):
    """Answers ``/<name>/...`` with ``answers[name]`` (status, content type, body)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CannedHandler)
        self.answers: dict[str, tuple[int, str, bytes]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _CannedHandler(BaseHTTPRequestHandler):
    server: CannedServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, ctype, body = self.server.answers[self.path.split("/")[1]]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    srv = CannedServer()
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _j(value: Any) -> tuple[int, str, bytes]:
    return 200, "application/json", json.dumps(value).encode()


PROMETHEUS_ANSWERS = {
    "not-json": (200, "application/json", b"{oops"),
    "html": (200, "text/html", b"<html><body>Sign in</body></html>"),
    "null": _j(None),
    "no-data": _j({"status": "success"}),
    "data-string": _j({"status": "success", "data": "nope"}),
    "result-type": _j({"status": "success", "data": {"resultType": "streams", "result": []}}),
    "result-dict": _j({"status": "success", "data": {"resultType": "vector", "result": {}}}),
    "item-string": _j({"status": "success", "data": {"resultType": "vector", "result": ["x"]}}),
    "metric-list": _j({"status": "success", "data": {"resultType": "vector",
                                                     "result": [{"metric": [], "value": [1, "1"]}]}}),
    "value-word": _j({"status": "success", "data": {"resultType": "vector",
                                                    "result": [{"metric": {}, "value": [1, "high"]}]}}),
    "time-word": _j({"status": "success", "data": {"resultType": "vector",
                                                   "result": [{"metric": {}, "value": ["now", "1"]}]}}),
    # A sample at no time is no evidence (it passed "< 1"), nor at a time no date has.
    "time-nan": _j({"status": "success", "data": {"resultType": "vector",
                                                  "result": [{"metric": {}, "value": ["NaN", "0.5"]}]}}),
    "time-far": _j({"status": "success", "data": {"resultType": "vector",
                                                  "result": [{"metric": {}, "value": [1e20, "0.5"]}]}}),
    "values-none": _j({"status": "success", "data": {"resultType": "matrix",
                                                     "result": [{"metric": {}, "values": None}]}}),
    "scalar-null": _j({"status": "success", "data": {"resultType": "scalar", "result": None}}),
    "error-list": _j({"status": "error", "errorType": ["bad"], "error": {"x": 1}}),
}


@pytest.mark.parametrize("name", list(PROMETHEUS_ANSWERS))
@pytest.mark.parametrize("window", ["", ", window: 1m"])
def test_a_malformed_prometheus_answer_fails_with_one_line(project: Project, canned: CannedServer,
                                                           name: str, window: str) -> None:
    canned.answers[name] = PROMETHEUS_ANSWERS[name]
    project.metric_source(f'{{type: prometheus, url: "{canned.url}/{name}"}}')
    project.suite("m.yaml", f'checks:\n  - {{name: m, kind: metric, query: up, threshold: "< 1"'
                            f'{window}}}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Traceback" not in out and "pytest_deploycheck/" not in out, out
    result.stdout.fnmatch_lines(["  FAILED Prometheus *"])


DATADOG_ANSWERS = {
    "not-json": (200, "application/json", b"<html>"),
    "null": _j(None),
    "series-string": _j({"status": "ok", "series": "nope"}),
    "series-item": _j({"status": "ok", "series": [1]}),
    "pointlist-dict": _j({"status": "ok", "series": [{"scope": "a", "pointlist": {"a": 1}}]}),
    "point-word": _j({"status": "ok", "series": [{"scope": "a", "pointlist": [["now", 1.0]]}]}),
    "value-word": _j({"status": "ok", "series": [{"scope": "a", "pointlist": [[1000, "high"]]}]}),
    "point-nan": _j({"status": "ok", "series": [{"scope": "a", "pointlist": [["NaN", 0.5]]}]}),
    "errors-500": (500, "application/json", json.dumps({"errors": "down"}).encode()),
}


@pytest.mark.parametrize("name", list(DATADOG_ANSWERS))
def test_a_malformed_datadog_answer_fails_with_one_line(project: Project, canned: CannedServer,
                                                        name: str) -> None:
    canned.answers[f"dd-{name}"] = DATADOG_ANSWERS[name]
    project.metric_source(f'{{type: datadog, url: "{canned.url}/dd-{name}", api_key: k, '
                          f'app_key: a}}')
    project.suite("m.yaml", 'checks:\n  - {name: m, kind: metric, query: up, threshold: "< 1"}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "Traceback" not in out and "pytest_deploycheck/" not in out, out
    result.stdout.fnmatch_lines(["  FAILED Datadog *"])


def test_malformed_answers_are_query_errors_in_an_observation(project: Project,
                                                              canned: CannedServer) -> None:
    canned.answers["obs"] = PROMETHEUS_ANSWERS["item-string"]
    project.metric_source(f'{{type: prometheus, url: "{canned.url}/obs"}}')
    project.suite("m.yaml", """\
        checks:
          - {name: m, kind: metric, query: up, threshold: "< 1",
             observe: {duration: 1s, interval: 500ms, error_limit: 1}}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  measurement 1 at *: error (Prometheus *)",
                                 "  FAILED 0 breaches (failure_limit 0) and 2 errors*"])


# --- 4. windows -------------------------------------------------------------------------------

@pytest.mark.parametrize(("windows", "message"), [
    ("blackout: [{from: 2026-13-01, to: 2027-01-05}]",
     "environments.yaml:9: environments.production.windows.blackout[[]0[]].from: '2026-13-01' is "
     "not a date*"),
    ("blackout: [{from: 2026-12-01, to: 2026-02-30}]",
     "environments.yaml:9: environments.production.windows.blackout[[]0[]].to: '2026-02-30' is "
     "not a date*"),
    ("blackout: [{from: '2026-12-01 25:00:00', to: 2027-01-05}]",
     "environments.yaml:9: environments.production.windows.blackout[[]0[]].from: *is not a date*"),
    ("blackout: [{from: 2026-12-01 25:00:00, to: 2027-01-05}]",
     "environments.yaml:9: environments.production.windows.blackout[[]0[]].from: *is not a date*"),
    ("allow: [{days: [mno], start: '14:00', end: '17:00'}]",
     "environments.yaml:9: environments.production.windows.allow[[]0[]].days: unknown weekday "
     "'mno' (did you mean 'mon'?)*"),
    ("allow: [{days: [mon], start: '25:00', end: '17:00'}]",
     "environments.yaml:9: environments.production.windows.allow[[]0[]].start: '25:00' is not a "
     "time of day*"),
    ("tz: Europe/Pariss",
     "environments.yaml:9: environments.production.windows.tz: unknown time zone "
     "'Europe/Pariss' (did you mean 'Europe/Paris'?)*"),
])
def test_bad_window_values_are_collection_errors(project: Project, windows: str,
                                                 message: str) -> None:
    project.environments(TWO_ENVS + "    windows:\n      " + windows + "\n")
    project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, window: true}\n")
    assert_collection_error(project, message)


def test_an_invalid_date_elsewhere_stays_a_string(project: Project) -> None:
    project.environments(TWO_ENVS + "    vars: {freeze: 2026-13-01}\n")
    project.suite("s.yaml", "checks:\n  - {name: e, kind: checklist, command: "
                            "'test \"{{ freeze }}\" = 2026-13-01'}\n")
    runpytest(project.pytester, "--env=production").assert_outcomes(passed=1)


# --- 5. Python check files that do not compile ------------------------------------------------

def test_a_syntax_error_names_the_file_line_and_message(project: Project) -> None:
    project.environments(TWO_ENVS)
    project.pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.deploycheck(kind="smoke")
        def test_a(deploy_env):
            x = (1,
        """)
    result = runpytest(project.pytester, "--env=production")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "*ERROR collecting test_x.py*",
        "test_x.py:5: SyntaxError: '(' was never closed",
    ])
    result.stdout.fnmatch_lines(["  NOT COLLECTED test_x.py:5: SyntaxError: '(' was never closed"])
    assert "_pytest/" not in result.stdout.str()


def test_a_syntax_error_in_a_conftest_names_its_file_and_line(project: Project) -> None:
    project.environments(TWO_ENVS)
    sub = project.path / "checks"
    sub.mkdir()
    (sub / "conftest.py").write_text("def broken(:\n    pass\n")
    (sub / "test_y.py").write_text("def test_y(deploy_env):\n    pass\n")
    result = runpytest(project.pytester, "--env=production")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["  NOT COLLECTED checks/conftest.py:1: SyntaxError: *"])


# --- 6. errors at the key's own line ----------------------------------------------------------

@pytest.mark.parametrize(("suite", "message"), [
    ("checks:\n  - name: a\n    kind: metric\n    query: up\n    threshold: '< 1'\n"
     "    source: prom\n",
     "suites/s.yaml:6: checks[[]0[]].source: unknown metric source 'prom' in environment "
     "'production'*"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request:\n"
     "      path: '/{{ nope }}'\n",
     "suites/s.yaml:6: checks[[]0[]].request.path: template '{{ nope }}' is not defined*"),
    ("service: web\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n",
     "suites/s.yaml:1: service: unknown service 'web' in environment 'production'*"),
    ("checks:\n  - name: a\n    kind: health\n    service: web\n    request: {path: /}\n",
     "suites/s.yaml:4: checks[[]0[]].service: unknown service 'web'*"),
    ("checks:\n  - name: a\n    kind: health\n    request:\n      path: /\n      service: web\n",
     "suites/s.yaml:6: checks[[]0[]].request.service: unknown service 'web'*"),
    ("checks:\n  - name: a\n    kind: metric\n    query: 'up{job=\"{{ job }}\"}'\n"
     "    threshold: '< 1'\n",
     "suites/s.yaml:4: checks[[]0[]].query: template '{{ job }}' is not defined*"),
    ("service: api\nchecks:\n  - name: a\n    kind: smoke\n    steps:\n"
     "      - request: {path: /}\n      - request:\n          path: /\n"
     "          headers: {X: '{{ nope }}'}\n",
     "suites/s.yaml:9: checks[[]0[]].steps[[]1[]].request.headers: template '{{ nope }}'*"),
    ("checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n"
     "  - name: b\n    kind: health\n    request: {url: 'http://127.0.0.1:9/',\n"
     "                 headers: {X: 1}\n",
     "suites/s.yaml:5: malformed YAML: while parsing a flow mapping: *"),
])
def test_errors_point_at_the_line_of_the_key(project: Project, suite: str, message: str) -> None:
    project.environments(TWO_ENVS + "    metrics:\n      default: {type: prometheus, "
                                    "url: 'http://127.0.0.1:9'}\n")
    project.suite("s.yaml", suite)
    assert_collection_error(project, message, "--collect-only")


# --- 7. duplicate check ids -------------------------------------------------------------------

def test_two_files_with_the_same_suite_and_check_are_a_collection_error(
        project: Project) -> None:
    project.environments(TWO_ENVS)
    for name in ("a.yaml", "b.yaml"):
        project.suite(name, "suite: api\nchecks:\n  - {name: latency, kind: health, "
                            "request: {url: 'http://127.0.0.1:9/'}}\n")
    message = ("suites/b.yaml:3: checks[[]0[]].name: check id 'api::latency' is also defined "
               "at suites/a.yaml:3*")
    assert_collection_error(project, message)
    # Under xdist every worker collects both files and finds the duplicate itself.
    result = runpytest(project.pytester, "--env=production", "-n", "2", "--gate-report=g.json")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["  NOT COLLECTED " + message])
    assert json.loads((project.path / "g.json").read_text())["verdict"] != "passed"


def test_a_parametrized_check_cannot_share_a_baseline_with_a_check_named_like_it(
        project: Project) -> None:
    project.environments(TWO_ENVS)
    project.suite("s.yaml", """\
        checks:
          - {name: "p99[eu]", kind: health, request: {url: 'http://127.0.0.1:9/'}}
          - {name: p99, kind: health, request: {url: 'http://127.0.0.1:9/{{ r }}'},
             parametrize: {r: [eu, us]}}
        """)
    assert_collection_error(project, "suites/s.yaml:3: checks[[]1[]].name: check id "
                                     "'s::p99[[]eu[]]' is also defined at suites/s.yaml:2*")


# --- 8. --ack and both rules ------------------------------------------------------------------

def test_an_ack_for_a_blackout_says_it_cannot_be_acknowledged(project: Project) -> None:
    project.environments(TWO_ENVS + "    windows:\n      blackout: [{from: 2026-12-15, "
                                    "to: 2027-01-05, reason: holiday freeze}]\n")
    project.suite("pre.yaml", "checks:\n  - {name: deploy window, kind: checklist, window: "
                              "true}\n")
    result = runpytest(project.pytester, "--env=production", "--deploy-time=2026-12-20T10:00Z",
                       "--ack=pre::deploy window")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  NOTE --ack 'pre::deploy window' matched *deploy "
                                 "window[[]production[]], which cannot be acknowledged: *"
                                 "blackout*"])
    assert "matched no item" not in result.stdout.str()


def test_an_ack_for_a_check_of_another_kind_names_it(project: Project) -> None:
    project.environments(TWO_ENVS)
    project.suite("s.yaml", "checks:\n  - {name: down, kind: health, request: {url: "
                            "'http://127.0.0.1:9/'}}\n")
    result = runpytest(project.pytester, "--env=production", "--ack=s::down")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  NOTE --ack 's::down' matched suites/s.yaml::s::down"
                                 "[[]production[]], which cannot be acknowledged: a health check "
                                 "that is not a manual step; only manual steps and "
                                 "emergency-only deploy windows take --ack"])


def test_a_metric_breaking_threshold_and_baseline_reports_both(project: Project,
                                                              prometheus: Prometheus) -> None:
    project.metric_source(f'{{type: prometheus, url: "{prometheus.url}"}}')
    state = project.path / ".deploycheck"
    state.mkdir()
    (state / "test.json").write_text(json.dumps({"version": 1, "baselines": {
        "m::latency": {"value": 0.01, "recorded": "2026-01-01T00:00:00+00:00",
                       "query": "dc_latency_seconds"}}}))
    project.suite("m.yaml", textwrap.dedent("""\
        checks:
          - {name: latency, kind: metric, query: dc_latency_seconds, threshold: "< 100ms",
             baseline: {relative: "<= +10%"}}
        """))
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED 1 of 1 samples breach < 100ms (first: 0.25 at *); "
                                 "value 0.25 breaches <= 0.011*"])


def test_the_metric_fixture_refuses_a_nan_value(project: Project, prometheus: Prometheus) -> None:
    # NaN compares false with everything: `assert not ratio > 0.01` would pass on it.
    project.metric_source(f'{{type: prometheus, url: "{prometheus.url}"}}')
    project.pytester.makepyfile(test_m="""
        def test_ratio(metric):
            ratio = metric("default").query("dc_nan_ratio")
            assert not ratio > 0.01
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no data for 'dc_nan_ratio' from prometheus *: the value is "
                                 "nan, not a finite number"])


def test_a_check_module_that_raises_on_import_is_named_with_its_line(project: Project) -> None:
    project.environments(TWO_ENVS)
    project.pytester.makepyfile(test_x="import nosuchmodule_xyz\n",
                                test_y="import pytest\nundefined_name\n")
    result = runpytest(project.pytester, "--env=production")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([
        "  NOT COLLECTED test_x.py:1: ModuleNotFoundError: No module named 'nosuchmodule_xyz'",
        "  NOT COLLECTED test_y.py:2: NameError: name 'undefined_name' is not defined"])
    # Each xdist worker reports it; the gate lists it once.
    result = runpytest(project.pytester, "--env=production", "-n", "2")
    assert result.stdout.str().count("  NOT COLLECTED test_y.py:2: NameError") == 1
