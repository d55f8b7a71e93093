"""Secrets never appear in terminal output (also at -vv) or JUnit XML."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from conftest import Project, free_port, runpytest
from servers import SECRET_SESSION_TOKEN, LoopbackServer, issued_token

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


PLANTED = "pl4nted"  # in every secret of the test below: no output may hold any part of one
ENV_SECRET = "pl4nted-env-token-51ab"
LITERAL_SECRET = "pl4nted-literal-header-7d3f"
INHERITED_SECRET = "pl4nted-inherited-password-0e9a"
QUERY_SECRET = "pl4nted-query-key-33c1"
SIGNATURE_SECRET = "pl4nted-amz-sig-8f0e"
HOOK_PATH = "/webhook/500/services/T0/B0/pl4nted-hook-path-4b2d"
PYTHON_CHECKS = '''
    import logging
    import sys

    import pytest


    def _seen(service):
        return service("api").get("/echo").json()["headers"]["Authorization"]


    @pytest.mark.deploycheck(kind="smoke")
    def test_assertion_shows_the_token(service, record_property):
        seen = _seen(service)
        print("stdout saw", seen)
        sys.stderr.write(f"stderr saw {seen}\\n")
        logging.getLogger("check").warning("log saw %s", seen)
        record_property("seen", seen)
        assert seen == "Bearer nothing"


    @pytest.mark.deploycheck(kind="smoke", on_fail="warn")
    def test_passing_check_prints_the_token(service):
        seen = _seen(service)
        print("passing stdout saw", seen)
        assert seen
'''
EVERY_PATH_CHECKS = f"""
    service: api
    checks:
      - name: a literal secret header echoed back
        kind: smoke
        request: {{path: /echo, headers: {{X-Api-Key: {LITERAL_SECRET}}}}}
        expect: {{json: {{method: POST}}}}
      - name: a value saved under a plain name and sent as Authorization
        kind: smoke
        steps:
          - request: {{path: /token/alias}}
            save: {{t: token}}
          - request: {{path: /echo, headers: {{Authorization: "Bearer {{{{ t }}}}"}}}}
            expect: {{json: {{method: POST}}}}
      - name: a secret save whose step fails
        kind: smoke
        steps:
          - request: {{path: /token/failed-save}}
            expect: {{status: 201}}
            save: {{session_token: token}}
          - request: {{path: /me, headers: {{Authorization: "Bearer {{{{ session_token }}}}"}}}}
      - name: a save bound for Authorization whose step fails
        kind: smoke
        steps:
          - request: {{path: /token/failed-alias}}
            expect: {{status: 201}}
            save: {{t: token}}
          - request: {{path: /me, headers: {{Authorization: "Bearer {{{{ t }}}}"}}}}
      - name: credentials in the query string
        kind: smoke
        request:
          path: /echo?api_key={QUERY_SECRET}
          params: {{X-Amz-Signature: {SIGNATURE_SECRET}}}
        expect: {{json: {{method: POST}}}}
      - name: a metric command printing an inherited password
        kind: metric
        source: cmd
        query: up
        threshold: "< 1"
"""


def test_one_secret_through_every_path_reaches_no_output(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets from ${...}, written in a suite, saved (also by a step that failed), sent in
    a query string, inherited by commands and in a webhook URL: none of them in any output of
    a failing, rolled-back ``-vv -rA -n 2`` run, nor in the files a rollback command gets."""
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    monkeypatch.setenv("ROLLBACK_PASSWORD", INHERITED_SECRET)
    monkeypatch.setenv("SLACK_WEBHOOK_URL", server.url + HOOK_PATH)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    monkeypatch.setenv("GITHUB_OUTPUT", str(project.path / "github-output.txt"))
    project.environments(f"""
        environments:
          test:
            services:
              api:
                url: "{server.url}"
                headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
            metrics:
              cmd: {{type: command, command: 'echo "no db at $ROLLBACK_PASSWORD" >&2; exit 3'}}
            rollback:
              - command: 'cp "$DEPLOYCHECK_FAILURES" failures-copy.json; cat "$DEPLOYCHECK_FAILURES"; env'
            notify:
              - command: 'echo "notifying with $ROLLBACK_PASSWORD"; exit 1'
              - webhook: {{url: "${{SLACK_WEBHOOK_URL}}", json: {{text: "{{{{ verdict }}}}"}}, retries: 0}}
    """)
    project.suite("checks.yaml", EVERY_PATH_CHECKS)
    project.pytester.makepyfile(test_py_secrets=PYTHON_CHECKS)
    result = runpytest(project.pytester, "--env=test", "-vv", "-rA", "-p", "xdist", "-n", "2",
                       "-o", "junit_logging=all", "--junitxml=junit.xml", "--alluredir=allure-results",
                       "--gate-report=gate.json", "--audit-log=audit.jsonl")
    result.assert_outcomes(failed=7, passed=1)
    gate = json.loads((project.path / "gate.json").read_text())
    assert gate["verdict"] == "rolled_back"
    artifacts = {"terminal": result.stdout.str() + result.stderr.str()}
    for name in ("junit.xml", "gate.json", "audit.jsonl", "summary.md", "failures-copy.json",
                 "github-output.txt"):
        if (project.path / name).exists() or name != "github-output.txt":
            artifacts[name] = (project.path / name).read_text()
    allure = sorted((project.path / "allure-results").iterdir())
    assert len(allure) > 10
    for path in allure:
        artifacts[f"allure-results/{path.name}"] = path.read_text(errors="replace")
    # The paths were taken: the outputs show the masked values where the secrets were.
    terminal = artifacts["terminal"]
    for shown in ("stdout saw ***", "stderr saw ***", "log saw ***",
                  "passing stdout saw ***", "no db at ***", "api_key=***",
                  "X-Amz-Signature=***", "::error file=suites/checks.yaml"):
        assert shown in terminal, shown
    assert "PATH=" in gate["rollback"]["actions"][0]["output"]
    assert "stdout saw ***" in artifacts["junit.xml"]  # captured output as system-out
    assert "notifying with ***" in artifacts["gate.json"]
    secrets = [ENV_SECRET, LITERAL_SECRET, INHERITED_SECRET, QUERY_SECRET, SIGNATURE_SECRET,
               HOOK_PATH, *(issued_token(name) for name in ("alias", "failed-save",
                                                             "failed-alias"))]
    encoded = [form for secret in secrets for form in (
        base64.b64encode(secret.encode()).decode(), quote(secret, safe=""))]
    for secret in [PLANTED, *secrets, *encoded]:
        leaks = [name for name, text in artifacts.items() if secret in text]
        assert not leaks, (secret, leaks)


def test_python_check_assertion_and_captured_output_are_redacted(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets=PYTHON_CHECKS)
    result = runpytest(project.pytester, "--env=test", "-vv", "-rA", "-o", "junit_logging=all",
                       "--junitxml=junit.xml")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*assert '***' == 'Bearer nothing'*", "*stdout saw ****",
                                 "*stderr saw ****", "*log saw ****", "*passing stdout saw ****"])
    for text in (result.stdout.str(), (project.path / "junit.xml").read_text()):
        assert ENV_SECRET not in text


def test_secret_header_written_in_a_suite_is_masked_where_the_server_echoes_it(
        project: Project, server: LoopbackServer) -> None:
    project.simple(server.url, EVERY_PATH_CHECKS.split("      - name: a secret save")[0])
    result = runpytest(project.pytester, "--env=test", "-vv")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(['*"X-Api-Key": "***"*', '*"Authorization": "***"*'])
    for secret in (LITERAL_SECRET, issued_token("alias")):
        assert secret not in result.stdout.str()


def test_a_failing_step_does_not_show_what_it_would_save_for_secret_use(
        project: Project, server: LoopbackServer) -> None:
    """Saved under a secret name, or under any name a later step sends as Authorization."""
    checks = EVERY_PATH_CHECKS.split("      - name: credentials")[0]
    project.simple(server.url, "service: api\nchecks:\n      - name: a secret save"
                   + checks.split("      - name: a secret save")[1])
    result = runpytest(project.pytester, "--env=test", "-vv")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(['*"token": "***"*', '*"token": "***"*'])
    for name in ("failed-save", "failed-alias"):
        assert issued_token(name) not in result.stdout.str()


@pytest.mark.parametrize("where", ["metric source", "rollback", "notify", "checklist", "start"])
def test_an_inherited_password_is_masked_in_every_command_output(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        where: str) -> None:
    """The same rule for every command the plugin runs: secret-named variables it inherits."""
    monkeypatch.setenv("DEPLOY_PASSWORD", INHERITED_SECRET)
    prints = 'echo "using $DEPLOY_PASSWORD"; echo "using $DEPLOY_PASSWORD" >&2; exit 3'
    commands = {
        "metric source": f"    metrics:\n      cmd: {{type: command, command: '{prints}'}}\n",
        "rollback": f"    rollback:\n      - command: '{prints}'\n",
        "notify": f"    notify:\n      - command: '{prints}'\n",
        "checklist": "    vars: {}\n",
        # A free port: one that already answers is refused before the command starts.
        "start": f"    start:\n      - {{command: '{prints}', "
                 f"ready: 'http://127.0.0.1:{free_port()}/'}}\n",
    }
    project.environments("environments:\n  test:\n" + commands[where])
    check = {"metric source": "{name: m, kind: metric, source: cmd, query: up, "
                              "threshold: '< 1'}",
             "checklist": f"{{name: c, kind: checklist, command: '{prints}'}}"}.get(
        where, "{name: m, kind: checklist, command: 'exit 1', on_fail: rollback}")
    project.suite("checks.yaml", f"checks:\n  - {check}\n")
    result = runpytest(project.pytester, "--env=test", "-vv", "--gate-report=gate.json")
    output = result.stdout.str() + result.stderr.str()
    gate = (project.path / "gate.json").read_text() if where != "start" else ""
    assert "using ***" in output + gate
    assert INHERITED_SECRET not in output + gate


MISTYPED = "htps://deploy:${DEPLOY_PASSWORD}@api.example.com/${DEPLOY_PASSWORD}"


@pytest.mark.parametrize("args", [["--collect-only"], ["--gate-report=gate.json"],
                                  ["-p", "xdist", "-n", "2", "--gate-report=gate.json"]],
                         ids=["collect-only", "run", "xdist"])
def test_a_collection_error_quoting_a_secret_is_redacted(
        project: Project, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.setenv("DEPLOY_PASSWORD", INHERITED_SECRET)
    project.environments(f'environments:\n  test:\n    services:\n      api: {{url: "{MISTYPED}"}}\n')
    project.suite("checks.yaml", "service: api\nchecks:\n  - {name: h, kind: health, request: {path: /}}\n")
    result = runpytest(project.pytester, "--env=test", "--junitxml=junit.xml", *args)
    texts = [result.stdout.str() + result.stderr.str()]
    for name in ("junit.xml", "gate.json"):
        if (project.path / name).exists():
            texts.append((project.path / name).read_text())
    assert "is not an http(s) URL" in "".join(texts)
    assert "htps://***@api.example.com/***" in "".join(texts)
    for text in texts:
        assert INHERITED_SECRET not in text


@pytest.mark.parametrize(("url", "shown"), [
    ("https://api.example.com/v1?api_key=k3y-value-1&page=2", "https://api.example.com/v1?api_key=***&page=2"),
    ("https://s3.example.com/o?X-Amz-Credential=AKIA1234%2F20260101&X-Amz-Signature=abcdef0123",
     "https://s3.example.com/o?X-Amz-Credential=***&X-Amz-Signature=***"),
    ("https://x.blob.example.net/c?sv=2024&sig=s1gnature%3D%3D", "https://x.blob.example.net/c?sv=2024&sig=***"),
    ("https://example.com/cb?access_token=t0ken-abc", "https://example.com/cb?access_token=***"),
    ("https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX", "https://hooks.slack.com***"),
    ("https://discord.com/api/webhooks/123/tok-en_value", "https://discord.com***"),
    ("https://status.example.com/api/v2/incidents.json?page=2", "https://status.example.com/api/v2/incidents.json?page=2"),
])
def test_credentials_in_urls_beyond_user_info(url: str, shown: str) -> None:
    from pytest_deploycheck.secrets import Redactor

    redactor = Redactor()
    redactor.add_url(url)
    assert redactor.redact(f"GET {url} failed") == f"GET {shown} failed"


def test_a_webhook_variable_is_a_capability_url() -> None:
    from pytest_deploycheck.secrets import Redactor

    redactor = Redactor().with_variables(
        {"SLACK_WEBHOOK_URL": "https://chat.example.com/hooks/abc123def456", "HOME": "/root"})
    assert redactor.redact("posting to https://chat.example.com/hooks/abc123def456") == \
        "posting to https://chat.example.com***"
    assert redactor.redact("/root") == "/root"


def test_a_secret_is_masked_in_its_encoded_forms() -> None:
    from pytest_deploycheck.secrets import Redactor

    secret = 'p@ss/w"rd+12'
    redactor = Redactor()
    redactor.add(secret)
    for form in (quote(secret, safe=""), json.dumps(secret)[1:-1],
                 base64.b64encode(secret.encode()).decode()):
        assert redactor.redact(f"<{form}>") == "<***>"
    short = Redactor()
    short.add("abc")  # too short for its encodings to be told apart from other text
    assert short.redact("YWJj abc") == "YWJj ***"


def test_pieces_of_a_secret_beside_a_cut_are_masked() -> None:
    from pytest_deploycheck.secrets import Redactor

    redactor = Redactor()
    redactor.add(LONG_SECRET)
    assert redactor.redact("'pl4nted-lo...def-pl4nted' == 'x'") == "'***...***' == 'x'"
    assert redactor.redact("…ef-pl4nted\nnext…") == "…***\nnext…"
    # Only beside a cut, and only pieces of 4 characters or more.
    assert redactor.redact("Loading... pl4nted-long, pl4...") == "Loading... pl4nted-long, pl4..."
    redactor.add("Bearer " + LONG_SECRET)
    assert redactor.redact("Authorization: Bearer pl4n...") == "Authorization: ***..."


def test_a_secret_header_a_python_check_sends_is_masked_where_the_server_echoes_it(
        project: Project, server: LoopbackServer) -> None:
    project.environments(f'environments:\n  test:\n    services:\n      api: {{url: "{server.url}"}}\n')
    project.pytester.makepyfile(test_py_secrets=f'''
        import pytest


        @pytest.mark.deploycheck(kind="smoke")
        def test_echo(service):
            r = service("api").get("/echo?access_token={QUERY_SECRET}",
                                   headers={{"X-Api-Key": "{LITERAL_SECRET}"}})
            print(r.text)
            assert "{LITERAL_SECRET}" not in r.text
    ''')
    result = runpytest(project.pytester, "--env=test", "-vv", "-rA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*"X-Api-Key": "***"*', '*access_token=****'])
    for secret in (LITERAL_SECRET, QUERY_SECRET):
        assert secret not in result.stdout.str()


def test_live_log_log_file_and_warnings_of_a_python_check_are_redacted(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        import logging
        import warnings


        def test_logs_and_warns(service):
            seen = service("api").get("/echo").json()["headers"]["Authorization"]
            logging.getLogger("check").warning("live log saw %s", seen)
            warnings.warn(f"warning saw {seen}")
    ''')
    result = runpytest(project.pytester, "--env=test", "-o", "log_cli=true",
                       "--log-file=run.log")
    result.assert_outcomes(passed=1)
    log = (project.path / "run.log").read_text()
    assert "live log saw ***" in result.stdout.str() and "live log saw ***" in log
    result.stdout.fnmatch_lines(["*UserWarning: warning saw ****"])
    assert ENV_SECRET not in result.stdout.str() + log


LONG_SECRET = "pl4nted-long-token-0123456789abcdef-pl4nted"  # both ends hold the planted mark
CUT_CHECKS = '''
    import pytest


    def _seen(service):
        return service("api").get("/echo").json()["headers"]["Authorization"]


    def test_compared(service):
        assert _seen(service) == "Bearer nothing"


    def test_long_local(service):
        text = "q" * 100 + _seen(service) + "w" * 300
        assert not text


    def test_long_reason(service):
        pytest.fail("z" * 290 + _seen(service))


    def test_urls_compared(service):
        # Identical for more than 42 characters on either side of the difference: pytest
        # skips the leading and the trailing ones, cutting through the token each time.
        token = _seen(service).split()[1]
        url = f"https://login.example.com/callback?access_token={token}&state=abc&to=/{token}"
        assert url == url.replace("state=abc", "state=abd")


    def test_body_compared(service):
        # Bytes are shown wrapped over lines of 80 characters: the token split in two.
        assert service("api").get("/echo").content == b"nothing"
'''


@pytest.mark.parametrize("args", [["-l", "-rA"], ["-v", "-p", "xdist", "-n", "2"]],
                         ids=["showlocals", "xdist"])
def test_a_secret_cut_short_is_masked_on_both_sides_of_the_cut(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        args: list[str]) -> None:
    """pytest shortens long values with '...' (assertion operands, locals) and skips the
    identical ends of compared strings before any report exists, and a failure's reason is cut
    to one line of 300 characters: comparisons are explained from masked operands, and the
    pieces of a secret on either side of a cut are masked too."""
    monkeypatch.setenv("API_TOKEN", LONG_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets=CUT_CHECKS)
    result = runpytest(project.pytester, "--env=test", "--junitxml=junit.xml",
                       "--gate-report=gate.json", *args)
    result.assert_outcomes(failed=5)
    texts = [result.stdout.str() + result.stderr.str()]
    texts += [(project.path / name).read_text() for name in ("junit.xml", "gate.json")]
    if "-v" not in args:  # shortened at the default verbosity only
        assert "Skipping 50 identical leading characters" in texts[0]
        assert "***...wwww" in texts[0]  # the local shown by -l
    for text in texts:
        assert "pl4n" not in text  # no piece of 4 characters of either end


def test_a_secret_in_a_response_header_is_masked(project: Project, server: LoopbackServer
                                                 ) -> None:
    """Set-Cookie's value and a credential in a redirect's Location: in the Allure response
    attachment, and wherever the next request or the body shows them."""
    project.simple(server.url, """
        service: api
        checks:
          - name: cookie login
            kind: smoke
            request: {path: /cookie/set}
            expect: {status: 201}
          - name: sign-in callback
            kind: smoke
            request: {path: /redirect/location}
            expect: {status: 200}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        def test_prints_the_headers(service):
            print(dict(service("api").get("/redirect/python").headers))
            assert False
    ''')
    result = runpytest(project.pytester, "--env=test", "-vv", "-rA", "--alluredir=allure")
    result.assert_outcomes(failed=3)
    texts = {"terminal": result.stdout.str()}
    for path in (project.path / "allure").iterdir():
        texts[path.name] = path.read_text(errors="replace")
    attachments = "".join(texts.values())
    assert "set-cookie: ***" in attachments.lower() and "access_token=***" in attachments
    for name in ("set", "location", "python"):
        leaks = [where for where, text in texts.items() if issued_token(name) in text]
        assert not leaks, (name, leaks)


QUOTED_SECRET = 'pl4nted\\back"slash'  # repr() doubles the backslash and leaves the quote


def test_a_secret_is_masked_in_its_repr(project: Project, server: LoopbackServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", QUOTED_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{X-Api-Token: "${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        def test_dict(service):
            seen = service("api").get("/echo").json()["headers"]["X-Api-Token"]
            assert {"seen": seen, "n": 1} == {"seen": "x", "n": 1}
    ''')
    result = runpytest(project.pytester, "--env=test", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*{'seen': '[*][*][*]', 'n': 1}*"])
    assert PLANTED not in result.stdout.str()


SHORT_PASSWORD = "p@s/1\""  # shorter than 8: masked as it is sent, however it is encoded


def test_a_query_credential_is_masked_as_it_was_sent(project: Project,
                                                      server: LoopbackServer) -> None:
    """The client encodes a query written in the path its own way (``@`` and ``/`` kept,
    ``"`` quoted): the server echoes that form back."""
    project.simple(server.url, f"""
        service: api
        checks:
          - name: written in the path
            kind: smoke
            request: {{path: '/echo?api_key=pl4nted@long/key"1&password={SHORT_PASSWORD}'}}
            expect: {{json: {{method: POST}}}}
    """)
    result = runpytest(project.pytester, "--env=test", "-vv")
    result.assert_outcomes(failed=1)
    assert '"path": "/echo?api_key=***&password=***"' in result.stdout.str()
    assert PLANTED not in result.stdout.str()


def test_an_xfail_reason_is_masked(project: Project, server: LoopbackServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest's skipping plugin sets the reason of ``pytest.xfail()`` on the report after the
    plugin's redaction of the report ran: JUnit and the terminal read it."""
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        import pytest


        def test_xfail(service):
            pytest.xfail("known issue, saw " + service("api").get("/echo").json()["headers"]["Authorization"])
    ''')
    result = runpytest(project.pytester, "--env=test", "-vv", "-rA", "--junitxml=junit.xml")
    result.assert_outcomes(xfailed=1)
    junit = (project.path / "junit.xml").read_text()
    result.stdout.fnmatch_lines(["XFAIL *test_xfail* - known issue, saw [*][*][*]"])
    assert 'message="known issue, saw ***"' in junit
    assert PLANTED not in result.stdout.str() + junit


def test_an_action_output_cut_to_its_last_characters_keeps_no_piece_of_a_secret(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollback command's output is kept as its last 4000 characters, cut with '…' before it
    is masked: the end of a secret left after the cut is masked too (gate report, audit log,
    terminal, files handed to later actions)."""
    monkeypatch.setenv("DEPLOY_PASSWORD", LONG_SECRET)
    # The secret, then 3990 characters: the cut falls 10 characters before its end.
    prints = 'printf "%s" "$DEPLOY_PASSWORD"; printf "x%.0s" $(seq 3990)'
    project.environments(f"environments:\n  test:\n    rollback:\n      - command: '{prints}'\n")
    project.suite("checks.yaml", "checks:\n  - {name: c, kind: checklist, command: 'exit 1', "
                                 "on_fail: rollback}\n")
    result = runpytest(project.pytester, "--env=test", "-vv", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl")
    result.assert_outcomes(failed=1)
    gate = json.loads((project.path / "gate.json").read_text())
    assert gate["rollback"]["actions"][0]["output"].startswith("…***xxx")
    for text in (result.stdout.str(), (project.path / "gate.json").read_text(),
                 (project.path / "audit.jsonl").read_text()):
        assert LONG_SECRET[-10:] not in text


@pytest.mark.parametrize("args", [["-v"], ["-v", "-p", "xdist", "-n", "2"]], ids=["run", "xdist"])
def test_a_secret_in_a_test_id_is_masked_in_every_output(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        args: list[str]) -> None:
    """A parameter made from a secret is part of the test's id (pytest shows a plain string
    parameter as it is): the terminal, JUnit, Allure and the gate report show the same id,
    masked."""
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        import os

        import pytest


        @pytest.mark.parametrize("token", [os.environ["API_TOKEN"]])
        def test_token_is_accepted(service, token):
            assert service("api").get("/me", headers={"Authorization": token}).status_code == 200
    ''')
    result = runpytest(project.pytester, "--env=test", "-rA", "--junitxml=junit.xml",
                       "--alluredir=allure", "--gate-report=gate.json", *args)
    result.assert_outcomes(failed=1)
    texts = {"terminal": result.stdout.str() + result.stderr.str()}
    for name in ("junit.xml", "gate.json"):
        texts[name] = (project.path / name).read_text()
    for path in (project.path / "allure").iterdir():
        texts[path.name] = path.name + path.read_text(errors="replace")
    assert 'name="test_token_is_accepted[test-***]"' in texts["junit.xml"]
    assert "FAILED test_py_secrets.py::test_token_is_accepted[test-***]" in texts["terminal"]
    leaks = [name for name, text in texts.items() if PLANTED in text]
    assert not leaks


@pytest.mark.parametrize("module", [
    'raise RuntimeError("cannot start with " + os.environ["API_TOKEN"])',
    'pytest.skip("no access with " + os.environ["API_TOKEN"], allow_module_level=True)',
], ids=["error", "skip"])
def test_a_python_module_failing_or_skipping_at_import_is_masked(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        module: str) -> None:
    """Collected before any check resolved the environment: its secrets are known from the
    session's start, and a skipped module's reason is masked as a failed one's is."""
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets=f"import os\n\nimport pytest\n\n{module}\n\n\n"
                                                "def test_x(service):\n    pass\n")
    result = runpytest(project.pytester, "--env=test", "-rA", "--junitxml=junit.xml")
    texts = [result.stdout.str() + result.stderr.str(), (project.path / "junit.xml").read_text()]
    assert "with ***" in texts[0] and "with ***" in texts[1]
    for text in texts:
        assert PLANTED not in text


def test_values_recorded_straight_into_junit_are_masked(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", ENV_SECRET)
    project.environments(f"""
        environments:
          test:
            services:
              api: {{url: "{server.url}", headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}}}
    """)
    project.pytester.makepyfile(test_py_secrets='''
        def test_records(service, record_testsuite_property, record_xml_attribute):
            seen = service("api").get("/echo").json()["headers"]["Authorization"]
            record_testsuite_property("seen", seen)
            record_xml_attribute("seen", seen)
    ''')
    result = runpytest(project.pytester, "--env=test", "--junitxml=junit.xml",
                       "-o", "junit_family=xunit1",
                       "-W", "ignore::pytest.PytestExperimentalApiWarning")
    result.assert_outcomes(passed=1)
    junit = (project.path / "junit.xml").read_text()
    assert '<property name="seen" value="***" />' in junit and 'seen="***"' in junit
    assert PLANTED not in junit


def test_a_credential_in_a_url_anywhere_in_a_text_is_masked(project: Project,
                                                            server: LoopbackServer) -> None:
    """A signed link in an answer, a runbook link with a token: credential query parameters
    are masked wherever a URL shows them, not only in the URLs the plugin sent."""
    project.simple(server.url, f"""
        service: api
        checks:
          - name: report link
            kind: smoke
            runbook: "https://wiki.example.com/runbook?access_token={issued_token('runbook')}"
            request: {{path: /presigned/body}}
            expect: {{status: 201}}
    """)
    result = runpytest(project.pytester, "--env=test", "-vv", "--junitxml=junit.xml",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    texts = [result.stdout.str()] + [(project.path / name).read_text()
                                     for name in ("junit.xml", "gate.json")]
    assert "X-Amz-Expires=300&X-Amz-Signature=***" in texts[0]
    assert "runbook?access_token=***" in texts[0]
    for text in texts:
        assert PLANTED not in text


def test_a_credential_in_a_url_is_masked_in_a_python_check_when_no_other_secret_is_known(
        project: Project) -> None:
    """With no secret learned yet, the reports of Python checks were left as they were: the
    credential query parameter a check printed and asserted on reached the terminal."""
    project.environments("environments:\n  test:\n    vars: {}\n")
    project.pytester.makepyfile(test_link="""
        import logging, pytest

        @pytest.mark.deploycheck(kind="smoke", on_fail="warn")
        def test_link(deploy_env):
            url = "https://cdn.example.com/f?X-Amz-Signature=pl4nted0sig&token=pl4nted0tok"
            print("fetched", url)
            logging.getLogger("t").warning("fetched %s", url)
            assert url.endswith("nope")
        """)
    result = runpytest(project.pytester, "--env=test", "-rA", "-vv", "--junitxml=junit.xml",
                       "-o", "junit_logging=all", "--gate-report=gate.json")
    result.assert_outcomes(passed=1)
    assert "X-Amz-Signature=***&token=***" in result.stdout.str()
    for text in [result.stdout.str()] + [(project.path / name).read_text()
                                         for name in ("junit.xml", "gate.json")]:
        assert "pl4nted" not in text


MULTILINE_KEY = "-----BEGIN PL4NTED KEY-----\nMIIEpl4ntedQ29udGVudA\nbGluZTI-pl4nted-x\n-----END PL4NTED KEY-----"


def test_a_multiline_secret_shown_line_by_line_is_masked(project: Project,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A key of several lines, printed by a command: its output is shown indented line by
    line, so each line of the secret is masked on its own."""
    monkeypatch.setenv("DEPLOY_KEY", MULTILINE_KEY)
    project.environments("environments:\n  test:\n    vars: {}\n")
    project.suite("checks.yaml", "checks:\n  - {name: c, kind: checklist, "
                                 """command: 'printf "%s\\\\n" "$DEPLOY_KEY"; exit 1'}\n""")
    result = runpytest(project.pytester, "--env=test", "-vv", "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    output = result.stdout.str() + (project.path / "gate.json").read_text()
    assert "    ***" in result.stdout.str()
    assert "pl4nted" not in output.lower()


@pytest.mark.parametrize("tenant", ["tenant-secret-998877", 'ten"ant-secret-998877'])
def test_a_secret_in_a_series_label_is_masked_in_the_chart_and_the_samples(
        project: Project, monkeypatch: pytest.MonkeyPatch, tenant: str) -> None:
    """A metric series named by a label holding a secret (a tenant's token): masked in the
    chart and in the samples CSV, also when the CSV's quoting doubles a '"' in it."""
    import sqlite3

    database = project.path / "metrics.sqlite"
    with sqlite3.connect(database) as connection:
        connection.execute("CREATE TABLE t (tenant TEXT, v REAL)")
        connection.execute("INSERT INTO t VALUES (?, 0.5)", (tenant,))
    monkeypatch.setenv("TENANT_TOKEN", tenant)
    project.environments(f"""\
        environments:
          test:
            vars: {{tenant: "${{TENANT_TOKEN}}"}}
            metrics: {{default: {{type: sql, url: "sqlite:///{database}"}}}}
        """)
    project.suite("m.yaml", """\
        checks:
          - {name: per tenant, kind: metric, query: "SELECT tenant, v FROM t", threshold: "< 0.1"}
        """)
    result = runpytest(project.pytester, "--env=test", "--alluredir=allure-results")
    result.assert_outcomes(failed=1)
    files = list((project.path / "allure-results").iterdir())
    assert any(path.name.endswith(".svg") for path in files)
    for path in files:
        text = path.read_text()
        for form in (tenant, tenant.replace('"', '""'), tenant.replace('"', "&quot;"),
                     tenant[:12]):
            assert form not in text, (path.name, form)
