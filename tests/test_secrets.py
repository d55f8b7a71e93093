"""Secrets never appear in terminal output (also at -vv) or JUnit XML."""

from __future__ import annotations

import base64
import json

import pytest

from conftest import Project, runpytest
from servers import SECRET_SESSION_TOKEN, LoopbackServer

ENV_TOKEN = "env-tok-8d1e5b0c93"
HEADER_KEY = "hdr-key-77aa21f0c4"
URL_PASSWORD = "url-pass-5e6f7a8b"
# Checks whose failures show the secrets sent and received: echoed headers, a saved token.
LEAKY_CHECKS = """
        service: api
        checks:
          - name: echo shows the headers back
            kind: smoke
            request: {path: /echo}
            expect: {json: {method: POST}}
          - name: saved session token
            kind: smoke
            steps:
              - request: {method: POST, path: /login, json: {}}
                save: {session_token: token}
              - request: {path: /me, headers: {Authorization: "Bearer {{ session_token }}"}}
                expect: {status: 418, body: {contains: "{{ session_token }}"}}"""


def test_secrets_are_redacted_everywhere(project: Project, server: LoopbackServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", ENV_TOKEN)
    host = server.url.removeprefix("http://")
    project.environments(f"""
        environments:
          test:
            services:
              api:
                url: "{server.url}"
                headers:
                  Authorization: "Bearer ${{API_TOKEN}}"
                  X-Api-Key: {HEADER_KEY}
              basic: {{url: "http://deploy:{URL_PASSWORD}@{host}"}}
    """)
    project.suite("checks.yaml", LEAKY_CHECKS + """
          - name: user-info in the URL
            kind: smoke
            request: {path: /echo, service: basic}
            expect: {status: 500}
    """)
    junit = project.path / "junit.xml"
    result = runpytest(project.pytester, "--env=test", "-vv", f"--junitxml={junit}")
    result.assert_outcomes(failed=3)
    output = result.stdout.str() + result.stderr.str()
    xml = junit.read_text()
    basic = base64.b64encode(f"deploy:{URL_PASSWORD}".encode()).decode()
    for secret in (ENV_TOKEN, HEADER_KEY, SECRET_SESSION_TOKEN, URL_PASSWORD, basic):
        assert secret not in output, secret
        assert secret not in xml, secret
    # The failures still show what was sent, masked.
    result.stdout.fnmatch_lines(["  Authorization: ***", "  X-Api-Key: ***"])
    assert '"Authorization": "***"' in output  # the echoed header in the response body


HOOK_TOKEN = "hook-tok-93be7c1d55"


def test_no_artifact_holds_a_secret(project: Project, server: LoopbackServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret from ${...} in a service header, a token saved by a smoke step and a webhook
    header: none of them in any output of a failing, rolled-back run under xdist."""
    monkeypatch.setenv("API_TOKEN", ENV_TOKEN)
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    project.environments(f"""
        environments:
          test:
            services:
              api:
                url: "{server.url}"
                headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
            rollback:
              - command: 'echo "rolling back with $HOOK_TOKEN"; exit 1'
            notify:
              - webhook:
                  url: "{server.url}/webhook/500/secrets"
                  headers: {{X-Hook-Token: "${{HOOK_TOKEN}}"}}
                  json: {{text: "{{{{ env }}}}: {{{{ verdict }}}}"}}
                  retries: 0
    """)
    project.suite("checks.yaml", LEAKY_CHECKS + """
          - name: token in a warning
            kind: smoke
            on_fail: warn
            request: {path: /echo}
            expect: {body: {contains: "not there"}}
    """)
    result = runpytest(project.pytester, "--env=test", "-vv", "-p", "xdist", "-n", "2",
                       "--junitxml=junit.xml", "--alluredir=allure-results",
                       "--gate-report=gate.json", "--audit-log=audit.jsonl")
    result.assert_outcomes(failed=2, passed=1)
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "rollback_failed"
    artifacts = {"terminal": result.stdout.str() + result.stderr.str()}
    for name in ("junit.xml", "gate.json", "audit.jsonl", "summary.md"):
        artifacts[name] = (project.path / name).read_text()
    allure = sorted((project.path / "allure-results").iterdir())
    assert len(allure) > 10
    for path in allure:
        artifacts[f"allure-results/{path.name}"] = path.read_text()
    assert "::error file=suites/checks.yaml" in artifacts["terminal"]
    assert "rolling back with ***" in artifacts["gate.json"]
    for secret in (ENV_TOKEN, SECRET_SESSION_TOKEN, HOOK_TOKEN):
        leaks = [name for name, text in artifacts.items() if secret in text]
        assert not leaks, (secret, leaks)
