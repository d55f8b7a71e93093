"""Metric checks against a real Prometheus with backfilled, exact data."""

from __future__ import annotations

import json
import textwrap
import time

import pytest

from conftest import Project, free_port, prometheus_env, runpytest
from metric_servers import Prometheus
from servers import LoopbackServer


def one_check(project: Project, body: str) -> None:
    project.suite("metrics.yaml", "checks:\n  - name: m\n    kind: metric\n" + "".join(
        f"    {line}\n" for line in textwrap.dedent(body).strip().splitlines()))


def test_instant_query_under_threshold_passes(project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, """
        query: 'dc_error_ratio{service="api"}'
        threshold: "< 0.01"
    """)
    result = runpytest(project.pytester, "--env=test", "-v", "-m", "metric and postdeploy")
    result.assert_outcomes(passed=1)


def test_breach_shows_source_query_samples_and_rule(project: Project,
                                                    prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, """
        query: 'dc_error_ratio{service="web"}'
        threshold: "< 1%"
        runbook: https://wiki.example.com/errors
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "metric check 'm' failed in environment 'test'",
        "  at suites/metrics.yaml:2",
        "  runbook: https://wiki.example.com/errors",
        f"  source: default (prometheus {prometheus.url})",
        "  query: dc_error_ratio{service=\"web\"}",
        "  rule: < 1%",
        "    20??-*Z  {__name__=\"dc_error_ratio\", service=\"web\"} 0.02  BREACH < 1%",
        "  FAILED 1 of 1 samples breach < 1%*",
    ])
    result.stdout.fnmatch_lines(["*FAILED*m[[]test[]]*(suites/metrics.yaml:2*",
                                 "*1 of 1 samples breach < 1%*"])


@pytest.mark.parametrize(("threshold", "outcome"), [("< 500ms", "passed"), ("< 200ms", "failed"),
                                                    ("<= 0.25s", "passed"), ("> 0.3", "failed")])
def test_units_in_thresholds_are_against_a_value_in_seconds(
        project: Project, prometheus: Prometheus, threshold: str, outcome: str) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_latency_seconds
        threshold: "{threshold}"
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(**{outcome: 1})


@pytest.mark.parametrize(("between", "outcome"), [("[0.2, 300ms]", "passed"),
                                                  ("[0.3, 0.4]", "failed")])
def test_between_includes_both_ends_and_takes_units(project: Project, prometheus: Prometheus,
                                                    between: str, outcome: str) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_latency_seconds
        between: {between}
    """)
    runpytest(project.pytester, "--env=test").assert_outcomes(**{outcome: 1})


def test_several_series_is_an_error_naming_them(project: Project,
                                                 prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, """
        query: dc_error_ratio
        threshold: "< 0.05"
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*FAILED the query returned 2 series ({__name__=\"dc_error_ratio\", service=\"api\"}, "
        "{__name__=\"dc_error_ratio\", service=\"web\"}); make it return one (e.g. sum(...)) or "
        "set 'series: each|sum|avg|max|min'"])


@pytest.mark.parametrize(("series", "outcome"), [("max", "failed"), ("min", "passed"),
                                                 ("avg", "failed"), ("sum", "failed"),
                                                 ("each", "failed")])
def test_series_says_how_several_series_are_judged(project: Project, prometheus: Prometheus,
                                                   series: str, outcome: str) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_error_ratio
        threshold: "< 0.01"
        series: {series}
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(**{outcome: 1})
    if series == "each":
        result.stdout.fnmatch_lines(["*service=\"api\"} 0.002  ok",
                                     "*service=\"web\"} 0.02  BREACH < 0.01"])


def test_window_judges_every_sample_of_the_range(project: Project,
                                                  prometheus: Prometheus) -> None:
    # dc_spiky_ratio is 0.001 now, but was 0.05 from 150 s to 120 s before the session began.
    minutes = int((time.time() - prometheus.started + 150) // 60) + 2
    prometheus_env(project, prometheus.url)
    project.suite("metrics.yaml", f"""\
        checks:
          - {{name: now, kind: metric, query: dc_spiky_ratio, threshold: "< 0.01"}}
          - {{name: recent, kind: metric, query: dc_spiky_ratio, threshold: "< 0.01",
              window: 1m, step: 15s}}
          - {{name: long, kind: metric, query: dc_spiky_ratio, threshold: "< 0.01",
              window: {minutes}m, step: 15s}}
        """)
    result = runpytest(project.pytester, "--env=test", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"  rule: < 0.01 (every sample of the last {minutes}m)",
                                 "*dc_spiky_ratio\"} 0.05  BREACH < 0.01",
                                 "*FAILED 2 of * samples breach < 0.01*"])
    result.stdout.fnmatch_lines(["PASSED*recent[[]test[]]"])


@pytest.mark.parametrize(("aggregate", "threshold", "outcome"), [
    (None, "< 0.02", "failed"), ("avg", "< 0.02", "passed"), ("max", "< 0.02", "failed"),
    ("min", "<= 0.001", "passed"), ("last", "< 1", "passed")])
def test_aggregate_judges_one_value_of_the_window(project: Project, prometheus: Prometheus,
                                                  aggregate: str | None, threshold: str,
                                                  outcome: str) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_sawtooth
        threshold: "{threshold}"
        window: 5m
        step: 15s
        {f"aggregate: {aggregate}" if aggregate else ""}
    """)
    runpytest(project.pytester, "--env=test").assert_outcomes(**{outcome: 1})


@pytest.mark.parametrize(("policy", "outcomes"), [
    ("fail", {"failed": 1}), ("pass", {"passed": 1}), ("skip", {"skipped": 1}),
    ("inconclusive", {"skipped": 1})])
def test_no_data_policy(project: Project, prometheus: Prometheus, policy: str,
                        outcomes: dict[str, int]) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_metric_that_does_not_exist
        threshold: "< 1"
        no_data: {policy}
    """)
    result = runpytest(project.pytester, "--env=test", "-rs")
    result.assert_outcomes(**outcomes)
    if policy == "inconclusive":
        result.stdout.fnmatch_lines([
            "test: inconclusive (0 passed, 0 failed, 0 skipped, 1 inconclusive)",
            "  INCONCLUSIVE *m[[]test[]]  (suites/metrics.yaml:2)",
            "         *no data: the query returned no samples (no_data: inconclusive)",
            "SKIPPED*inconclusive: no data: the query returned no samples (no_data: "
            "inconclusive)"])
    if policy == "fail":
        result.stdout.fnmatch_lines(["*FAILED no data: the query returned no samples "
                                     "(no_data: fail)"])


@pytest.mark.parametrize(("extra", "outcome", "line"), [
    ("", "failed", "*no data: every sample was NaN or infinite (no_data: fail)"),
    ("no_data: pass", "passed", None),
    ("non_finite: fail", "failed", "*nan  BREACH not a finite number"),
])
def test_nan_is_no_data_unless_the_check_says_otherwise(
        project: Project, prometheus: Prometheus, extra: str, outcome: str,
        line: str | None) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, f"""
        query: dc_nan_ratio
        threshold: "!= 1"
        {extra}
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(**{outcome: 1})
    if line:
        result.stdout.fnmatch_lines([line])


def test_invalid_promql_fails_only_its_item_with_prometheus_error_text(
        project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    project.suite("metrics.yaml", """\
        checks:
          - {name: broken, kind: metric, query: "sum(rate(x[5m]", threshold: "< 1"}
          - {name: fine, kind: metric, query: "dc_latency_seconds", threshold: "< 1"}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAILED Prometheus refused the query (400 bad_data): "
                                 "invalid parameter \"query\": *parse error*"])


@pytest.mark.parametrize(("path", "reason"), [
    ("/status/503", "*FAILED Prometheus refused the query (503 error): no error text"),
    ("/text", "*FAILED Prometheus answered 200 with a body that is not JSON: *"),
    ("/hang", "*FAILED timed out after 1s (ReadTimeout)"),
])
def test_source_faults_fail_the_item_with_a_reason(project: Project, server: LoopbackServer,
                                                   path: str, reason: str) -> None:
    url = f"{server.url}{path}"
    prometheus_env(project, url, ", timeout: 1s")
    one_check(project, """
        query: up
        threshold: "< 1"
    """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    assert time.monotonic() - started < 10
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([reason])


def test_unreachable_prometheus_fails_the_item(project: Project) -> None:
    prometheus_env(project, f"http://127.0.0.1:{free_port()}")
    one_check(project, """
        query: up
        threshold: "< 1"
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED cannot connect: *Connection refused*"])


def test_query_templates_and_secrets_in_source_headers(
        project: Project, prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROM_TOKEN", "prom-token-5d1c9e")
    monkeypatch.setenv("PROM_PASSWORD", "prom-pass-8a2f4b")
    project.environments(f"""\
        environments:
          test:
            vars: {{service: web}}
            metrics:
              default:
                type: prometheus
                url: "{prometheus.url}"
                headers: {{X-Scope-OrgID: "${{PROM_TOKEN}}"}}
              basic:
                type: prometheus
                url: "{prometheus.url}"
                username: deploy
                password: "${{PROM_PASSWORD}}"
        """)
    project.suite("metrics.yaml", """\
        checks:
          - {name: a, kind: metric, query: 'dc_error_ratio{service="{{ service }}"}',
             threshold: "< 0.01"}
          - {name: b, kind: metric, source: basic, query: 'dc_error_ratio{service="{{ service }}"}',
             threshold: "< 0.01"}
        """)
    result = runpytest(project.pytester, "--env=test", "-vv", "--junitxml=junit.xml")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(['  query: dc_error_ratio{service="web"}'])
    output = result.stdout.str() + (project.path / "junit.xml").read_text()
    assert "prom-token-5d1c9e" not in output
    assert "prom-pass-8a2f4b" not in output


def test_metric_details_travel_with_the_report(project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    one_check(project, """
        query: dc_latency_seconds
        threshold: "< 1s"
    """)
    project.pytester.makeconftest("""
        import json
        def pytest_runtest_logreport(report):
            # The setup report describes the check, the call report how it went.
            if report.when in ("setup", "call"):
                with open(f"{report.when}.json", "w") as out:
                    json.dump(report.deploycheck, out)
    """)
    runpytest(project.pytester, "--env=test", "-n", "2").assert_outcomes(passed=1)
    info = json.loads((project.path / "setup.json").read_text())
    assert info["id"] == "metrics::m" and info["kind"] == "metric"
    details = json.loads((project.path / "call.json").read_text())["details"]
    assert details["query"] == "dc_latency_seconds" and details["rules"] == ["< 1s"]
    assert details["value"] == 0.25 and details["failure"] is None
    assert [sample[1:3] for sample in details["samples"]] == [[0.25, True]]


def test_prometheus_source_sends_its_headers_and_basic_auth(project: Project,
                                                            server: LoopbackServer) -> None:
    import base64

    project.environments(f"""\
        environments:
          test:
            metrics:
              default:
                type: prometheus
                url: "{server.url}/echo/tenant-7"
                headers: {{X-Scope-OrgID: tenant-7}}
                username: deploy
                password: s3cret-pass
        """)
    one_check(project, """
        query: up
        threshold: "< 1"
    """)
    runpytest(project.pytester, "--env=test").assert_outcomes(failed=1)
    method, path, headers = [r for r in server.requests if r[1].startswith("/echo/tenant-7")][-1]
    assert (method, path) == ("GET", "/echo/tenant-7/api/v1/query")
    assert headers["X-Scope-OrgID"] == "tenant-7"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"deploy:s3cret-pass").decode()
