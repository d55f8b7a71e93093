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
           "x\ntouch PWNED", "\\$(touch PWNED)\\", "$HOME $$ *?"]
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
        f"  - name: {label} by sh -c\n    kind: checklist\n"
        f"    parametrize: {{v: {json.dumps(HOSTILE)}}}\n"
        f"    command: {json.dumps(['sh', '-c', command.replace('probe ', 'probe sh-')])}\n"
        for label, (command, _) in CONTEXTS.items())
    project.suite("pre.yaml", "checks:\n" + checks)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=2 * len(CONTEXTS) * len(HOSTILE))
    assert_received_as_data(project, [
        [f"{prefix}{command.split('probe ')[1].split()[0]}", shape.format(v=value)]
        for command, shape in CONTEXTS.values() for value in HOSTILE for prefix in ("", "sh-")])


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


def test_every_field_of_a_check_is_rendered(project: Project, server: LoopbackServer) -> None:
    project.environments(f"""\
        environments:
          prod:
            services: {{api: {{url: "{server.url}"}}}}
            vars: {{section: echo, wanted: b, header: X-Probe, answer_header: Content-Type}}
        """)
    project.suite("all.yaml", """\
        service: api
        vars: {greeting: hello}
        checks:
          - name: request and expectations
            kind: smoke
            parametrize: {where: ["/{{ section }}/{{ env }}"]}
            steps:
              - request:
                  path: "{{ where }}"
                  headers: {"{{ header }}": "{{ greeting }} {{ env.name }}"}
                  params: {q: "{{ wanted }}"}
                expect:
                  status: 200
                  headers: {"{{ answer_header }}": {regex: "json"}}
                  json:
                    path: "/echo/prod?q=b"
                    'headers."{{ header }}"': "hello prod"
                    'to_string(headers."{{ header }}")': {regex: "^{{ greeting }}"}
                  body: {contains: "{{ greeting }} prod", regex: "q={{ wanted }}"}
                save: {probe: 'headers."{{ header }}"'}
              - request: {path: /echo, json: {"{{ wanted }}": "{{ probe }}"}}
                expect: {json: {body: {regex: '"b": ?"hello prod"'}}}
          - name: a checklist command and its expectations
            kind: checklist
            parametrize: {v: ["{{ greeting }} world", "it's `nothing`; rm"]}
            command: 'echo "{{ v }}"; echo "{{ v }}" >&2'
            expect: {stdout: "^{{ v }}$", stderr: "{{ v }}"}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=3)


def test_a_rendered_expectation_that_differs_fails(project: Project,
                                                   server: LoopbackServer) -> None:
    project.simple(server.url, """\
        service: api
        checks:
          - name: item n
            kind: smoke
            parametrize: [{id: a, n: 1}, {id: b, n: 1}]
            request: {path: /ok}
            expect: {json: {"items[?id=='{{ id }}'].n | [0]": "{{ n }}"}}
          - name: checklist stdout
            kind: checklist
            parametrize: {v: [one]}
            command: "echo other"
            expect: {stdout: "^{{ v }}$"}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*json items[[]?id=='b'[]].n | [[]0[]]: expected 1, got 2*",
                                 "*stdout does not match /^one$/*"])


def test_rollback_and_notify_webhooks_know_the_environment_vars(
        project: Project, server: LoopbackServer) -> None:
    hook = f"{server.url}/webhook/200/vars-{id(project)}"
    project.environments(f"""\
        environments:
          prod:
            services: {{api: {{url: "{server.url}"}}}}
            vars: {{service_name: checkout}}
            rollback:
              - webhook: {{url: "{hook}", json: {{service: "{{{{ service_name }}}}", env: "{{{{ env }}}}"}}}}
        """)
    project.suite("post.yaml", "service: api\nchecks:\n"
                  "  - {name: broken, kind: smoke, request: {path: /status/503}}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(failed=1)
    bodies = [json.loads(body) for path, body in server.bodies if path == hook.split(server.url)[1]]
    assert bodies == [{"service": "checkout", "env": "prod"}]


@pytest.mark.parametrize(("suite", "line", "key", "message"), [
    ("checks:\n  - name: a\n    kind: checklist\n    command: echo\n"
     "    runbook: 'https://wiki/{{ env }}'\n",
     5, "checks[0].runbook", "{{ }} is not rendered in this value*"),
    ("vars: {x: '{{ y }}'}\nchecks:\n  - {name: a, kind: checklist, command: echo}\n",
     1, "vars.x", "{{ }} is not rendered in this value*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'echo {{ v | upper }}'\n",
     4, "checks[0].command", "'{{ v | upper }}' is not a template*filters*not supported*"),
    ("service: api\nchecks:\n  - name: a\n    kind: smoke\n"
     "    request: {path: /ok, headers: {Authorization: 'Bearer ${OLD_TOKEN}'}}\n",
     5, "checks[0].request.headers.Authorization", "${...} is not interpolated in suite files*"),
    ("checks:\n  - name: a\n    kind: checklist\n    parametrize: {v: ['{{ nope }}']}\n"
     "    command: 'echo {{ v }}'\n",
     4, "checks[0].parametrize", "template '{{ nope }}' is not defined in environment 'test'*"),
    ("service: api\nchecks:\n  - name: a\n    kind: smoke\n    request: {path: /ok}\n"
     "    retry: {attempts: 2, stop_if: {status: '{{ nope }}'}}\n",
     6, "checks[0].retry.stop_if", "template '{{ nope }}' is not defined in environment 'test'*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'echo $(( {{ n }} + 1 ))'\n",
     4, "checks[0].command", "a template inside $((...)) or ((...)) cannot be passed to the shell safely*"),
    # bash evaluates a value as arithmetic there, quoted or not: 'a[$(cmd)]' runs cmd.
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'if [[ \"{{ n }}\" -eq 1 ]]; then :; fi'\n",
     4, "checks[0].command", "a template inside [[][[] ... ]] (use [[] ... ]) cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'echo; (( {{ n }} > 1 ))'\n",
     4, "checks[0].command", "a template inside $((...)) or ((...)) cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'true && let x={{ n }}+1'\n",
     4, "checks[0].command", "a template in the arguments of 'let' cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: [bash, -c, 'declare -i x=\"{{ n }}\"']\n",
     4, "checks[0].command", "a template in the arguments of 'declare' cannot be passed*"),
    # ... and where a builtin takes a variable name: its subscript is arithmetic too.
    ("checks:\n  - name: a\n    kind: checklist\n    command: [bash, -c, 'printf -v \"{{ n }}\" x']\n",
     4, "checks[0].command", "a template in the arguments of 'printf -v' cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: [bash, -c, 'echo x | read \"{{ n }}\"']\n",
     4, "checks[0].command", "a template in the arguments of 'read' cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: \"[ -v '{{ n }}' ] || test -v x\"\n",
     4, "checks[0].command", "a template in the arguments of '[[] -v' cannot be passed*"),
    ("checks:\n  - name: a\n    kind: checklist\n    command: 'true; test -v \"{{ n }}\"'\n",
     4, "checks[0].command", "a template in the arguments of 'test -v' cannot be passed*"),
    ("service: api\nchecks:\n  - name: a\n    kind: smoke\n    request: {path: /ok}\n"
     "    save: {'{{ k }}': token}\n",
     6, "checks[0].save.{{ k }}", "{{ }} is not rendered in this key*"),
])
def test_a_template_that_would_not_be_rendered_is_a_collection_error(
        project: Project, server: LoopbackServer, suite: str, line: int, key: str,
        message: str) -> None:
    project.simple(server.url, "")
    (project.path / "suites" / "checks.yaml").write_text(suite)
    result = runpytest(project.pytester, "--env=test")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*suites/checks.yaml:{line}: {escaped(key)}: {message}"])


@pytest.mark.parametrize(("action", "key", "message"), [
    ("rollback:\n      - command: 'echo {{ nope }}'",
     "environments.test.rollback[0].command", "template '{{ nope }}' is not defined*"),
    ("notify:\n      - webhook: {url: 'http://x/{{ env | lower }}'}",
     "environments.test.notify[0].webhook.url", "'{{ env | lower }}' is not a template*"),
    ("services:\n      api: {url: 'http://x', headers: {X-Env: '{{ env }}'}}",
     "environments.test.services.api.headers.X-Env", "{{ }} is not rendered in this value*"),
    ("metrics:\n      default: {type: command, command: 'echo {{ query }} {{ env }}'}",
     "environments.test.metrics.default.command", "'{{ env }}' is not defined: a metric*"),
])
def test_a_template_of_the_environments_file_that_would_not_be_rendered_is_an_error(
        project: Project, action: str, key: str, message: str) -> None:
    project.environments(f"environments:\n  test:\n    {action}\n")
    project.suite("c.yaml", "checks:\n  - {name: a, kind: checklist, command: echo}\n")
    result = runpytest(project.pytester, "--env=test")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*environments.yaml:*: {escaped(key)}: {message}"])


def escaped(key: str) -> str:
    """``key`` as an fnmatch pattern (``checks[0]`` is not a character class)."""
    return key.replace("[", "[[]")


def test_a_literal_double_brace_is_written_as_a_template_of_itself(
        project: Project, server: LoopbackServer) -> None:
    project.simple(server.url, """\
        service: api
        checks:
          - name: go template
            kind: checklist
            parametrize: {v: [x]}
            command: 'printf "%s" "{{ ''{{'' }}.State}} {{ v }}"'
            expect: {stdout: '^\\{\\{\\.State}} {{ v }}$'}
          - name: body
            kind: smoke
            request: {method: POST, path: /echo, body: '{{ "{{" }}raw}}'}
            expect: {json: {body: "{{ '{{' }}raw}}"}}
          - name: a Go template written as it is
            kind: checklist
            command: "docker inspect -f '{{.State.Status}}' api"
        """)
    result = runpytest(project.pytester, "--env=test")
    result.stdout.fnmatch_lines([
        "*suites/checks.yaml:14: checks[[]2].command: '{{.State.Status}}' is not a template*"
        "{{ \"{{\" }} writes a literal {{"])
    (project.path / "suites" / "checks.yaml").write_text(
        (project.path / "suites" / "checks.yaml").read_text().split("  - name: a Go")[0])
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=2)


def test_an_environment_variable_in_a_command_of_the_environments_file_stays_data(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("BRANCH", "$(touch PWNED)")
    monkeypatch.setenv("QUOTE", "'; touch PWNED; '")
    project.environments(f"""\
        environments:
          prod:
            services: {{api: {{url: "{server.url}"}}}}
            metrics:
              default: {{type: command, command: "probe metric ${{BRANCH}} && echo 1"}}
            rollback:
              - command: "probe rollback '${{QUOTE}}' \\"${{BRANCH}}\\" ${{UNSET:-a b}} $$HOME"
              - command: [sh, -c, "probe sh-c ${{QUOTE}}"]
        """)
    project.suite("post.yaml", "service: api\nchecks:\n"
                  "  - {name: broken, kind: smoke, request: {path: /status/503}}\n"
                  "  - {name: m, kind: metric, query: x, threshold: '< 2'}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1, failed=1)
    home = __import__("os").environ["HOME"]
    assert_received_as_data(project, [["metric", "$(touch PWNED)"],
                                      ["rollback", "'; touch PWNED; '", "$(touch PWNED)", "a b",
                                       home], ["sh-c", "'; touch PWNED; '"]])


@pytest.mark.parametrize("shell", [["bash", "-xc"], ["sh", "-ec"], ["sh", "-e", "-c"],
                                   ["bash", "-o", "pipefail", "-c"], ["/bin/sh", "-uc"]])
def test_the_script_of_a_shell_given_c_in_any_form_is_rendered_as_data(
        project: Project, monkeypatch: pytest.MonkeyPatch, shell: list[str]) -> None:
    """``bash -xc SCRIPT`` is as much a shell's script as ``sh -c SCRIPT``: pasted in, its value
    ran."""
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    project.environments("environments:\n  prod: {}\n")
    command = [*shell, "probe '{{ v }}' \"{{ v }}\" {{ v }}"]
    project.suite("pre.yaml", f"checks:\n  - name: c\n    kind: checklist\n"
                  f"    parametrize: {{v: {json.dumps(HOSTILE)}}}\n"
                  f"    command: {json.dumps(command)}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(
        passed=len(HOSTILE))
    assert_received_as_data(project, [[value] * 3 for value in HOSTILE])


@pytest.mark.parametrize(("command", "message"), [
    ("sh -c 'probe {{ v }}'", "a template in the arguments of 'sh -c' (which parses them*"),
    ('bash -lc "probe {{ v }}"', "a template in the arguments of 'bash -lc' (which parses*"),
    ("echo x | xargs sh -c 'probe {{ v }}'", "*arguments of 'sh -c' (which parses them*"),
    ("sudo -n bash -c \"probe '{{ v }}'\"", "*arguments of 'bash -c' (which parses them*"),
    ('eval "probe {{ v }}"', "a template in the arguments of 'eval' (which parses them*"),
    ("true; (eval 'probe {{ v }}')", "a template in the arguments of 'eval' (which parses*"),
    (["env", "sh", "-c", "probe {{ v }}"], "a template in the script of 'sh -c' run by 'env'*"),
    (["kubectl", "exec", "p", "--", "bash", "-lc", "probe {{ v }}"],
     "a template in the script of 'bash -lc' run by 'kubectl'*"),
])
def test_a_template_in_a_script_another_shell_parses_is_a_collection_error(
        project: Project, command: str | list[str], message: str) -> None:
    """The value is expanded as data by the command line's shell, but into the text of a script
    that a second shell (or eval) then parses: ``sh -c 'echo {{ v }}'`` ran ``$(...)``."""
    project.environments("environments:\n  prod: {}\n")
    project.suite("pre.yaml", "checks:\n  - name: c\n    kind: checklist\n"
                  "    parametrize: {v: ['$(touch PWNED)']}\n"
                  f"    command: {json.dumps(command)}\n")
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret != 0
    result.stdout.fnmatch_lines([f"*suites/pre.yaml:5: checks[[]0].command: {message}"])
    assert not (project.path / "PWNED").exists()


def test_a_shell_given_its_script_by_position_after_it_still_gets_values_as_arguments(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The way out the errors name: the value as an argument after a nested shell's script."""
    probe_project(project)
    monkeypatch.setenv("PATH", f"{project.path / 'bin'}:{Path(sys.executable).parent}:/usr/bin:/bin")
    project.environments("environments:\n  prod: {}\n")
    command = ["env", "sh", "-c", 'probe "$1"', "_", "{{ v }}"]
    project.suite("pre.yaml", f"checks:\n  - name: c\n    kind: checklist\n"
                  f"    parametrize: {{v: {json.dumps(HOSTILE)}}}\n"
                  f"    command: {json.dumps(command)}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(
        passed=len(HOSTILE))
    assert_received_as_data(project, [[value] for value in HOSTILE])


@pytest.mark.parametrize(("command", "message"), [
    ('"bash -c \\"probe ${BRANCH}\\""', "a template in the arguments of 'bash -c' (which*"),
    ('[env, sh, -c, "probe ${BRANCH}"]', "${...} in the script of 'sh -c' run by 'env' cannot*"),
])
def test_an_environment_variable_in_a_script_another_shell_parses_is_an_error(
        project: Project, monkeypatch: pytest.MonkeyPatch, command: str, message: str) -> None:
    monkeypatch.setenv("BRANCH", "$(touch PWNED)")
    project.environments(f"environments:\n  prod:\n    rollback:\n      - command: {command}\n")
    project.suite("c.yaml", "checks:\n  - {name: a, kind: checklist, command: 'exit 1'}\n")
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [f"*environments.yaml:4: environments.prod.rollback[[]0].command*: {message}"])
    assert not (project.path / "PWNED").exists()
