"""A check passes only on evidence: gaps, projections under functions, and other ways a
verdict could rest on less than it says (real Prometheus, real HTTP servers)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator

import pytest

from conftest import Project, runpytest
from metric_servers import (
    DD_API_KEY,
    DD_APP_KEY,
    DatadogServer,
    Prometheus,
    start_prometheus,
    stop_prometheus,
)
from servers import LoopbackServer


def literal(text: str) -> str:
    """``text`` for ``fnmatch_lines`` with its brackets meaning themselves."""
    return re.sub(r"[][]", lambda m: f"[{m.group()}]", text)

GAP_STEP = 15


def gap_series(start: float) -> str:
    """``dc_errors`` for two pods over the last 30 minutes: both 0, but pod b reports nothing
    from 15 to 8 minutes ago (longer than Prometheus' 5-minute lookback, so a real gap); and
    ``dc_pods`` for pod c, which starts reporting only 10 minutes ago (a new pod, no gap)."""
    base = int(start) - 1800
    lines = ["# TYPE dc_errors gauge"]
    for t in range(base, int(start) + 600, GAP_STEP):
        lines.append(f'dc_errors{{pod="a"}} 0 {t}')
        if not start - 900 <= t < start - 480:
            lines.append(f'dc_errors{{pod="b"}} 0 {t}')
    lines.append("# TYPE dc_pods gauge")
    for t in range(base, int(start) + 600, GAP_STEP):
        lines.append(f'dc_pods{{pod="a"}} 1 {t}')
        if t >= start - 600:
            lines.append(f'dc_pods{{pod="c"}} 1 {t}')
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def gappy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    srv = start_prometheus(tmp_path_factory.mktemp("gappy"), backfill=gap_series(time.time()))
    yield srv
    stop_prometheus(srv)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(pytester, "--env=test", *args)


# --- combining series over a window -----------------------------------------------------------

@pytest.mark.parametrize("how", ["sum", "max", "avg", "min"])
def test_a_series_with_a_gap_inside_the_window_is_not_combined_over_fewer_series(
        project: Project, gappy: Prometheus, pytester: pytest.Pytester, how: str) -> None:
    # Pod b reported nothing for 7 minutes: the sum there is pod a's alone, and pod b's
    # errors in those minutes are unknown, not 0.
    project.metric_source(f'{{type: prometheus, url: "{gappy.url}"}}')
    project.suite("m.yaml", f"""\
        checks:
          - {{name: errors, kind: metric, query: dc_errors, series: {how}, threshold: "< 1",
             window: 20m, step: 60s}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f'  FAILED series {{*pod="b"}} has no sample at *Z (a gap inside the window): '
        f"'series: {how}' would judge fewer series there"])


def test_a_series_that_starts_inside_the_window_is_no_gap(
        project: Project, gappy: Prometheus, pytester: pytest.Pytester) -> None:
    # A pod that started 10 minutes ago has no samples before: it did not exist, as PromQL's
    # own sum() sees it.
    project.metric_source(f'{{type: prometheus, url: "{gappy.url}"}}')
    project.suite("m.yaml", """\
        checks:
          - {name: pods, kind: metric, query: dc_pods, series: sum, threshold: ">= 1",
             window: 20m, step: 60s}
        """)
    run(pytester).assert_outcomes(passed=1)


# --- functions over projections ---------------------------------------------------------------

def check_json(project: Project, server: LoopbackServer, path: str, rule: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: j
            kind: health
            request: {{path: {path}}}
            expect:
              json:
                {rule}
    """)


def json_key(rule: str) -> str:
    return rule.split('": ')[0].strip('"')


@pytest.mark.parametrize(("body", "rule", "got"), [
    ("latencies", '"max(items[*].latency)": {lt: 500}', "items[2].latency is missing"),
    ("latencies", '"min(items[*].latency)": {gt: 50}', "items[2].latency is missing"),
    ("latencies", '"sum(items[*].latency)": {lt: 1000}', "items[2].latency is missing"),
    ("latencies", '"avg(items[*].latency)": {lt: 500}', "items[2].latency is missing"),
    ("latencies", '"length(items[*].latency)": {gte: 1}', "items[2].latency is missing"),
    ("latency-null", '"max(data.items[*].latency)": {lt: 500}', "data.items[1].latency is null"),
    ("latency-null", '"data | max(items[*].latency)": {lt: 500}',
     "data.items[1].latency is null"),
    ("latency-null", '"max(data.items[*].latency) < `500`": true',
     "data.items[1].latency is null"),
])
def test_a_function_over_a_projection_needs_every_element(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, rule: str, got: str) -> None:
    # JMESPath drops null elements of a projection before the function sees them: max() of
    # the latencies that are there is not the slowest item's.
    check_json(project, server, f"/raw/{body}", rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert f"  FAILED json {json_key(rule)}: expected " in result.stdout.str()
    assert f", got {got}\n" in result.stdout.str()


@pytest.mark.parametrize("rule", [
    '"max(items[*].n)": 2',
    '"length(items[*].id)": 2',
    "\"length(items[?n > `5`])\": 0",  # a filter that keeps nothing is a count of 0
    '"length(items)": 2',
])
def test_a_function_over_complete_elements_still_passes(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester, rule: str) -> None:
    check_json(project, server, "/ok", rule)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize(("body", "query", "got"), [
    ("latencies", "items[*].latency", "items[*].latency: items[2].latency is missing"),
    ("latencies", "max(items[*].latency)", "max(items[*].latency): items[2].latency is missing"),
    ("latency-null", "data.items[*].latency",
     "data.items[*].latency: data.items[1].latency is null"),
    ("list-null", "latencies", "latencies[1] is null"),
])
def test_an_http_metric_source_does_not_drop_an_element(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, query: str, got: str) -> None:
    project.metric_source(f'{{type: http, url: "{server.url}/raw/{body}", timeout: 1s}}')
    project.suite("m.yaml", f"""\
        checks:
          - {{name: m, kind: metric, query: "{query}", series: max, threshold: "< 500"}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert f"  FAILED {got}\n" in result.stdout.str(), result.stdout.str()


@pytest.mark.parametrize(("save", "got"), [
    ("items[*].status", "items[2].status is missing"),
    ("length(items[*].status)", "items[2].status is missing"),
])
def test_a_saved_projection_with_a_missing_element_fails_the_save(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        save: str, got: str) -> None:
    # Saved without its missing element, the list would be sent on as if it were whole.
    project.simple(server.url, f"""
        service: api
        checks:
          - name: flow
            kind: smoke
            steps:
              - request: {{path: /raw/item-without-status}}
                save: {{sts: "{save}"}}
              - request: {{path: "/echo/{{{{ sts }}}}"}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert f"save sts: expected a value at {save}, got {got}\n" in result.stdout.str()


# --- patterns that match any text -------------------------------------------------------------

@pytest.mark.parametrize(("expect", "key"), [
    ('{body: {regex: ""}}', "checks[0].expect.body.regex"),
    ('{body: {regex: ".*"}}', "checks[0].expect.body.regex"),
    ('{headers: {X-Service: {regex: "(svc)?"}}}', "checks[0].expect.headers"),
    ('{json: {name: {regex: "^"}}}', "checks[0].expect.json.name"),
])
def test_a_regex_that_matches_any_text_is_a_collection_error(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        expect: str, key: str) -> None:
    # Searched, a pattern that matches the empty text matches every text: it asks nothing,
    # like `contains: ""`.
    project.simple(server.url, f"""
        service: api
        checks:
          - {{name: r, kind: health, request: {{path: /ok}}, expect: {expect}}}
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*suites/checks.yaml:4: {literal(key)}: regex * matches any "
                                 f"text*"])


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
@pytest.mark.parametrize("pattern", ['""', '"^"', '"x*"'])
def test_a_command_output_pattern_that_matches_any_output_is_a_collection_error(
        project: Project, pytester: pytest.Pytester, stream: str, pattern: str) -> None:
    project.environments("environments:\n  test: {}\n")
    project.suite("pre.yaml", f"""\
        checks:
          - {{name: c, kind: checklist, command: "echo oops", expect: {{{stream}: {pattern}}}}}
        """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*suites/pre.yaml:2: checks[[]0[]].expect.{stream}: regex * "
                                 f"matches any text*"])


def test_an_anchored_pattern_for_an_empty_output_still_works(
        project: Project, pytester: pytest.Pytester) -> None:
    project.environments("environments:\n  test: {}\n")
    project.suite("pre.yaml", """\
        checks:
          - {name: quiet, kind: checklist, command: "true", expect: {stdout: '\\A\\Z'}}
          - {name: loud, kind: checklist, command: "echo oops", expect: {stdout: '\\A\\Z'}}
        """)
    run(pytester).assert_outcomes(passed=1, failed=1)


@pytest.mark.parametrize(("schema", "file"), [
    ("{}", None),
    ('{title: health, $schema: "https://json-schema.org/draft/2020-12/schema"}', None),
    ("schemas/any.json", "{}"),
    ("schemas/described.json", '{"description": "the health answer"}'),
])
def test_a_schema_with_no_rules_is_a_collection_error(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        schema: str, file: str | None) -> None:
    if file is not None:
        (pytester.path / "suites" / "schemas").mkdir(parents=True)
        (pytester.path / "suites" / schema).write_text(file)
    project.simple(server.url, f"""
        service: api
        checks:
          - {{name: s, kind: health, request: {{path: /text}}, expect: {{status: 200, schema: {schema}}}}}
    """)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*suites/checks.yaml:4: checks[[]0[]].expect.schema: the schema "
                                 "has no rules (it accepts any JSON*"])


# --- verdicts on no evidence ------------------------------------------------------------------

@pytest.mark.parametrize("check", [
    "{name: tree clean, kind: checklist, git: {clean: true}}",  # not a git repository
    "{name: m, kind: metric, query: nothing, threshold: '< 1', no_data: skip}",
])
def test_a_gate_whose_every_check_was_skipped_is_inconclusive(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester, check: str) -> None:
    # Skipped, a check gave no evidence: a gate with nothing but skips knows nothing, as one
    # with no check at all.
    project.environments(f"""\
        environments:
          test:
            metrics:
              default: {{type: http, url: "{server.url}/ok", timeout: 1s}}
        """)
    project.suite("only.yaml", f"checks:\n  - {check}\n")
    result = run(pytester, "--gate-report=gate.json")
    result.assert_outcomes(skipped=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["test: inconclusive (0 passed, 0 failed, 1 skipped)",
                                 "  no check ran against test (every check was skipped)"])
    assert json.loads((pytester.path / "gate.json").read_text())["verdict"] == "inconclusive"


def test_a_gate_with_a_passed_check_beside_skipped_ones_passes(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: up, kind: health, request: {path: /ok}}
          - {name: tree clean, kind: checklist, git: {clean: true}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test: passed (1 passed, 0 failed, 1 skipped)"])


@pytest.mark.parametrize("window", ["", ", window: 5m"])
def test_a_series_with_no_sample_is_not_combined_away(
        project: Project, datadog: DatadogServer, pytester: pytest.Pytester, window: str) -> None:
    # Datadog lists host b with only null points: its errors are unknown, and the sum of
    # host a's alone is not the sum of both.
    datadog.series["sum:errors{*} by {host}"] = [("host:a", 0.0), ("host:b", None)]
    project.environments(f"""\
        environments:
          test:
            metrics:
              default: {{type: datadog, url: "{datadog.url}", api_key: "{DD_API_KEY}",
                         app_key: "{DD_APP_KEY}"}}
        """)
    project.suite("dd.yaml", f"""\
        checks:
          - {{name: errors, kind: metric, query: "sum:errors{{*}} by {{host}}", series: sum,
             threshold: "< 1"{window}}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED series host:b has no sample: 'series: sum' would "
                                 "judge fewer series"])


@pytest.mark.parametrize(("expect", "what"), [
    ('{json: {version: {regex: "{{ v }}"}}}', "json version: expected regex \"\""),
    ('{body: {regex: "{{ v }}"}}', "body: expected to match //"),
    ('{headers: {X-Service: {regex: "{{ v }}"}}}', "header X-Service: expected //"),
])
def test_a_regex_whose_template_renders_empty_fails(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        expect: str, what: str) -> None:
    project.simple(server.url, f"""
        service: api
        vars: {{v: ""}}
        checks:
          - {{name: r, kind: health, request: {{path: /ok}}, expect: {expect}}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert f"  FAILED {what}, got bad regex '': it matches any text, so it asks nothing\n" \
        in result.stdout.str(), result.stdout.str()


@pytest.mark.parametrize(("path", "rule", "got"), [
    ("/ok", '"itmes[*].deleted": {exists: false}', "itmes is missing"),
    ("/ok", '"name[*].deleted": {exists: false}', "name is not a list (a string)"),
    ("/ok", '"nothing.*": {exists: false}', "nothing is null"),
])
def test_absence_over_a_missing_base_fails(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        path: str, rule: str, got: str) -> None:
    # A misspelt list has no element that is deleted, and says nothing about the real one.
    check_json(project, server, path, rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    assert f", got {got}\n" in result.stdout.str(), result.stdout.str()


@pytest.mark.parametrize(("path", "rule"), [
    ("/raw/no-items", '"items[*].deleted": {exists: false}'),
    ("/raw/all-null", '"items[*].deleted": {exists: false}'),
    ("/raw/kinds", "\"items[?kind=='cache'].s\": {exists: false}"),
])
def test_absence_over_no_elements_still_holds(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        path: str, rule: str) -> None:
    check_json(project, server, path, rule)
    run(pytester).assert_outcomes(passed=1)


# --- files ------------------------------------------------------------------------------------

def test_a_folder_is_not_a_file_that_must_exist(project: Project, pytester: pytest.Pytester
                                                ) -> None:
    backups = pytester.path / "backups"
    (backups / "db-2026-12-01.dump").mkdir(parents=True)  # new, but a folder
    old = backups / "db-2026-11-20.dump"
    old.write_text("dump")
    stamp = time.time() - 3 * 86400
    os.utime(old, (stamp, stamp))
    (pytester.path / "release").mkdir()
    project.environments("environments:\n  test: {}\n")
    project.suite("pre.yaml", """\
        checks:
          - {name: dump, kind: checklist, files: [{path: "backups/db-*.dump", max_age: 24h}]}
          - {name: release, kind: checklist, files: [release]}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*backups/db-2026-11-20.dump (modified *): older than max_age 24h",
                                 "  FAILED release: a folder, not a file"])


# --- metric values with units -----------------------------------------------------------------

@pytest.mark.parametrize(("value", "threshold"), [
    ("800ms", "< 500"),   # 0.8 s against 500: passed where 800 ms is over 500 ms
    ("5%", "< 1"),
    ("800ms", "< 500ms"),
])
def test_a_metric_value_with_a_unit_is_a_query_error(
        project: Project, pytester: pytest.Pytester, value: str, threshold: str) -> None:
    project.metric_source('{type: command, command: "echo {{ query }}"}')
    project.suite("m.yaml", f"""\
        checks:
          - {{name: m, kind: metric, query: "{value}", threshold: "{threshold}"}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  FAILED the command's last line has a unit ('{value}'): a "
                                 f"metric value is a plain number*"])


# --- a run that stopped -----------------------------------------------------------------------

def test_a_run_cancelled_before_every_check_ran_is_not_passed(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    # CI cancels the job (SIGTERM) while a slow check runs: the two that passed are not the gate.
    import signal
    import subprocess
    import sys

    project.simple(server.url, """
        service: api
        checks:
          - {name: a up, kind: health, request: {path: /ok}}
          - {name: b slow, kind: health, timeout: 30s, request: {path: "/slow?ms=20000", timeout: 25s}}
          - {name: c up, kind: health, request: {path: /ok}}
    """)
    before = server.hits["/slow"]  # the server is shared with other tests
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=test",
         "--gate-report=gate.json"], cwd=pytester.path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while server.hits["/slow"] == before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2, out
    assert "test: blocked" in out, out
    assert json.loads((pytester.path / "gate.json").read_text())["verdict"] == "blocked"


def test_a_run_stopped_by_x_does_not_pass_another_environment(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.environments(f"""\
        environments:
          staging:
            services:
              api: {{url: "{server.url}"}}
          prod:
            services:
              api: {{url: "{server.url}"}}
        """)
    project.suite("s.yaml", """\
        service: api
        checks:
          - {name: up, kind: health, request: {path: /ok}}
          - {name: only staging, kind: health, envs: [staging], request: {path: /status/503}}
          - {name: later, kind: health, envs: [prod], request: {path: "/slow?ms=2000"}}
        """)
    result = runpytest(pytester, "--env=staging,prod", "-x", "--gate-report=gate.json")
    report = json.loads((pytester.path / "gate.json").read_text())
    verdicts = {e["env"]: e["verdict"] for e in report["environments"]}
    assert verdicts["prod"] == "blocked", (verdicts, result.stdout.str())
