"""Live observation (Argo-style limits, progress) and baselines kept in the state dir."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Project, free_port, prometheus_env, runpytest
from metric_servers import Prometheus, start_prometheus, stop_prometheus
from pytest_deploycheck.demo.server import DemoServer


def _watch_suite(project: Project, prometheus: Prometheus, duration: str) -> None:
    """A suite that watches p99 on the test Prometheus for ``duration``, once a second."""
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    project.suite("watch.yaml", f"""\
        checks:
          - name: p99 while we watch
            kind: metric
            query: dc_latency_seconds
            threshold: "< 500ms"
            observe: {{duration: {duration}, interval: 1s}}
        """)


def test_observe_measures_every_interval_and_shows_progress(project: Project,
                                                            prometheus: Prometheus) -> None:
    _watch_suite(project, prometheus, "2s")
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "    p99 while we watch[[]test[]]: measurement 1/3 ok (value 0.25); 0 breaches, "
        "0 errors so far",
        "    *measurement 2/3 ok*",
        "    *measurement 3/3 ok*"])
    assert 2 <= elapsed < 6


def test_progress_shows_under_quiet_and_live_from_xdist_workers(project: Project,
                                                              prometheus: Prometheus) -> None:
    """Under -q, and from an xdist worker through the controller, each measurement's line
    comes while the observation goes on, not at its end; -qq silences it."""
    _watch_suite(project, prometheus, "3s")
    summary = project.path / "summary.md"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GITHUB_ACTIONS", "true")
        env.setenv("GITHUB_STEP_SUMMARY", str(summary))
        quiet = runpytest(project.pytester, "--env=test", "-q")
    quiet.assert_outcomes(passed=1)
    # ... and once finished, in the step summary.
    assert "### test: observations" in summary.read_text()
    assert re.search(r"\| watch::p99 while we watch\[test\] \| passed \| 4 of 4 \| 0 \| 0 \| "
                     r"3(\.\d+)?s \|", summary.read_text()), summary.read_text()
    quiet.stdout.fnmatch_lines(["    p99 while we watch[[]test[]]: measurement 1/4 ok *",
                                "    *measurement 4/4 ok*"])
    silent = runpytest(project.pytester, "--env=test", "-qq")
    assert "measurement" not in silent.stdout.str()

    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "xdist", "-n",
               "2", "-q", "--env=test"]
    started = time.monotonic()
    with subprocess.Popen(command, cwd=project.path, stdout=subprocess.PIPE, text=True,
                          stderr=subprocess.STDOUT) as run:
        assert run.stdout is not None
        arrivals = [(time.monotonic() - started, line) for line in run.stdout]
    ended = time.monotonic() - started
    assert run.returncode == 0, "".join(line for _, line in arrivals)
    seen = [(at, line.strip()) for at, line in arrivals if "measurement" in line]
    assert [line.split(": ")[1].split(" ")[1] for _, line in seen] == \
        ["1/4", "2/4", "3/4", "4/4"], seen
    # The first line arrived while the other three measurements were still to come.
    assert seen[0][0] < ended - 2, (seen, ended)


def test_observe_fails_once_breaches_pass_the_failure_limit(project: Project,
                                                            prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    project.suite("watch.yaml", """\
        checks:
          - name: errors
            kind: metric
            query: 'dc_error_ratio{service="web"}'
            threshold: "< 1%"
            observe: {duration: 20s, interval: 500ms, failure_limit: 1}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    # Stops at the second breach instead of watching for the whole 20 s.
    assert time.monotonic() - started < 5
    result.stdout.fnmatch_lines([
        "  measurement 1 at *: breach (1 of 1 samples breach < 1% *)",
        "  measurement 2 at *: breach*",
        "  FAILED 2 breaches (failure_limit 1) and 0 errors (error_limit 4) in 2 measurements*"])


def test_observe_counts_query_errors_apart_from_breaches(project: Project) -> None:
    prometheus_env(project, f"http://127.0.0.1:{free_port()}", ", timeout: 1s")
    project.suite("watch.yaml", """\
        checks:
          - name: errors
            kind: metric
            query: up
            threshold: "< 1"
            observe: {duration: 10s, interval: 200ms, failure_limit: 0, error_limit: 2}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  FAILED 0 breaches (failure_limit 0) and 3 errors (error_limit 2) in 3 measurements*"
        "; last: cannot connect*"])


@pytest.mark.parametrize(("error_limit", "outcome"), [(1, "passed"), (0, "failed")])
def test_observe_tolerates_query_errors_up_to_the_error_limit(project: Project, error_limit: int,
                                                              outcome: str) -> None:
    # The command fails its first run only: one query error, then good values.
    project.environments("""\
        environments:
          test:
            metrics:
              default:
                type: command
                command: 'n=$(cat runs 2>/dev/null || echo 0); echo $((n+1)) > runs; [ "$n" -ge 1 ] || exit 1; echo {{ query }}'
        """)
    project.suite("watch.yaml", f"""\
        checks:
          - name: flaky source
            kind: metric
            query: "0.1"
            threshold: "< 1"
            observe: {{duration: 1s, interval: 500ms, error_limit: {error_limit}}}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(**{outcome: 1})
    if outcome == "failed":
        result.stdout.fnmatch_lines(["*FAILED 0 breaches (failure_limit 0) and 1 errors "
                                     "(error_limit 0) in 1 measurements*; last: command exited "
                                     "with 1*"])


@pytest.fixture
def scraping_prometheus(demo: DemoServer, tmp_path: Path) -> Iterator[Prometheus]:
    """A Prometheus scraping the demo service's /metrics every second."""
    srv = start_prometheus(tmp_path / "live", scrape=f"127.0.0.1:{demo.server_port}")
    yield srv
    stop_prometheus(srv)


def _wait_for_series(url: str, query: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/v1/query?"
                                    + urllib.parse.urlencode({"query": query})) as answer:
            if json.load(answer)["data"]["result"]:
                return
        time.sleep(0.5)
    raise AssertionError(f"no scrape of {query} within {timeout}s")


def test_observe_catches_a_fault_while_prometheus_scrapes_the_demo(
        project: Project, demo: DemoServer, scraping_prometheus: Prometheus) -> None:
    _wait_for_series(scraping_prometheus.url, "demo_component_up")
    prometheus_env(project, scraping_prometheus.url, ", timeout: 1s")
    project.suite("watch.yaml", """\
        checks:
          - name: every component up
            kind: metric
            query: min(demo_component_up)
            threshold: "== 1"
            observe: {duration: 12s, interval: 1s}
        """)
    breaking = threading.Timer(2.0, lambda: demo.state.faults.unhealthy.add("database"))
    breaking.start()
    started = time.monotonic()
    try:
        result = runpytest(project.pytester, "--env=test")
    finally:
        breaking.cancel()
    result.assert_outcomes(failed=1)
    assert time.monotonic() - started < 10
    result.stdout.fnmatch_lines(["*measurement 1 at *: ok",
                                 "*: breach (1 of 1 samples breach == 1 (first: 0 at *))",
                                 "  FAILED 1 breaches (failure_limit 0)*"])


def baseline_suite(project: Project, query: str = "dc_latency_seconds") -> None:
    project.suite("watch.yaml", f"""\
        checks:
          - name: p99 no worse than last time
            kind: metric
            query: {query}
            threshold: "< 1s"
            baseline: {{relative: "<= +10%"}}
        """)


def state_file(project: Project) -> Path:
    return project.path / ".deploycheck" / "test.json"


def test_first_run_records_the_baseline_and_says_so(project: Project,
                                                    prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *p99 no worse than last time[[]test[]]: no baseline: "
                                 "the state dir * was empty (*); recorded 0.25 as the baseline"])
    recorded = json.loads(state_file(project).read_text())["baselines"]
    assert recorded["watch::p99 no worse than last time"]["value"] == 0.25
    assert sorted(p.name for p in state_file(project).parent.iterdir()) == [".lock", "test.json"]


def test_value_worse_than_the_baseline_fails_and_keeps_it(project: Project,
                                                          prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    document = json.loads(state_file(project).read_text())
    document["baselines"]["watch::p99 no worse than last time"]["value"] = 0.2
    state_file(project).write_text(json.dumps(document))
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  rule: < 1s",
        "  rule: value <= 0.22 (baseline 0.2 <= +10%)",
        "  baseline: 0.2 (recorded *)",
        "  FAILED value 0.25 breaches <= 0.22 (baseline 0.2 <= +10%)"])
    kept = json.loads(state_file(project).read_text())["baselines"]
    assert kept["watch::p99 no worse than last time"]["value"] == 0.2


def test_value_within_the_baseline_passes_and_becomes_the_new_baseline(
        project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    document = json.loads(state_file(project).read_text())
    document["baselines"]["watch::p99 no worse than last time"]["value"] = 0.24
    state_file(project).write_text(json.dumps(document))
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1)
    assert "NOTE" not in result.stdout.str()
    kept = json.loads(state_file(project).read_text())["baselines"]
    assert kept["watch::p99 no worse than last time"]["value"] == 0.25


def test_changed_query_does_not_use_the_old_baseline(project: Project,
                                                     prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    baseline_suite(project, query="dc_latency_seconds * 2")
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *: the query changed since the baseline was recorded "
                                 "(*); the baseline is not used; recorded 0.5 as the baseline"])


def test_baselines_are_recorded_by_xdist_workers_without_losing_any(
        project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    project.suite("watch.yaml", """\
        checks:
          - name: latency
            kind: metric
            parametrize: {factor: [1, 2, 3, 4, 5, 6, 7, 8]}
            query: dc_latency_seconds * {{ factor }}
            threshold: "< 10"
            baseline: {relative: "<= +10%"}
        """)
    runpytest(project.pytester, "--env=test", "-n", "2").assert_outcomes(passed=8)
    recorded = json.loads(state_file(project).read_text())["baselines"]
    assert {key: value["value"] for key, value in recorded.items()} == {
        f"watch::latency[{n}]": 0.25 * n for n in range(1, 9)}


def test_state_dir_comes_from_the_ini(project: Project, prometheus: Prometheus) -> None:
    project.pytester.makeini("[pytest]\ndeploycheck_state_dir = var/gate-state\n")
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    assert (project.path / "var" / "gate-state" / "test.json").is_file()


def test_unreadable_state_file_fails_the_check_with_advice(project: Project,
                                                           prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    baseline_suite(project)
    state_file(project).parent.mkdir()
    state_file(project).write_text("{not json")
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED cannot read the state file *test.json: *; delete it "
                                 "to start over*"])


def test_a_baseline_on_a_fresh_runner_says_the_state_dir_was_empty(project: Project) -> None:
    """On a CI runner made for the job nothing can compare: the note says why and what to do;
    with the state dir kept, a new check's first value is only "no baseline yet"."""
    project.environments("environments:\n  prod:\n    metrics:\n      default: {type: command, command: 'echo 5'}\n")
    project.suite("m.yaml", """\
        checks:
          - {name: queue, kind: metric, query: q, threshold: "< 10", baseline: {relative: "<= +10%"}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *queue[[]prod[]]: no baseline: the state dir */.deploycheck "
                                 "was empty (a fresh CI runner? carry it between runs: docs/how-to/"
                                 "baselines-in-ci.md); recorded 5 as the baseline"])
    project.suite("m.yaml", """\
        checks:
          - {name: queue, kind: metric, query: q, threshold: "< 10", baseline: {relative: "<= +10%"}}
          - {name: depth, kind: metric, query: d, threshold: "< 10", baseline: {relative: "<= +10%"}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  NOTE *depth[[]prod[]]: no baseline yet: recorded 5 as the baseline"])
    assert "was empty" not in result.stdout.str()
