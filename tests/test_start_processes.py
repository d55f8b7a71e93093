"""``start:`` processes: started before the first check, never left behind."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import Project, free_port, runpytest


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def running(marker: str) -> list[str]:
    out = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


def demo_project(project: Project, port: int, marker: str, suite: str | None = None,
                 start_extra: str = "") -> None:
    # A shell wraps the demo so that stopping must reach a grandchild: the process group.
    project.environments(f"""
        environments:
          local:
            start:
              - name: demo
                command: "python -m pytest_deploycheck.demo --port {port} --version {marker} & wait"
                ready: http://127.0.0.1:{port}/health
                timeout: 20s
                {start_extra}
            services:
              api: {{url: "http://127.0.0.1:{port}"}}
    """)
    project.suite("health.yaml", suite or f"""
        service: api
        checks:
          - name: healthy
            kind: health
            request: {{path: /health}}
            expect: {{json: {{status: healthy, version: "{marker}"}}}}
    """)


@pytest.mark.parametrize("outcome", ["passed", "failed"])
def test_started_before_checks_and_stopped_after(project: Project, outcome: str,
                                                 tmp_path_factory: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    demo_project(project, port, marker)
    temp: Path = tmp_path_factory.mktemp("tmp")
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    if outcome == "failed":
        project.suite("more.yaml", """
            service: api
            checks:
              - {name: missing page, kind: smoke, request: {path: /nope}, expect: {status: 200}}
        """)
    result = runpytest(project.pytester, "--env=local")
    result.assert_outcomes(passed=1, failed=int(outcome == "failed"))
    assert not listening(port)
    assert running(marker) == []
    assert list(temp.iterdir()) == []  # the processes' logs went with them


def test_not_started_on_collection_error(project: Project) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    demo_project(project, port, marker)
    project.suite("broken.yaml", "checks: [oops\n")
    result = runpytest(project.pytester, "--env=local")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert running(marker) == []


def test_no_start_uses_what_is_already_running(project: Project, demo: object) -> None:
    port = demo.server_port  # type: ignore[attr-defined]
    demo_project(project, port, "1.2.3")
    result = runpytest(project.pytester, "--env=local", "--no-start")
    result.assert_outcomes(passed=1)


def test_start_command_that_exits_is_a_usage_error(project: Project) -> None:
    project.environments("""
        environments:
          local:
            start:
              - {command: "echo booting; echo 'bind: address in use' >&2; exit 3",
                 ready: "http://127.0.0.1:9/health"}
            services: {api: {url: "http://127.0.0.1:9"}}
    """)
    project.suite("s.yaml", "service: api\nchecks:\n  - {name: a, kind: health, request: {path: /}}\n")
    result = runpytest(project.pytester, "--env=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*environments.yaml:5: start: *echo booting; * exited with status 3 before it was ready;"
        " its output:", "booting", "bind: address in use"])


def test_start_that_never_gets_ready_is_a_usage_error(project: Project) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    project.environments(f"""
        environments:
          local:
            start:
              - {{command: "sleep 30 # {marker}", ready: "http://127.0.0.1:{port}/", timeout: 1s}}
            services: {{api: {{url: "http://127.0.0.1:{port}"}}}}
    """)
    project.suite("s.yaml", "service: api\nchecks:\n  - {name: a, kind: health, request: {path: /}}\n")
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert time.monotonic() - started < 8
    result.stderr.fnmatch_lines([f"*start: 'sleep 30 # {marker}' was not ready after 1s: "
                                 f"http://127.0.0.1:{port}/ answered ConnectError*"])
    assert running(marker) == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_process(project: Project, sig: signal.Signals) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    demo_project(project, port, marker, suite="""
        service: api
        checks:
          - name: waits forever
            kind: health
            request: {path: /health}
            expect: {status: 599}
            retry: {until: 60s, interval: 100ms}
    """)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "--env=local", "-p",
                             "no:cacheprovider"], cwd=project.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 20
    while not listening(port):
        assert time.monotonic() < deadline, "demo never came up"
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    assert "KeyboardInterrupt" in out
    assert not listening(port)
    assert running(marker) == []


def test_python_on_the_path_is_the_running_interpreter(project: Project,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # `python -m pytest_deploycheck.demo` must work even when pytest runs from an unactivated
    # virtualenv: the plugin puts the interpreter's bin directory first on PATH.
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    demo_project(project, port, marker)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    result = project.pytester.runpytest_subprocess("--env=local", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
