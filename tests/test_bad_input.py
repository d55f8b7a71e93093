"""Bad input becomes a collection or usage error naming file, line and key, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer

ENVIRONMENTS = """
environments:
  test:
    services:
      api: {url: "http://127.0.0.1:9"}
"""


def collect_error(project: Project, suite: str, *args: str) -> str:
    project.environments(ENVIRONMENTS)
    project.suite("bad.yaml", suite)
    result = runpytest(project.pytester, "--env=test", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "Traceback" not in out and "pytest_deploycheck/" not in out
    return out


@pytest.mark.parametrize(("suite", "message"), [
    ("service: api\nchecks:\n  - {name: a, kind: health\n", "suites/bad.yaml:3: malformed YAML: *"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    exepct: {status: 200}\n    request: {path: /}\n",
     "suites/bad.yaml:5: checks[[]0[]].exepct: unknown key 'exepct' (did you mean 'expect'?)*"),
    ("service: api\nchecks:\n  - name: a\n    kind: healht\n    request: {path: /}\n",
     "suites/bad.yaml:4: checks[[]0[]].kind: 'healht' is not one of health, smoke, metric, checklist "
     "(did you mean 'health'?)"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n    timeout: 5 minutes\n",
     "suites/bad.yaml:6: checks[[]0[]].timeout: '5 minutes' is not a duration*"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n    expect:\n"
     "      body: {regex: '(unclosed'}\n",
     "suites/bad.yaml:7: checks[[]0[]].expect.body.regex: bad regex '(unclosed': *"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n    expect:\n"
     "      json:\n        'items[?': 1\n",
     "suites/bad.yaml:8: checks[[]0[]].expect.json.items[[]?: bad JMESPath expression*"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n    expect:\n"
     "      schema: schemas/missing.json\n",
     "suites/bad.yaml:7: checks[[]0[]].expect.schema: schema file 'schemas/missing.json' not found*"),
    ("service: api\nchecks:\n  - {name: a, kind: health, request: {path: /}}\n"
     "  - {name: a, kind: smoke, request: {path: /}}\n",
     "suites/bad.yaml:4: checks[[]1[]].name: duplicate check name 'a' (first at line 3)"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: 5}\n",
     "suites/bad.yaml:5: checks[[]0[]].request.path: expected string, got integer 5"),
    ("checks:\n  - name: a\n    kind: health\n    request: {path: /, service: web}\n",
     "suites/bad.yaml:4: checks[[]0[]].request.service: unknown service 'web' in environment 'test'; "
     "its services: api"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: '/{{ nope }}'}\n",
     "suites/bad.yaml:5: checks[[]0[]].request.path: template '{{ nope }}' is not defined in "
     "environment 'test'*"),
    ("checks:\n  - name: a\n    kind: health\n    request: {path: /}\n",
     "suites/bad.yaml:4: checks[[]0[]].request.path: no service for this path*"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    request: {path: /}\n    expect:\n"
     "      latency: '< fast'\n",
     "suites/bad.yaml:7: checks[[]0[]].expect.latency: '< fast' is not a threshold*"),
    ("checks:\n  - name: a\n    kind: health\n    service: api\n    request: {path: /}\n    expect:\n"
     "      json: {status: {equals: ok}}\n",
     "suites/bad.yaml:7: checks[[]0[]].expect.json.status: unknown matcher 'equals'*"),
    ("checks:\n  - name: a\n    kind: health\n    service: api\n    request: {path: /}\n"
     "    retry: {interval: 1s}\n",
     "suites/bad.yaml:6: checks[[]0[]].retry: retry needs 'until' or 'attempts'"),
    ("- just a list\n", "suites/bad.yaml:1: a suite file must be a mapping*"),
    ("checks: []\n", "suites/bad.yaml:1: checks: [[][]] should be non-empty"),
    ("service: api\nchecks:\n  - name: a\n    kind: health\n    kind: smoke\n",
     "suites/bad.yaml:5: kind: duplicate key"),
])
def test_suite_error_names_file_line_and_key(project: Project, suite: str, message: str) -> None:
    out = collect_error(project, suite)
    assert any(__import__("fnmatch").fnmatch(line, message) for line in out.splitlines()), out


def test_other_yaml_files_are_never_collected(project: Project, server: LoopbackServer) -> None:
    project.simple(server.url, "service: api\nchecks:\n  - {name: a, kind: health, request: {path: /ok}}\n")
    (project.path / "config.yaml").write_text("not: [a suite\n")
    (project.path / "docs").mkdir()
    (project.path / "docs" / "x.yml").write_text("{{{")
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(("environments", "message"), [
    ("environments:\n  test:\n    extends: base\n  base:\n    extends: test\n",
     "environments.yaml:3: environments.test.extends: extends cycle: test -> base -> test"),
    ("environments:\n  test:\n    extends: nowhere\n",
     "environments.yaml:3: environments.test.extends: extends unknown environment 'nowhere'"),
    ("environments:\n  test:\n    services:\n      api: {url: '${NOT_SET_ANYWHERE}'}\n",
     "environments.yaml:4: environments.test.services.api.url: environment variable "
     "NOT_SET_ANYWHERE is not set"),
    ("environments:\n  test:\n    services:\n      api: {url: '${NOT_SET_ANYWHERE:?ask the "
     "platform team}'}\n",
     "environments.yaml:4: environments.test.services.api.url: environment variable "
     "NOT_SET_ANYWHERE is not set: ask the platform team"),
    ("environments:\n  test:\n    timeout: soon\n",
     "environments.yaml:3: environments.test.timeout: 'soon' is not a duration*"),
    ("environments:\n  test:\n    services:\n      api: {url: 'ftp://x'}\n",
     "environments.yaml:4: environments.test.services.api.url: 'ftp://x' is not an http(s) URL"),
    ("environments:\n  test:\n    servics: {}\n",
     "environments.yaml:3: environments.test.servics: unknown key 'servics' (did you mean "
     "'services'?)*"),
])
def test_environment_errors_name_file_line_and_key(project: Project, environments: str,
                                                   message: str) -> None:
    project.environments(environments)
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    result = runpytest(project.pytester, "--env=test", "--collect-only")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret != 0
    assert any(__import__("fnmatch").fnmatch(line, "*" + message) for line in out.splitlines()), out
    assert "Traceback" not in out


def test_missing_variable_only_matters_for_a_selected_environment(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    project.environments(f"""
        environments:
          test:
            services: {{api: {{url: "{server.url}"}}}}
          production:
            services: {{api: {{url: "${{PROD_URL_NOT_SET}}"}}}}
    """)
    project.suite("s.yaml", "service: api\nchecks:\n  - {name: a, kind: health, request: {path: /ok}}\n")
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    result = runpytest(project.pytester, "--env=production")
    result.stdout.fnmatch_lines(["*environments.yaml:6: environments.production.services.api.url: "
                                 "environment variable PROD_URL_NOT_SET is not set"])


@pytest.mark.parametrize(("given", "meant"), [("tset", "test"), ("prod", "production")])
def test_unknown_environment_is_a_usage_error(project: Project, given: str, meant: str) -> None:
    project.environments(ENVIRONMENTS + "  production: {extends: test}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    result = runpytest(project.pytester, f"--env={given}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--env: environments.yaml: unknown environment '{given}' (did "
                                 f"you mean '{meant}'?); known: *"])


def test_no_env_while_a_suite_is_collected_lists_known_environments(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYCHECK_ENV", raising=False)
    project.environments(ENVIRONMENTS)
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    result = runpytest(project.pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no environment selected, but suites were collected "
                                 "(suites/s.yaml); pass --env NAME or set DEPLOYCHECK_ENV. "
                                 "Known environments: test"])


def test_deploycheck_env_variable_is_the_fallback(project: Project, server: LoopbackServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    project.simple(server.url, "service: api\nchecks:\n  - {name: a, kind: health, request: {path: /ok}}\n")
    monkeypatch.setenv("DEPLOYCHECK_ENV", "test")
    result = runpytest(project.pytester, "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["deploycheck: env=test (environment variable DEPLOYCHECK_ENV)*"])


def test_broken_environments_file_does_not_break_help(project: Project) -> None:
    project.environments("environments: [oops\n")
    result = runpytest(project.pytester, "--help")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*--env=NAME*", "*--environments=PATH*", "*--no-start*"])


def _schemas() -> Iterator[tuple[str, Mapping[str, Any]]]:
    from pytest_deploycheck.actions import ACTION_TYPES
    from pytest_deploycheck.inputs.validation import packaged_schema
    from pytest_deploycheck.metrics import SOURCE_TYPES

    yield "suite", packaged_schema("suite")
    yield "environments", packaged_schema("environments")
    for name, module in ACTION_TYPES.items():
        yield f"action {name}", module.SCHEMA
    for name, source in SOURCE_TYPES.items():
        yield f"metric source {name}", source.SCHEMA


def _keywords(node: Any, names_below: bool = False) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema keyword with the schema object it sits in (property names are not)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not names_below:
                yield key, node
            yield from _keywords(value, not names_below and key in ("properties", "$defs"))
    elif isinstance(node, list):
        for value in node:
            yield from _keywords(value)


@pytest.mark.parametrize(("name", "schema"), list(_schemas()), ids=lambda v: str(v)[:30])
def test_schemas_mean_the_same_to_both_validators(name: str, schema: Mapping[str, Any]) -> None:
    """fastjsonschema (draft 7) says whether a document is valid, jsonschema (draft 2020-12)
    explains why not: a schema may use only what both drafts read alike."""
    from pytest_deploycheck.inputs.validation import SHARED_KEYWORDS

    for keyword, where in _keywords(schema):
        assert keyword in SHARED_KEYWORDS, f"{name}: {keyword}"
        if keyword == "$ref":
            # Draft 7 ignores what stands beside $ref: only a description (an annotation) may.
            assert set(where) <= {"$ref", "description"}, \
                f"{name}: $ref with siblings {sorted(where)}"
        if keyword == "items":
            assert isinstance(where["items"], Mapping), f"{name}: items as a list"


@pytest.mark.parametrize("name", ["suite", "environments"])
def test_generated_validators_are_current_and_used(name: str) -> None:
    """The validators in compiled_schemas/ come from the packaged schemas as they are now (run
    scripts/compile_schemas.py after changing one); a schema they do not match is compiled."""
    from pytest_deploycheck.inputs import validation
    from pytest_deploycheck.inputs.compiled_schemas import environments, suite

    generated = {"suite": suite, "environments": environments}[name]
    text = validation.schema_text(name)
    assert validation._generated(name, text) is generated.validate
    # By module name: pytester's in-process runs may have imported the module anew since.
    assert validation._schema(name).check.__module__ == generated.__name__
    assert validation._generated(name, text + "\n") is None


@pytest.mark.parametrize("name", ["suite", "environments"])
def test_every_key_of_the_published_schemas_says_what_it_means(name: str) -> None:
    """Editors show a key's description as its documentation: every key has one, and the
    schema has the $id an editor's yaml-language-server line names."""
    from pytest_deploycheck.inputs.validation import packaged_schema

    schema = packaged_schema(name)
    assert schema["$id"].endswith(f"/pytest_deploycheck/inputs/schemas/{name}.schema.json")
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.get("properties", {}).items():
                if not (isinstance(value, Mapping) and value.get("description")):
                    missing.append(f"{where}.{key}")
                walk(value, f"{where}.{key}")
            for key, value in node.get("$defs", {}).items():
                walk(value, f"$defs.{key}")
            for key in ("items", "additionalProperties"):
                walk(node.get(key), f"{where}[]")
            for key in ("anyOf", "oneOf"):
                for value in node.get(key, []):
                    walk(value, where)

    walk(schema, "")
    assert missing == []
