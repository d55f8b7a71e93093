"""xdist: same items and outcomes on every worker; Python checks with deploy_env and service."""

from __future__ import annotations

import re
import uuid

import pytest

from conftest import Project, free_port, runpytest
from servers import LoopbackServer

SUITE = """
service: api
checks:
  - name: listing
    kind: smoke
    parametrize: {path: [/ok, /echo, /text, /nope]}
    request: {path: "{{ path }}"}
    expect: {status: 200}
  - {name: health, kind: health, request: {path: /ok}, expect: {json: {status: ok}}}
  - {name: broken, kind: health, request: {path: /ok}, expect: {json: {status: down}}}
"""


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    found = re.findall(r"(?:\[gw\d\] )?(PASSED|FAILED) (suites/\S+ ?[^\n]*?\])", result.stdout.str())
    found += [(o, n) for n, o in re.findall(r"(suites/\S+ ?[^\n]*?\]) (PASSED|FAILED)",
                                             result.stdout.str())]
    return {name: outcome for outcome, name in found}


def test_xdist_runs_the_same_items_with_the_same_outcomes(project: Project,
                                                          server: LoopbackServer) -> None:
    project.simple(server.url, SUITE)
    serial = runpytest(project.pytester, "--env=test", "-v")
    parallel = runpytest(project.pytester, "--env=test", "-v", "-n", "2")
    serial.assert_outcomes(passed=4, failed=2)
    parallel.assert_outcomes(passed=4, failed=2)
    assert outcomes(serial) == outcomes(parallel)
    assert len(outcomes(serial)) == 6
    parallel.stdout.fnmatch_lines(["*deploycheck*", "test: failed (4 passed, 2 failed, 0 skipped)"])


def test_xdist_starts_processes_once_on_the_controller(project: Project) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    project.environments(f"""
        environments:
          local:
            start:
              - command: [python, -m, pytest_deploycheck.demo, --port, "{port}", --version, {marker}]
                ready: http://127.0.0.1:{port}/health
            services: {{api: {{url: "http://127.0.0.1:{port}"}}}}
    """)
    project.suite("s.yaml", f"""
        service: api
        checks:
          - name: health
            kind: health
            parametrize: {{n: [1, 2, 3, 4]}}
            request: {{path: /health}}
            expect: {{json: {{version: "{marker}"}}}}
    """)
    result = runpytest(project.pytester, "--env=local", "-n", "2")
    result.assert_outcomes(passed=4)


def test_python_checks_get_deploy_env_and_service_clients(project: Project,
                                                          server: LoopbackServer) -> None:
    project.environments(f"""
        environments:
          staging:
            vars: {{region: eu-west-1}}
            services: {{api: {{url: "{server.url}", headers: {{X-Team: platform}}}}}}
          production:
            protected: true
            services: {{api: {{url: "{server.url}"}}}}
    """)
    project.pytester.makepyfile(test_checkout="""
        import httpx
        import pytest

        def test_env_and_client(deploy_env, service):
            client = service("api")
            assert isinstance(client, httpx.Client)
            assert client is service("api")            # one keep-alive client per service
            headers = client.get("/echo").json()["headers"]
            if deploy_env.name == "staging":
                assert headers["X-Team"] == "platform"
                assert deploy_env.vars["region"] == "eu-west-1"
            else:
                assert "X-Team" not in headers
            assert deploy_env.protected == (deploy_env.name == "production")

        def test_protected_env_refuses_writes(deploy_env, service):
            if deploy_env.protected:
                with pytest.raises(Exception, match="is protected: POST"):
                    service("api").post("/echo", json={})
                r = service("api").post("/echo", json={},
                                        extensions={"deploycheck_allow_write": True})
                assert r.status_code == 200
            else:
                assert service("api").post("/echo", json={}).status_code == 200

        def test_unknown_service_is_a_clear_failure(service):
            service("web")

    """)
    result = runpytest(project.pytester, "--env=staging,production", "-v")
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines([
        "*test_env_and_client[[]staging[]] PASSED*",
        "*test_env_and_client[[]production[]] PASSED*",
        "*unknown service 'web' in environment 'staging'*; its services: api",
    ])


def test_deploy_env_without_env_is_a_clear_failure(project: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYCHECK_ENV", raising=False)
    project.environments("environments:\n  staging: {}\n")
    project.pytester.makepyfile("def test_x(deploy_env):\n    pass\n")
    result = runpytest(project.pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*deploy_env needs an environment: pass --env NAME (known: "
                                 "staging)"])
