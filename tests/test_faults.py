"""Network faults fail only their own item, with a one-line reason, within timeout + 1 s."""

from __future__ import annotations

import re
import time

import pytest

from conftest import Project, free_port, runpytest
from servers import LoopbackServer


@pytest.mark.parametrize(("request_yaml", "reason"), [
    ("{url: 'http://127.0.0.1:PORT/'}", "cannot connect: *Connection refused*"),
    ("{url: 'http://deploycheck-test.invalid/'}", "cannot connect: *"),
    ("{path: /hang, timeout: 1s}", "timed out after 1s (ReadTimeout)"),
    ("{path: /reset}", "connection broken: *"),
    ("{path: /huge}", "response body larger than 10 MB; stopped reading"),
])
def test_network_fault_fails_only_its_item(project: Project, server: LoopbackServer,
                                           request_yaml: str, reason: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - {{name: before, kind: health, request: {{path: /ok}}}}
          - {{name: faulty, kind: health, timeout: 3s,
             request: {request_yaml.replace("PORT", str(free_port()))}}}
          - {{name: after, kind: health, request: {{path: /ok}}}}
    """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*FAILED suites/checks.yaml::checks::faulty[[]test[]]*",
                                 f"         {reason}"])
    assert "Traceback" not in result.stdout.str()
    assert elapsed < 3 + 1 + 2  # the check's timeout + 1 s, plus pytest's own start-up


def test_hanging_endpoint_is_cut_at_the_check_timeout(project: Project, server: LoopbackServer
                                                      ) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: hangs, kind: health, timeout: 1500ms, request: {path: /hang}}
    """)
    result = runpytest(project.pytester, "--env=test", "--durations=1", "-vv")
    result.assert_outcomes(failed=1)
    match = re.search(r"([\d.]+)s call\s+suites/checks.yaml::checks::hangs", result.stdout.str())
    assert match, result.stdout.str()
    assert 1.4 <= float(match.group(1)) <= 2.5


def test_non_json_body_fails_json_expectations_with_one_line(project: Project,
                                                             server: LoopbackServer) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: html, kind: health, request: {path: /text}, expect: {json: {status: ok}}}
    """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["         json: expected a JSON body, got body is not JSON "
                                 "(JSONDecodeError: *)"])


def test_retry_on_a_refused_port_stops_at_until(project: Project, server: LoopbackServer) -> None:
    project.simple(server.url, f"""
        checks:
          - name: never up
            kind: health
            request: {{url: "http://127.0.0.1:{free_port()}/"}}
            retry: {{until: 1s, interval: 200ms}}
    """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    assert time.monotonic() - started < 4
    result.stdout.fnmatch_lines(["  (last of * attempts)"])
