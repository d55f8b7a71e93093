"""Health and smoke checks against a real loopback server, driven end to end with pytester."""

from __future__ import annotations

import json

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(pytester, "--env=test", *args)


def test_passing_check_is_one_item_with_the_documented_id(project: Project, server: LoopbackServer,
                                                           pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        suite: api
        service: api
        checks:
          - {name: service is up, kind: health, request: {path: /ok}, expect: {status: 200}}
    """)
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["suites/checks.yaml::api::service is up[[]test[]] PASSED*"])


def test_suite_name_defaults_to_the_file_stem(project: Project, server: LoopbackServer,
                                              pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: up, kind: health, request: {path: /ok}}
    """)
    run(pytester, "--collect-only", "-q").stdout.fnmatch_lines(["suites/checks.yaml::checks::up[[]test[]]"])


@pytest.mark.parametrize(("status", "code", "passes"), [
    ("200", "/ok", True), ("2xx", "/ok", True), ("[200, 503]", "/status/503", True),
    ("5xx", "/status/503", True), ("200", "/status/503", False), ("4xx", "/ok", False),
])
def test_status_forms(project: Project, server: LoopbackServer, pytester: pytest.Pytester,
                      status: str, code: str, passes: bool) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - {{name: s, kind: health, request: {{path: {code}}}, expect: {{status: {status}}}}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=int(passes), failed=int(not passes))


@pytest.mark.parametrize(("rule", "passes"), [
    ("status: ok", True),
    ("status: down", False),
    ("count: 3", True),
    ("flag: true", True),
    ("count: '3'", False),                      # the string "3" is not the number 3
    ('"checks.*": up', True),                   # every element of a projection
    ("\"items[*].n\": {gte: 1}", True),
    ("\"items[*].n\": {gt: 1}", False),         # one element is 1
    ("count: {lt: 4}", True),
    ("count: {lte: 2}", False),
    ("count: {ne: 4}", True),
    ("version: {regex: '^1\\.\\d+$'}", True),
    ("version: {regex: '^2'}", False),
    ("status: {one_of: [ok, degraded]}", True),
    ("status: {one_of: [degraded]}", False),
    ("nothing: {exists: false}", True),
    ("missing: {exists: true}", False),
    ("name: {exists: true}", True),
    ("count: {type: integer}", True),
    ("flag: {type: integer}", False),           # booleans are not integers
    ("items: {type: array}", True),
    ("name: {contains: sv}", True),
    ("\"items[*].id\": {contains: b}", True),
    ("checks: {contains: db}", True),
    ("checks: {contains: queue}", False),
    ('"length(items)": 2', True),
    ('"length(items)": {gte: 3}', False),
    ("checks: {db: up, cache: up}", True),      # a mapping with several keys is equality
])
def test_json_matchers(project: Project, server: LoopbackServer, pytester: pytest.Pytester,
                       rule: str, passes: bool) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: j
            kind: health
            request: {{path: /ok}}
            expect:
              json:
                {rule}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=int(passes), failed=int(not passes))


def test_failure_names_check_request_expectations_body_and_yaml_line(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: first
            kind: health
            request: {path: /ok}
          - name: versions agree
            kind: health
            runbook: https://wiki.example.com/runbooks/api#health
            request: {path: /ok, headers: {X-Trace: abc}}
            expect:
              status: 200
              json: {version: "2.0", "checks.*": up}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "health check 'versions agree' failed in environment 'test'",
        "  at suites/checks.yaml:7",
        "  runbook: https://wiki.example.com/runbooks/api#health",
        f"GET {server.url}/ok",
        "  X-Trace: abc",
        "  -> 200 in *",
        '  FAILED json version: expected "2.0", got "1.0"',
        "  response body:",
        '      "status": "ok",',
    ])
    assert "Traceback" not in result.stdout.str()
    assert "json checks.*" not in result.stdout.str()


def test_headers_body_latency_and_inline_schema(project: Project, server: LoopbackServer,
                                                pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: all good
            kind: health
            request: {path: /ok}
            expect:
              headers: {X-Service: svc-1.0, Content-Type: {regex: json}}
              body: {contains: '"status": "ok"', regex: 'version.+1\\.0'}
              latency: "< 2s"
              schema: {type: object, required: [status, count], properties: {count: {type: integer}}}
          - name: all wrong
            kind: health
            request: {path: /ok}
            expect:
              headers: {X-Service: other, X-Missing: {regex: x}}
              body: {contains: nope}
              latency: "< 0ms"
              schema: {type: object, properties: {count: {type: string}}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "  FAILED header X-Service: expected 'other', got 'svc-1.0'",
        "  FAILED header X-Missing: expected /x/, got no such header",
        "  FAILED body: expected to contain 'nope', got no such text",
        "  FAILED schema: expected body valid against the schema, got at count: 3 is not of type 'string'",
        '  FAILED latency: expected < 0ms, got *ms',
    ])


def test_schema_file_relative_to_the_suite(project: Project, server: LoopbackServer,
                                           pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: s, kind: health, request: {path: /ok}, expect: {schema: schemas/ok.json}}
    """)
    (project.path / "suites" / "schemas").mkdir()
    (project.path / "suites" / "schemas" / "ok.json").write_text(
        '{"type": "object", "required": ["status", "absent"]}')
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED schema: *'absent' is a required property"])


def test_steps_save_values_for_later_templates(project: Project, server: LoopbackServer,
                                               pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: login then me
            kind: smoke
            steps:
              - request: {method: POST, path: /login, json: {user: smoke}}
                save: {token: token, who: user}
              - request: {path: /me, headers: {Authorization: "Bearer {{ token }}"}}
                expect: {status: 200, json: {user: "{{ who }}"}}
    """)
    run(pytester).assert_outcomes(passed=1)


def test_templates_read_params_suite_vars_env_vars_and_env_name(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.environments(f"""
        environments:
          test:
            vars: {{greeting: hello, shadowed: env}}
            services: {{api: {{url: "{server.url}"}}}}
    """)
    project.suite("checks.yaml", """
        service: api
        vars: {shadowed: suite}
        checks:
          - name: echo
            kind: smoke
            parametrize: {n: [1, 2]}
            request:
              method: POST
              path: "/echo?n={{ n }}"
              json: {g: "{{ greeting }}", s: "{{ shadowed }}", e: "{{ env.name }}", n: "{{ n }}"}
            expect:
              json:
                path: "/echo?n={{ n }}"
                body: {contains: '"g":"hello","s":"suite","e":"test"'}
              body: {regex: 'n\\\\":[12]\\}'}
    """)
    run(pytester).assert_outcomes(passed=2)


def test_parametrize_ids_and_list_of_mappings(project: Project, server: LoopbackServer,
                                              pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: product
            kind: smoke
            parametrize: {path: [/ok, /echo], q: [a, b]}
            request: {path: "{{ path }}", params: {q: "{{ q }}"}}
          - name: listed
            kind: smoke
            parametrize: [{path: /ok, code: 200}, {path: /nope, code: 404}]
            request: {path: "{{ path }}"}
            expect: {status: "{{ code }}"}
    """)
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "suites/checks.yaml::checks::product[[]test-/ok-a[]]",
        "suites/checks.yaml::checks::product[[]test-/ok-b[]]",
        "suites/checks.yaml::checks::product[[]test-/echo-a[]]",
        "suites/checks.yaml::checks::product[[]test-/echo-b[]]",
        "suites/checks.yaml::checks::listed[[]test-/ok-200[]]",
        "suites/checks.yaml::checks::listed[[]test-/nope-404[]]",
    ])


def test_retry_until_ready(project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: becomes ready
            kind: health
            request: {path: "/flaky/retry-ready?fail=2"}
            expect: {status: 200, json: {status: ready}}
            retry: {until: 10s, interval: 50ms}
    """)
    run(pytester).assert_outcomes(passed=1)
    assert server.hits["/flaky/retry-ready"] == 3


def test_retry_attempts_are_bounded(project: Project, server: LoopbackServer,
                                    pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: never ready
            kind: health
            request: {path: "/flaky/retry-bounded?fail=100"}
            expect: {status: 200}
            retry: {attempts: 4, interval: 10ms}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  (last of 4 attempts)"])
    assert server.hits["/flaky/retry-bounded"] == 4


def test_retry_stop_if_gives_up_at_once(project: Project, server: LoopbackServer,
                                        pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: broken
            kind: health
            request: {path: "/flaky/retry-stop?fail=100&code=500"}
            expect: {status: 200}
            retry: {until: 30s, interval: 10ms, stop_if: {status: 500}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*gave up: the answer matches retry.stop_if*"])
    assert server.hits["/flaky/retry-stop"] == 1


def test_envs_skip_envs_and_several_environments(project: Project, server: LoopbackServer,
                                                 pytester: pytest.Pytester) -> None:
    project.environments(f"""
        environments:
          a: {{services: {{api: {{url: "{server.url}"}}}}}}
          b: {{services: {{api: {{url: "{server.url}"}}}}}}
          c: {{services: {{api: {{url: "{server.url}"}}}}}}
    """)
    project.suite("checks.yaml", """
        service: api
        envs: [a, b]
        checks:
          - {name: suite default, kind: health, request: {path: /ok}}
          - {name: only c, kind: health, envs: [c], request: {path: /ok}}
          - {name: not b, kind: health, skip_envs: [b], request: {path: /ok}}
    """)
    result = runpytest(pytester, "--env=a,b", "--env", "c", "--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "*::suite default[[]a[]]", "*::suite default[[]b[]]",
        "*::only c[[]c[]]", "*::not b[[]a[]]", "4 tests collected*"])


def test_kind_markers_and_marks_select_items(project: Project, server: LoopbackServer,
                                             pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        marks: [api]
        checks:
          - {name: alpha, kind: health, request: {path: /ok}}
          - {name: beta, kind: smoke, marks: [critical], request: {path: /ok}}
    """)
    assert "1 passed, 1 deselected" in run(pytester, "-m", "smoke").stdout.str()
    assert "2 passed" in run(pytester, "-m", "postdeploy and api").stdout.str()
    assert "1 passed, 1 deselected" in run(pytester, "-m", "critical", "--strict-markers"
                                           ).stdout.str()
    assert "1 passed, 1 deselected" in run(pytester, "-k", "alpha and not beta").stdout.str()


def test_protected_environment_refuses_writes_unless_allowed(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.environments(f"""
        environments:
          test:
            protected: true
            services: {{api: {{url: "{server.url}"}}}}
            rollback:
              - command: "echo rolled back > rolled-back.txt"
    """)
    project.suite("checks.yaml", """
        service: api
        checks:
          - {name: read, kind: smoke, request: {path: /ok}}
          - name: allowed write
            kind: smoke
            allow_write: true
            request: {method: POST, path: "/echo?w=allowed", json: {}}
    """)
    project.suite("write.yaml", """
        service: api
        checks:
          - name: write
            kind: smoke
            request:
              path: "/echo?w=refused"
              method: POST
    """)
    before = sum(1 for method, path, _ in server.requests if method == "POST")
    # Known before anything runs: a collection error, never a failed rollback gate that rolls
    # back a healthy deploy.
    result = run(pytester, "--gate-report=gate.json")
    assert result.ret != 0
    result.stdout.fnmatch_lines([
        "*suites/write.yaml:8: checks[[]0[]].request.method: environment 'test' is protected: "
        "POST would be refused; set 'allow_write: true' on the check if it must write there, "
        "or leave 'test' out with 'skip_envs'"])
    assert json.loads((pytester.path / "gate.json").read_text())["verdict"] == "blocked"
    assert not (pytester.path / "rolled-back.txt").exists()
    (pytester.path / "suites" / "write.yaml").unlink()
    result = run(pytester)
    result.assert_outcomes(passed=2)
    posts = [path for method, path, _ in server.requests if method == "POST"][before:]
    assert posts == ["/echo"]  # only the allowed write reached the server


def test_service_headers_and_request_params(project: Project, server: LoopbackServer,
                                            pytester: pytest.Pytester) -> None:
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{X-Team: platform}}}}
    """)
    project.suite("checks.yaml", """
        service: api
        checks:
          - name: headers and params
            kind: smoke
            request: {path: /echo, params: {q: deploy, page: 2}, headers: {X-Call: one}}
            expect:
              json: {path: "/echo?q=deploy&page=2", 'headers."X-Team"': platform,
                     'headers."X-Call"': one}
    """)
    run(pytester).assert_outcomes(passed=1)


def test_absolute_url_request_without_service(project: Project, server: LoopbackServer,
                                              pytester: pytest.Pytester) -> None:
    project.simple(server.url, f"""
        checks:
          - {{name: status page, kind: health, request: {{url: "{server.url}/ok"}}}}
    """)
    run(pytester).assert_outcomes(passed=1)


def test_https_certificate_expiry(project: Project, pytester: pytest.Pytester,
                                  tls_server: tuple[str, str]) -> None:
    url, cafile = tls_server
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{url}", verify_tls: "{cafile}"}}
              unverified: {{url: "{url}", verify_tls: false}}
    """)
    project.suite("checks.yaml", """
        service: api
        checks:
          - {name: valid a while, kind: health, request: {path: /},
             expect: {certificate: {expires_in: "> 20d"}}}
          - {name: not long enough, kind: health, request: {path: /},
             expect: {certificate: {expires_in: "> 60d"}}}
          - {name: unverified, kind: health, request: {path: /, service: unverified},
             expect: {certificate: {expires_in: "> 1d"}}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "  FAILED certificate expires_in: expected > 60d, got [23]?.?d",
        "  FAILED certificate expires_in: expected > 1d, got no verified TLS certificate*",
    ])
