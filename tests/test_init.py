"""``python -m pytest_deploycheck init``: a first environments.yaml and suite that pass."""

from __future__ import annotations

import subprocess
import sys

from conftest import Project, free_port, runpytest
from pytest_deploycheck.demo.server import DemoServer
from servers import LoopbackServer


def init(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_deploycheck", "init", *args],
                          cwd=project.path, capture_output=True, text=True, timeout=60)


def test_init_for_a_running_service_writes_a_gate_that_passes(project: Project,
                                                              demo: DemoServer) -> None:
    url = f"http://127.0.0.1:{demo.server_port}"
    done = init(project, "--url", url, "--env", "staging")
    assert done.returncode == 0, done.stderr
    assert "next: pytest --env=staging suites" in done.stdout
    suite = (project.path / "suites" / "first.yaml").read_text()
    assert "request: {path: /health}" in suite and 'json: {status: "healthy"}' in suite
    result = runpytest(project.pytester, "--env=staging", "suites", "--gate-report=gate.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["staging: passed (1 passed, 0 failed, 0 skipped)"])
    # The check it wrote can fail: a broken component turns /health to 503.
    demo.state.faults.unhealthy = {"database"}
    result = runpytest(project.pytester, "--env=staging", "suites")
    result.assert_outcomes(failed=1)


def test_init_probes_and_refuses(project: Project, server: LoopbackServer) -> None:
    done = init(project, "--url", f"{server.url}/status/503")
    assert done.returncode != 0
    assert "answered no health endpoint with 2xx" in done.stderr
    done = init(project, "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode != 0 and "init: cannot reach" in done.stderr
    done = init(project, "--url", "ftp://example.com")
    assert done.returncode != 0 and "is not an http(s) URL" in done.stderr
    done = init(project)  # the bundled demo, started by the gate
    assert done.returncode == 0, done.stderr
    assert "pytest_deploycheck.demo" in (project.path / "environments.yaml").read_text()
    result = runpytest(project.pytester, "--env=staging", "suites", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*first.yaml::first::/health answers[[]staging[]]"])
    done = init(project)
    assert done.returncode != 0 and "exist already (--force overwrites)" in done.stderr
    assert init(project, "--force").returncode == 0


def test_init_writes_no_credentials(project: Project) -> None:
    for url in ("http://admin:hunter2pw@127.0.0.1:9/", "http://127.0.0.1:9/?token=abc123secret"):
        done = init(project, "--url", url)
        assert done.returncode != 0 and "without credentials or a query" in done.stderr
    done = init(project, "--url", "http://[::1")
    assert done.returncode != 0 and "is not a URL" in done.stderr and "Traceback" not in done.stderr
    assert not (project.path / "environments.yaml").exists()
