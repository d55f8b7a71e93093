"""Templates: every ``{{ }}`` is rendered or a collection error, values never become code in a
command, and a service's headers never leave its origin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer, start_server, stop_server

# Values that would run ``touch PWNED`` if a shell ever parsed them.
HOSTILE = ["$(touch PWNED)", "`touch PWNED`", "'; touch PWNED; '", '"; touch PWNED; "',
           "x\ntouch PWNED", "\\$(touch PWNED)\\", "${HOME}$$*?"]
# Each quoting context a command author may put a template in, and the argument the probe must
# receive for a value ``v``.
CONTEXTS = {
    "unquoted": ("probe unquoted {{ v }}", "{v}"),
    "double-quoted": ('probe double "{{ v }}"', "{v}"),
    "single-quoted": ("probe single '{{ v }}'", "{v}"),
    "inside words": ("probe words \"a {{ v }} b\"'c {{ v }} d'e{{ v }}f", "a {v} bc {v} de{v}f"),
    "apostrophe in double quotes": ("probe apostrophe \"it's {{ v }}\"", "it's {v}"),
    "quotes in single quotes": ("probe dq-in-sq 'say \"{{ v }}\"'", 'say "{v}"'),
    "backticks": ("echo `probe backticks {{ v }}`", "{v}"),
    "backticks in double quotes": ('echo "`probe bq-dq \'{{ v }}\'`"', "{v}"),
    "command substitution": ('echo $(probe subst "{{ v }}")', "{v}"),
    "nested substitution": ("echo \"$(echo $(probe nested '{{ v }}'))\"", "{v}"),
}
PROBE = """\
import json, sys
with open("received.jsonl", "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def probe_project(project: Project) -> None:
    (project.path / "probe.py").write_text(PROBE)
    (project.path / "bin").mkdir()
    probe = project.path / "bin" / "probe"
    probe.write_text(f"#!/bin/sh\nexec {sys.executable} {project.path / 'probe.py'} \"$@\"\n")
    probe.chmod(0o755)


def received(project: Project) -> list[list[str]]:
    path = project.path / "received.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_received_as_data(project: Project, expected: list[list[str]]) -> None:
    assert not (project.path / "PWNED").exists(), "a templated value ran as code"
    assert sorted(received(project)) == sorted(expected)


def test_a_value_reaches_a_checklist_command_as_data_in_every_quoting_context(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    project.environments("environments:\n  prod: {}\n")
    checks = "".join(
        f"  - name: {label}\n    kind: checklist\n    parametrize: {{v: {json.dumps(HOSTILE)}}}\n"
        f"    command: {json.dumps(command)}\n"
        for label, (command, _) in CONTEXTS.items())
    project.suite("pre.yaml", "checks:\n" + checks)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=len(CONTEXTS) * len(HOSTILE))
    assert_received_as_data(project, [
        [command.split("probe ")[1].split()[0], shape.format(v=value)]
        for command, shape in CONTEXTS.values() for value in HOSTILE])


def test_rollback_and_notify_commands_render_env_and_vars_as_data(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("BRANCH", "$(touch PWNED)")
    project.environments(f"""\
        environments:
          prod:
            services: {{api: {{url: "{server.url}"}}}}
            vars: {{branch: "${{BRANCH}}", release: "1.2 final"}}
            rollback:
              - command: 'probe rollback "{{{{ env }}}}" "{{{{ branch }}}}" {{{{ release }}}}'
              - command: [probe, rollback-argv, "{{{{ branch }}}}", "{{{{ failed_count }}}}"]
            notify:
              - command: "probe notify '{{{{ verdict }}}}' '{{{{ branch }}}}' `echo {{{{ env.name }}}}`"
        """)
    project.suite("post.yaml", "service: api\nchecks:\n"
                  "  - {name: broken, kind: smoke, request: {path: /status/503}}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(failed=1)
    assert_received_as_data(project, [
        ["rollback", "prod", "$(touch PWNED)", "1.2 final"],
        ["rollback-argv", "$(touch PWNED)", "1"],
        ["notify", "rolled_back", "$(touch PWNED)", "prod"]])


def test_the_query_reaches_a_metric_command_as_data(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    project.metric_source("""{type: command, command: "probe metric '{{ query }}' && echo 1"}""")
    project.suite("m.yaml", "checks:\n"
                  f"  - {{name: q, kind: metric, query: {json.dumps(HOSTILE[2])}, "
                  "threshold: '< 2'}\n")
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    assert_received_as_data(project, [["metric", HOSTILE[2]]])


SERVICE_HEADERS = {"Authorization": "Bearer svc-secret-7f3a", "X-Api-Key": "svc-key-91c2"}


def service_env(project: Project, url: str) -> None:
    project.environments(f"""\
        environments:
          prod:
            services:
              api:
                url: "{url}"
                headers: {json.dumps(SERVICE_HEADERS)}
        """)


def headers_seen(server: LoopbackServer) -> list[dict[str, str]]:
    return [headers for _, _, headers in server.requests]


@pytest.fixture
def other_host() -> Iterator[LoopbackServer]:
    """Another origin than the service's: every request it gets is recorded."""
    srv = start_server()
    yield srv
    stop_server(srv)


def test_a_saved_link_to_another_origin_is_refused_not_sent(
        project: Project, server: LoopbackServer, other_host: LoopbackServer) -> None:
    service_env(project, server.url)
    project.suite("paging.yaml", f"""\
        service: api
        checks:
          - name: follow next
            kind: smoke
            steps:
              - request: {{path: /echo, headers: {{X-Next: "{other_host.url}/echo"}}}}
                save: {{next: 'headers."X-Next"'}}
              - request: {{path: "{{{{ next }}}}"}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f"*refused: {other_host.url}/echo is not on service 'api' ({server.url}); a "
        f"service's headers go only to its own origin*"])
    assert other_host.requests == []


@pytest.mark.parametrize("path", [
    "{url}/echo", "//{host}/echo", "\\\\{host}/echo", "/\\{host}/echo",
    "http://127.0.0.1@{host}/echo", " {url}/echo", "{url}",
])
def test_a_path_that_leaves_the_service_origin_is_refused(
        project: Project, server: LoopbackServer, other_host: LoopbackServer,
        path: str) -> None:
    written = path.format(url=other_host.url, host=other_host.url.split("//")[1])
    service_env(project, server.url)
    project.suite("s.yaml", "service: api\nchecks:\n"
                  f"  - {{name: p, kind: smoke, parametrize: {{target: [{json.dumps(written)}]}}, "
                  "request: {path: '{{ target }}'}}\n")
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*refused: * is not on service 'api'*"])
    assert other_host.requests == []


def test_an_absolute_url_on_the_service_origin_is_sent(
        project: Project, server: LoopbackServer) -> None:
    service_env(project, server.url)
    project.suite("s.yaml", "service: api\nchecks:\n"
                  f"  - {{name: p, kind: smoke, parametrize: {{target: ['{server.url}/ok']}}, "
                  "request: {path: '{{ target }}'}}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_a_redirect_to_another_origin_carries_none_of_the_service_headers(
        project: Project, server: LoopbackServer, other_host: LoopbackServer) -> None:
    service_env(project, server.url)
    project.pytester.makepyfile(test_redirect=f"""
        import pytest

        @pytest.mark.deploycheck(kind="smoke")
        def test_follows(service):
            api = service("api")
            answer = api.get("/redirect", params={{"to": "{other_host.url}/echo"}},
                             follow_redirects=True)
            assert answer.status_code == 200
            assert api.get("{other_host.url}/ok").status_code == 200
            same = api.get("/redirect", params={{"to": "{server.url}/echo"}},
                           follow_redirects=True)
            assert same.json()["headers"]["X-Api-Key"] == "{SERVICE_HEADERS['X-Api-Key']}"
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)
    seen = headers_seen(other_host)
    assert len(seen) == 2
    for headers in seen:
        assert not {name.lower() for name in headers} & {"authorization", "x-api-key"}, headers
