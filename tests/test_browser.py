"""``browser`` checks: the demo's /app page in real headless Chromium (Debian's package) through
Playwright, healthy and broken, a sign-in form over two steps, protected environments, and a
machine without Chromium."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import Project, assert_bad_input, runpytest
from pytest_deploycheck.demo.server import DemoServer, Faults


def demo_env(project: Project, demo: DemoServer, extra: str = "") -> None:
    (project.path / "environments.yaml").write_text(
        f'environments:\n  local:\n    services: {{web: {{url: "http://127.0.0.1:{demo.server_port}"}}}}\n'
        f"{extra}")


APP_SUITE = """\
    service: web
    checks:
      - name: the app renders
        kind: smoke
        browser: {path: /app, wait_for: "#workflows li", max_load: 5s}
    """


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_demo_app_passes_in_chromium(project: Project, demo: DemoServer,
                                         workers: str) -> None:
    demo_env(project, demo)
    project.suite("app.yaml", APP_SUITE)
    result = runpytest(project.pytester, "--env=local", "-p", "xdist", "-n", workers)
    result.assert_outcomes(passed=1)


def test_a_page_that_throws_fails_and_rolls_back_once(project: Project, demo: DemoServer) -> None:
    demo.state.faults = Faults(page_error=True)
    demo_env(project, demo, """\
    rollback:
      - {name: undo, command: "echo undo >> rollbacks.log"}
""")
    project.suite("app.yaml", APP_SUITE)
    result = runpytest(project.pytester, "--env=local", "--alluredir=allure",
                       "--gate-report=gate.json")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    assert "FAILED uncaught exception: ReferenceError: undefinedRenderer is not defined" in out
    assert "uncaught exception: TypeError: workflows.map is not a function" in out
    assert f"page 1: http://127.0.0.1:{demo.server_port}/app -> 200, loaded in" in out
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "rolled_back"
    assert (project.path / "rollbacks.log").read_text() == "undo\n"
    folder = project.path / "allure"
    (result_file,) = [p for p in folder.glob("*-result.json")
                      if json.loads(p.read_text())["name"] == "the app renders"]
    attachments = {a["name"]: a for a in json.loads(result_file.read_text())["attachments"]}
    assert attachments["screenshot"]["type"] == "image/png"
    assert (folder / attachments["screenshot"]["source"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = (folder / attachments["console"]["source"]).read_text()
    assert "undefinedRenderer is not defined" in console


def test_failed_requests_and_slow_loads_fail(project: Project, demo: DemoServer) -> None:
    demo.state.faults = Faults(error_rate=1.0, latency_ms=600)
    demo_env(project, demo)
    project.suite("app.yaml", """\
        service: web
        checks:
          - name: api calls succeed
            kind: smoke
            browser: {path: /app}
          - name: loads fast
            kind: smoke
            browser: {path: /app, max_load: 300ms, no_console_errors: false}
        """)
    result = runpytest(project.pytester, "--env=local")
    out = result.stdout.str()
    result.assert_outcomes(failed=2)
    assert f"GET http://127.0.0.1:{demo.server_port}/v1/workflows answered 500" in out
    assert "over max_load 0.3s" in out


def test_a_sign_in_form_over_two_steps(project: Project, demo: DemoServer) -> None:
    demo_env(project, demo)
    project.suite("login.yaml", """\
        service: web
        vars: {user: ada}
        checks:
          - name: sign in
            kind: smoke
            steps:
              - name: the form
                browser: {path: /app, fill: {"#user-name": "{{ user }}"}, submit: "button[type=submit]"}
              - browser: {wait_for: {text: "Signed in as {{ user }}"}}
          - name: signed in as someone else
            kind: smoke
            timeout: 2s
            steps:
              - browser: {path: /app, fill: {"#user-name": bob}, submit: "button[type=submit]"}
              - browser: {wait_for: {text: "Signed in as carol"}}
        """)
    result = runpytest(project.pytester, "--env=local")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  page 2: http://127.0.0.1:*/app?user=bob",
                                 "  FAILED wait for the text 'Signed in as carol': not within 2s"])


PAGES = {
    "/": (200, b"<html><body><p>hi</p><script>fetch('/track', {method: 'POST'})</script></body></html>"),
    "/popup": (200, b"<html><body><p>hi</p><script>window.open('/')</script></body></html>"),
    "/plain": (200, b"<html><body><p id=ok>no icon link here</p></body></html>"),
    "/down": (503, b"<html><body><p id=ok>maintenance</p></body></html>"),
    # Spins once loaded: the navigation ends, then no call of the browser ever returns.
    "/spin": (200, b"<html><body><p id=ok>hi</p><script>addEventListener('load', () => setTimeout(() => { while (true) {} }, 50))</script></body></html>"),
}


class _WritingPage(BaseHTTPRequestHandler):
    """Pages (``PAGES``; /favicon.ico is not one of them); counts the POSTs that arrive."""

    posts = 0

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        status, body = PAGES.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        type(self).posts += 1
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def writing_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WritingPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _WritingPage.posts = 0
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_protected_environment_refuses_what_a_page_writes(project: Project,
                                                            writing_page: str) -> None:
    (project.path / "environments.yaml").write_text(
        f'environments:\n  production:\n    protected: true\n'
        f'    services: {{web: {{url: "{writing_page}"}}}}\n')
    project.suite("page.yaml", """\
        service: web
        checks:
          - {name: page, kind: health, browser: {path: /}}
          - {name: popup, kind: health, browser: {path: /popup}}
        """)
    result = runpytest(project.pytester, "--env=production")
    result.assert_outcomes(failed=2)
    for page in ("/", "/popup"):  # the popup's script writes as the page's would
        result.stdout.fnmatch_lines([f"*page 1: *{page} -> 200*",
                                     "*environment 'production' is protected: POST */track "
                                     "refused*"])
    assert _WritingPage.posts == 0
    project.suite("page.yaml", """\
        service: web
        checks:
          - {name: page, kind: health, allow_write: true, browser: {path: /}}
          - {name: form, kind: smoke, browser: {path: /, click: p}}
        """)
    assert_bad_input(project, "suites/page.yaml:4: checks[[]1].browser: environment 'production' "
                              "is protected: a page that fills or clicks may send a form*",
                     "--env=production")


def test_without_chromium_or_playwright_the_gate_is_inconclusive(
        project: Project, demo: DemoServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    demo_env(project, demo, """\
    rollback:
      - {name: undo, command: "echo undo >> rollbacks.log"}
""")
    project.suite("app.yaml", APP_SUITE)
    monkeypatch.setenv("DEPLOYCHECK_CHROMIUM", str(tmp_path / "no-chromium"))
    result = runpytest(project.pytester, "--env=local", "--gate-report=gate.json")
    result.assert_outcomes(skipped=1)  # how pytest shows an inconclusive item
    result.stdout.fnmatch_lines(["*DEPLOYCHECK_CHROMIUM=*/no-chromium is not an executable"])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "inconclusive"
    assert not (project.path / "rollbacks.log").exists()
    monkeypatch.delenv("DEPLOYCHECK_CHROMIUM")
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    result = runpytest(project.pytester, "--env=local")
    result.stdout.fnmatch_lines(["*browser checks need Playwright: pip install "
                                 "'pytest-deploycheck[[]browser]'*"])


@pytest.mark.parametrize(("check", "message"), [
    ('{name: a, kind: smoke, browser: {path: /}, request: {path: /}}',
     "checks[0].request: 'request' does not apply to a smoke check with 'browser'"),
    ('{name: a, kind: smoke, steps: [{browser: {path: /}}, {request: {path: /}}]}',
     "checks[0].steps[1]: the steps of a check are all browser pages or all requests*"),
    ('{name: a, kind: smoke, steps: [{browser: {wait_for: p}}]}',
     "checks[0].steps: the first page needs 'path' (on a service) or 'url'"),
    ('{name: a, kind: smoke, browser: {url: "http://x", path: /}}',
     "checks[0].browser.path: a page has 'path' (on a service) or 'url', not both"),
    ('{name: a, kind: smoke, browser: {path: /, wait_for: "#{{ id }}"}}',
     "checks[0].browser.wait_for: {{ }} is not rendered in this value*"),
    ('{name: a, kind: smoke, browser: {path: /, wait_for: {txt: x}}}', "checks[0].browser.wait_for*"),
    ('{name: a, kind: smoke, browser: {path: /, max_load: soon}}', "checks[0].browser.max_load: *"),
    ('{name: a, kind: smoke, browser: {path: /, clik: p}}', "checks[0].browser.clik: unknown key*"),
    ('{name: a, kind: smoke, browser: {path: /, service: nope}}',
     "checks[0].browser.service: unknown service 'nope' in environment 'local'*"),
    ('{name: a, kind: smoke, browser: {path: ok}}',
     "checks[0].browser.path: a path starts with / ('ok' would be glued to the service's URL)"),
    ('{name: a, kind: smoke, browser: {url: ok}}', "checks[0].browser.url: 'ok' is not an http(s) URL"),
    ('{name: a, kind: smoke, steps: [{browser: {path: /}}, {browser: {click: "#go", max_load: 1s}}]}',
     "checks[0].steps[1].browser.max_load: max_load times a page load: this page opens none*"),
    ('{name: a, kind: smoke, browser: {path: "/{{ nope }}"}}',
     "checks[0].browser.path: template '{{ nope }}' is not defined in environment 'local'*"),
])
def test_bad_browser_checks(project: Project, check: str, message: str) -> None:
    (project.path / "environments.yaml").write_text(
        'environments:\n  local:\n    services: {web: {url: "http://127.0.0.1:9"}}\n')
    project.suite("s.yaml", f"service: web\nchecks:\n  - {check}\n")
    assert_bad_input(project, message.replace("[", "[[]"), "--env=local")


def test_what_a_page_answers_and_what_the_browser_asks_for_itself(
        project: Project, writing_page: str, tmp_path: Path) -> None:
    """No /favicon.ico is no failure (the browser asks for it, not the page); a document that
    answers 503 fails also with no_console_errors: false; a script that never yields fails at
    the hard deadline instead of hanging; a Chromium that cannot start is inconclusive."""
    import time

    (project.path / "environments.yaml").write_text(
        f'environments:\n  prod:\n    services: {{web: {{url: "{writing_page}"}}}}\n'
        f'    rollback:\n      - {{name: undo, command: "echo undo >> rollbacks.log"}}\n')
    project.suite("page.yaml", """\
        service: web
        checks:
          - {name: no icon, kind: health, browser: {path: /plain, wait_for: "#ok"}}
          - {name: down, kind: health, browser: {path: /down, wait_for: "#ok", no_console_errors: false}}
          - {name: spins, kind: health, timeout: 3s, browser: {path: /spin}}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod")
    took = time.monotonic() - started
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*FAILED the page answered 503",
                                 "*FAILED the pages did not finish within *s (a script that "
                                 "never yields?): the browser was killed"])
    assert took < 60, took
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\necho 'error while loading shared libraries: libnss3.so' >&2\nexit 127\n")
    fake.chmod(0o755)
    (project.path / "rollbacks.log").unlink()
    project.suite("page.yaml", """\
        service: web
        checks:
          - {name: no icon, kind: health, browser: {path: /plain}}
        """)
    import os

    os.environ["DEPLOYCHECK_CHROMIUM"] = str(fake)
    try:
        result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    finally:
        del os.environ["DEPLOYCHECK_CHROMIUM"]
    result.stdout.fnmatch_lines(["*cannot start Chromium at */chromium: *apt-get install -y chromium*"])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "inconclusive"
    assert not (project.path / "rollbacks.log").exists()


def test_sigterm_while_a_page_spins_stops_the_browser_and_rolls_nothing_back(
        project: Project, writing_page: str) -> None:
    """CI cancelling the job in the middle of a browser check: the run ends promptly, the
    browser's process group goes with it, the gate report is not a pass, nothing rolls back."""
    import signal
    import subprocess
    import time

    (project.path / "environments.yaml").write_text(
        f'environments:\n  prod:\n    services: {{web: {{url: "{writing_page}"}}}}\n'
        f'    rollback:\n      - {{name: undo, command: "echo undo >> rollbacks.log"}}\n')
    project.suite("page.yaml", """\
        service: web
        checks:
          - {name: spins, kind: health, timeout: 30s, browser: {path: /spin}}
        """)
    process = subprocess.Popen([sys.executable, "-m", "pytest", "--env=prod", "-p",
                                "no:cacheprovider", "--gate-report=gate.json"],
                               cwd=project.path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not subprocess.run(["pgrep", "-f", "deploycheck-browser-"], capture_output=True).stdout:
        assert time.monotonic() < deadline, "the browser never started"
        time.sleep(0.2)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    time.sleep(1)
    assert subprocess.run(["pgrep", "-f", "deploycheck-browser-"],
                          capture_output=True).stdout == b""
    assert json.loads((project.path / "gate.json").read_text())["verdict"] not in (
        "passed", "passed_with_warnings")
    assert not (project.path / "rollbacks.log").exists()
