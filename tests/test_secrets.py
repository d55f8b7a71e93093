"""Secrets never appear in terminal output (also at -vv) or JUnit XML."""

from __future__ import annotations

import base64

import pytest

from conftest import Project, runpytest
from servers import SECRET_SESSION_TOKEN, LoopbackServer

ENV_TOKEN = "env-tok-8d1e5b0c93"
HEADER_KEY = "hdr-key-77aa21f0c4"
URL_PASSWORD = "url-pass-5e6f7a8b"


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
    project.suite("checks.yaml", """
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
                expect: {status: 418, body: {contains: "{{ session_token }}"}}
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
