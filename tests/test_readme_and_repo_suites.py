"""The README's examples and this repository's own suites, run for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, free_port, runpytest
from metric_servers import Prometheus
from pytest_deploycheck.demo.server import DemoServer

ROOT = Path(__file__).parent.parent


def readme_examples(kind: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    pattern = rf"<!-- readme-test: {kind} -->\n```\w+\n(.*?)```"
    found = re.findall(pattern, text, flags=re.S)
    assert found, f"no {kind} example in the README"
    return found


def demo_environments(project: Project, demo: DemoServer) -> None:
    url = f"http://127.0.0.1:{demo.server_port}"
    project.environments(f"""
        environments:
          local:
            vars: {{expected_version: "1.2.3"}}
            services: {{api: {{url: "{url}"}}, console: {{url: "{url}"}}}}
    """)


def test_readme_suite_example_passes_against_the_demo(project: Project, demo: DemoServer) -> None:
    demo_environments(project, demo)
    for index, example in enumerate(readme_examples("suite")):
        (project.path / "suites").mkdir(exist_ok=True)
        (project.path / "suites" / f"readme{index}.yaml").write_text(example)
    result = runpytest(project.pytester, "--env=local", "-v")
    result.assert_outcomes(passed=4)


def test_readme_python_example_passes_against_the_demo(project: Project, demo: DemoServer) -> None:
    demo_environments(project, demo)
    for index, example in enumerate(readme_examples("python")):
        (project.path / f"test_readme{index}.py").write_text(example)
    result = runpytest(project.pytester, "--env=local", "-v")
    result.assert_outcomes(passed=1)


def test_readme_environments_example_resolves_every_environment(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.path / "environments.yaml").write_text(readme_examples("environments")[0])
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {path: /health}, "
                            "service: api}\n")
    monkeypatch.setenv("STAGING_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RELEASE_VERSION", "2.0.0")
    monkeypatch.setenv("PROD_API_TOKEN", "tok-abcdef")
    result = runpytest(project.pytester, "--env=local,staging,production", "--collect-only",
                       "-q", "--no-start")
    result.stdout.fnmatch_lines(["*a[[]local[]]", "*a[[]staging[]]", "*a[[]production[]]"])
    monkeypatch.delenv("PROD_API_TOKEN")
    result = runpytest(project.pytester, "--env=production", "--collect-only", "--no-start")
    result.stdout.fnmatch_lines(["*environments.yaml:* environment variable PROD_API_TOKEN is "
                                 "not set: set PROD_API_TOKEN"])


def test_readme_metric_example_passes_against_prometheus(
        project: Project, prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    (project.path / "environments.yaml").write_text(readme_examples("metric-environments")[0])
    suite = readme_examples("metric-suite")[0]
    # Watch for 2 s instead of the example's 5 minutes; everything else runs as written.
    assert "observe: {duration: 5m, interval: 30s" in suite
    suite = suite.replace("duration: 5m, interval: 30s", "duration: 2s, interval: 1s")
    project.suite("post-deploy-metrics.yaml", suite)
    result = runpytest(project.pytester, "--env=production", "-m", "metric")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["  NOTE *p99 under 500ms while we watch[[]production[]]: no "
                                 "baseline yet: recorded 0.236964 as the baseline"])


def copy_repo_suites(project: Project) -> None:
    shutil.copy(ROOT / "environments.yaml", project.path)
    shutil.copytree(ROOT / "suites", project.path / "suites")


def test_repo_suites_pass_against_local(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(free_port()))
    result = runpytest(project.pytester, "--env=local")
    result.assert_outcomes(passed=13)
    result.stdout.fnmatch_lines(["*deploycheck*", "local: passed (13 passed, 0 failed, 0 skipped)"])


def test_repo_suites_catch_an_unhealthy_component(project: Project, demo: DemoServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--unhealthy", "queue", "--latency-ms", "50"],
                   check=True, capture_output=True)
    # Shorten the readiness wait: the fault is not going away.
    suite = project.path / "suites" / "control-plane-health.yaml"
    suite.write_text(suite.read_text().replace("until: 10s", "until: 1s"))
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "health")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "  FAILED status: expected 200, got 503",
        '  FAILED json checks.*: expected every element == "healthy", got ["healthy", '
        '"unhealthy", "healthy"]',
    ])


def test_repo_metric_checks_catch_a_rising_error_rate(project: Project, demo: DemoServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--error-rate", "0.25"],
                   check=True, capture_output=True)
    for _ in range(8):
        httpx.get(f"http://127.0.0.1:{demo.server_port}/v1/workflows")
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "metric")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["  query: error_rate", "  rule: < 1%",
                                 "  measurement 1 at *: breach (1 of 1 samples breach < 1% *)",
                                 "  FAILED 1 breaches (failure_limit 0)*"])
