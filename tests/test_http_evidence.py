"""An HTTP check passes only on positive evidence: every element judged, one reading of the JSON,
bodies too deep to walk, JMESPath runtime errors, and requests that cannot mean anything."""

from __future__ import annotations

import re

import pytest

from conftest import Project, runpytest
from pytest_deploycheck.secrets import Redactor
from servers import LoopbackServer


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(pytester, "--env=test", *args)


def literal(text: str) -> str:
    """``text`` for ``fnmatch_lines`` with its brackets meaning themselves (``*`` still matches)."""
    return re.sub(r"[][]", lambda m: f"[{m.group()}]", text)


def check_json(project: Project, server: LoopbackServer, path: str, rule: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: j
            kind: health
            request: {{path: {path}}}
            expect:
              json:
                {rule}
    """)


@pytest.mark.parametrize(("body", "rule", "got"), [
    ("null-component", '"checks.*": healthy', "checks.db is null"),
    ("item-without-status", '"items[*].status": ok', "items[2].status is missing"),
    ("null-number", '"items[*].n": {gte: 1}', "items[1].n is null"),
    ("item-without-status", '"items[*].status": {regex: "^ok$"}', "items[2].status is missing"),
    ("item-without-status", '"items[*].status": {one_of: [ok, fine]}',
     "items[2].status is missing"),
    ("item-without-status", '"items[*].status": {type: string}', "items[2].status is missing"),
    ("item-without-status", '"items[*].status": {ne: down}', "items[2].status is missing"),
    ("item-without-status", '"items[*].status": {exists: true}', "items[2].status is missing"),
    ("item-without-status", '"items[*].status": [ok, ok]', "items[2].status is missing"),
    ("null-component", '"checks.*": {one_of: [healthy]}', "checks.db is null"),
    ("null-component", '"checks | *": healthy', "checks.db is null"),
    ("empty-object", '"*": healthy', "(root) is empty"),
    ("groups", '"groups[].s": ok', "groups[][2].s is missing"),
    ("groups", '"groups[*][*].s": ok', "groups[1][1].s is missing"),
    ("kinds", "\"items[?kind=='db'].s\": up", "items[1].s is missing"),
    ("kinds", "\"items[?kind=='cache'].s\": up", "no element of items passes the filter"),
    ("nested", '"data.items[*].s": up', "data.items[1].s is missing"),
    ("no-items", '"items[*].status": ok', "items is empty"),
    ("no-items", '"checks.*": healthy', "checks is empty"),
    ("no-items", '"items[*].status": {exists: true}', "items is empty"),
    ("empty-object", '"items[*].status": ok', "items is missing"),
    ("empty-object", '"checks.*": {type: string}', "checks is missing"),
    ("empty-object", "status: {ne: down}", "status is missing"),
    ("empty-object", "status: {type: 'null'}", "status is missing"),
    ("empty-object", "status: null", "status is missing"),
    ("ok", '"name.*": x', "name is not an object (a string)"),
    ("ok", '"name[*]": x', "name is not a list (a string)"),
    ("ok", '"items.*": x', "items is not an object (an array)"),
    ("ok", "status.code: 200", "status is not an object (a string)"),
    ("ok", "items[5].id: a", "items[5] is missing"),
    ("ok", "nothing.code: 1", "nothing is null"),
    ("ok", "checks.db.state.code: up", "checks.db is not an object (a string)"),
    ("empty-object", "a.b.c: 1", "a is missing"),
    ("nested", "data.items[1].s: up", "data.items[1].s is missing"),
    ("nested", '"data.items[*].t": 1', "data.items[0].t is missing"),
])
def test_a_missing_or_null_value_fails_and_says_where(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, rule: str, got: str) -> None:
    check_json(project, server, f"/raw/{body}" if body != "ok" else "/ok", rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    expression = rule.split(":")[0].strip("'\"").replace("\\'", "'")
    result.stdout.fnmatch_lines([literal(f"  FAILED json {expression}: expected *, got {got}")])


@pytest.mark.parametrize(("body", "rule"), [
    ("all-null", '"items[*].deleted": null'),               # null where null is expected
    ("all-null", "\"items[*].deleted\": {type: 'null'}"),
    ("all-null", '"items[*].deleted": {one_of: [null, false]}'),
    ("all-null", '"items[*].deleted": {exists: false}'),
    ("no-items", '"items[*].deleted": {exists: false}'),    # nothing there: nothing exists
    ("no-items", '"length(items)": 0'),
    ("kinds", "\"items[?kind=='web'].s\": up"),
    ("item-without-status", '"items[*].status": {contains: ok}'),  # some element is enough
    ("ok", '"items[*].n": {gte: 1}'),
    ("ok", '"checks.*": up'),
    ("ok", "nothing: null"),
])
def test_every_element_passes_on_positive_evidence(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, rule: str) -> None:
    check_json(project, server, f"/raw/{body}" if body != "ok" else "/ok", rule)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize(("body", "rule", "got"), [
    ("dup-status", "status: healthy", 'the key "status" twice at (root)'),
    ("dup-nested", "count: 1", 'the key "db" twice at checks'),
    ("dup-in-list", "count: 1", 'the key "n" twice at items[1]'),
])
def test_duplicate_keys_in_a_body_an_expectation_reads_fail(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, rule: str, got: str) -> None:
    check_json(project, server, f"/raw/{body}", rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal(f"  FAILED json: expected a JSON body, got response JSON "
                                         f"has {got}")])
    # The body is shown as it came, not as one of its readings.
    result.stdout.fnmatch_lines(['    {"status": "unhealthy", "status": "healthy"}'
                                 if body == "dup-status" else "    {*"])


def test_a_secret_saved_from_a_body_with_a_repeated_key_is_masked_in_every_reading(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: login
            kind: smoke
            request: {path: /raw/dup-token}
            save: {api_token: token}
    """)
    result = run(pytester, "-rA")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*FAILED save: expected a JSON body, got response JSON has the '
                                 'key "token" twice at (root)'])
    assert "sess-first" not in result.stdout.str()
    assert "sess-last" not in result.stdout.str()


def test_duplicate_keys_do_not_matter_when_nothing_reads_the_body(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - {name: up, kind: health, request: {path: /raw/dup-status}, expect: {status: 200}}
    """)
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize("expect", [
    "{json: {count: 1}}",
    "{schema: {type: object, properties: {a: {$ref: '#'}}}}",
    "{status: 201}",       # the failure message pretty-prints the body
    "{json: {count: 1}, status: 201}",
])
@pytest.mark.parametrize("body", ["deep", "deep-object"])
def test_a_body_nested_too_deep_fails_the_check_in_one_line(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        expect: str, body: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - {{name: deep, kind: health, request: {{path: /raw/{body}}}, expect: {expect}}}
          - {{name: next, kind: health, request: {{path: /ok}}}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    if "status" in expect:
        result.stdout.fnmatch_lines(["  FAILED status: expected 201, got 200"])
    else:
        result.stdout.fnmatch_lines(["  FAILED json: expected a JSON body, got response JSON "
                                     "nested deeper than 64 levels"])
    assert "RecursionError" not in result.stdout.str()
    assert "Traceback" not in result.stdout.str()


def test_a_body_nested_within_the_limit_is_read(project: Project, server: LoopbackServer,
                                                pytester: pytest.Pytester) -> None:
    check_json(project, server, "/raw/somewhat-deep", "count: 1")
    run(pytester).assert_outcomes(passed=1)


def test_redacting_deeply_nested_data_does_not_recurse_without_end() -> None:
    redactor = Redactor()
    redactor.add("s3cr3t-value")
    deep: object = ["s3cr3t-value"]
    for _ in range(5000):
        deep = [deep]
    text = repr(redactor.redact_data({"details": deep, "token": "s3cr3t-value"}))
    assert "s3cr3t-value" not in text
    assert "nested deeper than" in text


@pytest.mark.parametrize(("rule", "line"), [
    ('"length(missing)": {gte: 1}',
     "  FAILED json length(missing): expected gte 1, got JMESPath error: length() expects "
     "string, array, object, got null"),
    ('"abs(name)": 1', "  FAILED json abs(name): expected 1, got JMESPath error: abs() expects "
     "number, got string"),
    ('"items[*].abs(id)": 1', "  FAILED json items[*].abs(id): expected every element == 1, got "
     "JMESPath error: abs() expects number, got string"),
])
def test_jmespath_runtime_error_fails_in_one_line(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        rule: str, line: str) -> None:
    check_json(project, server, "/ok", rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal(line)])
    assert "Traceback" not in result.stdout.str()
    assert len(result.stdout.lines) < 80


@pytest.mark.parametrize("name", ["n", "api_token"])  # a secret-named save is read twice
def test_jmespath_runtime_error_in_save_fails_in_one_line(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester, name: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: s
            kind: smoke
            request: {{path: /ok}}
            save: {{{name}: "length(missing)"}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  FAILED save {name}: expected a value at length(missing), got "
                                 "JMESPath error: length() expects string, array, object, got null"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(("path", "query", "reason"), [
    ("/ok", "length(missing)", "*FAILED JMESPath error: length() expects string, array, object, "
     "got null"),
    ("/raw/dup-nested", "count", '*FAILED * answered 200 with a body that is not usable: '
     'response JSON has the key "db" twice at checks'),
    ("/raw/deep-object", "count", "*FAILED * answered 200 with a body that is not usable: "
     "response JSON nested deeper than 64 levels"),
])
def test_http_metric_source_fails_on_unreadable_json(
        project: Project, server: LoopbackServer, path: str, query: str, reason: str) -> None:
    project.metric_source(f'{{type: http, url: "{server.url}{path}"}}')
    project.suite("stats.yaml", f"""\
        checks:
          - {{name: q, kind: metric, query: "{query}", threshold: "< 10"}}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal(reason)])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(("values", "rule", "passes", "got"), [
    ("ok/down", "ok", False, "'ok' and 'down'"),
    ("ok/down", "{regex: '^ok$'}", False, "'ok' and 'down'"),
    ("ok/down", "{regex: ok}", False, "'ok' and 'down'"),
    ("ok/ok", "ok", True, ""),
    ("ok/ok", "{regex: '^ok$'}", True, ""),
    ("ok", "ok", True, ""),
])
def test_every_value_of_a_repeated_header_must_match(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        values: str, rule: str, passes: bool, got: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: h
            kind: health
            request: {{path: /headers/{values}}}
            expect:
              headers: {{X-Status: {rule}}}
    """)
    result = run(pytester)
    result.assert_outcomes(passed=int(passes), failed=int(not passes))
    if got:
        result.stdout.fnmatch_lines([f"  FAILED header X-Status: expected every value *, got {got}"])


@pytest.mark.parametrize(("request_", "expect", "line", "key", "message"), [
    ("{path: /ok, method: FETCH}", "{}", 6, "checks[0].request.method",
     "unknown HTTP method 'FETCH'*"),
    ("{path: /ok, method: HAED}", "{}", 6, "checks[0].request.method",
     "unknown HTTP method 'HAED' (did you mean 'HEAD'?)*"),
    ("{path: /ok, method: post}", "{status: 600}", 7, "checks[0].expect.status",
     "600 is not a status*"),
    ("{path: /ok}", "{status: [200, 99]}", 7, "checks[0].expect.status", "99 is not a status*"),
    ("{path: /ok}", "{status: [200, 6xx]}", 7, "checks[0].expect.status", "'6xx' is not a status*"),
    ("{path: /ok}", "{status: true}", 7, "checks[0].expect.status", "True is not *"),
    ("{path: /ok}", "{json: {'length(items, name)': 1}}", 7, "checks[0].expect.json.length(items, name)",
     "bad JMESPath expression 'length(items, name)': length() takes 1 argument, got 2"),
    ("{path: /ok}", "{json: {'lenght(items)': 1}}", 7, "checks[0].expect.json.lenght(items)",
     "bad JMESPath expression 'lenght(items)': unknown function lenght() (did you mean "
     "'length'?)"),
    ("{path: /ok}", "{body: {contains: ''}}", 7, "checks[0].expect.body.contains",
     "contains needs a non-empty text (every body contains '')"),
    ("{path: /ok}", "{json: {name: {contains: ''}}}", 7, "checks[0].expect.json.name",
     "contains needs a non-empty value (every text contains '')"),
    ("{path: /ok}", "{status: 200, json: {}}", 7, "checks[0].expect.json",
     "json needs at least one expression*"),
])
def test_requests_and_statuses_that_cannot_mean_anything_are_collection_errors(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        request_: str, expect: str, line: int, key: str, message: str) -> None:
    project.simple(server.url, f"""
        service: api
        checks:
          - name: c
            kind: health
            request: {request_}
            expect: {expect}
    """)
    result = run(pytester, "--collect-only")
    result.stdout.fnmatch_lines([literal(f"*suites/checks.yaml:{line}: {key}: {message}")])
    assert "Traceback" not in result.stdout.str()


def test_retry_stop_if_status_is_validated(project: Project, server: LoopbackServer,
                                           pytester: pytest.Pytester) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: c
            kind: health
            request: {path: /ok}
            retry:
              attempts: 2
              stop_if: {status: 999}
    """)
    result = run(pytester, "--collect-only")
    result.stdout.fnmatch_lines([literal("*suites/checks.yaml:9: checks[0].retry.stop_if.status: "
                                         "999 is not a status*")])


@pytest.mark.parametrize(("expect", "line"), [
    ("{json: {name: {regex: '{{ pattern }}'}}}", "  FAILED json name: expected regex \"(\", got "
     "bad regex '(': missing ), unterminated subpattern at position 0"),
    ("{headers: {X-Service: {regex: '{{ pattern }}'}}}", "  FAILED header X-Service: expected "
     "/(/, got bad regex '(': missing ), unterminated subpattern at position 0"),
    ("{body: {regex: '{{ pattern }}'}}", "  FAILED body: expected to match /(/, got bad regex "
     "'(': missing ), unterminated subpattern at position 0"),
])
def test_a_regex_that_templating_makes_invalid_fails_in_one_line(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        expect: str, line: str) -> None:
    project.simple(server.url, f"""
        service: api
        vars: {{pattern: "("}}
        checks:
          - {{name: r, kind: health, request: {{path: /ok}}, expect: {expect}}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([literal(line)])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(("expect", "line"), [
    ("{body: {contains: '{{ empty }}'}}",
     "  FAILED body: expected to contain a text, got an empty text to look for"),
    ("{json: {name: {contains: '{{ empty }}'}}}", '  FAILED json name: expected contains "", got "svc"'),
])
def test_a_text_to_look_for_that_renders_empty_fails(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        expect: str, line: str) -> None:
    project.simple(server.url, f"""
        service: api
        vars: {{empty: ""}}
        checks:
          - {{name: e, kind: health, request: {{path: /ok}}, expect: {expect}}}
    """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([line])


@pytest.mark.parametrize(("body", "rule", "constant"), [
    ("nan", "errors: {ne: 5}", "NaN"),
    ("nan", "errors: {lt: 1}", "NaN"),
    ("neg-infinity", '"items[*].n": {lt: 10}', "-Infinity"),
    ("infinity", "latency: {gt: 0}", "Infinity"),
    ("nan", "count: 1", "NaN"),
    ("huge-number", "errors: {ne: 0}", "1e999 (too large for a number)"),
])
def test_nan_or_infinity_in_a_body_is_not_json_and_fails(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, rule: str, constant: str) -> None:
    # JSON has no NaN or Infinity; Python's parser reads them, and NaN compares false with
    # everything, so `ne` and `not lt` rules passed on it.
    check_json(project, server, f"/raw/{body}", rule)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  FAILED json: expected a JSON body, got response JSON has "
                                 f"{constant}, which is not a JSON number"])


def test_the_words_nan_and_infinity_in_a_json_string_are_text(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester) -> None:
    check_json(project, server, "/raw/nan-text", "note: {regex: NaN}")
    run(pytester).assert_outcomes(passed=1)


@pytest.mark.parametrize(("body", "query", "constant"), [
    ("nan", "errors", "NaN"), ("infinity", "latency", "Infinity"), ("nan", "count", "NaN")])
def test_nan_or_infinity_in_an_http_metric_answer_is_a_query_error(
        project: Project, server: LoopbackServer, pytester: pytest.Pytester,
        body: str, query: str, constant: str) -> None:
    project.metric_source(f'{{type: http, url: "{server.url}/raw/{body}", timeout: 1s}}')
    project.suite("m.yaml", f"""\
        checks:
          - {{name: m, kind: metric, query: {query}, threshold: "< 1", no_data: pass}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*answered 200 with a body that is not usable: response JSON "
                                 f"has {constant}, which is not a JSON number*"])
