"""The deploy as a sequence (SPEC §10): announcements when a phase starts, notifications that
filter by phase and verdict, and deploy facts and measured values in their templates."""

from __future__ import annotations

import json

import pytest

from conftest import Project, assert_bad_input, runpytest
from servers import LoopbackServer

ENVIRONMENTS = """\
    environments:
      prod:
        vars: {service: api}
        metrics:
          errors: {type: command, command: "echo {{ query }}"}
        announce:
          - name: status page in progress
            command: >-
              echo "start {{ phase }}: deploying {{ vars.service }} {{ deploy.version }},
              commit {{ deploy.short_commit }}, by {{ deploy.actor }}" >> events.log
            when: {phase: predeploy}
        notify:
          - name: deployed
            command: >-
              echo "deployed {{ deploy.version }} in {{ phase }}:
              error rate {{ checks['error rate under 1%'].value }}
              (baseline '{{ checks['error rate under 1%'].baseline }}')" >> events.log
            when: {phase: postdeploy, verdict: [passed]}
          - name: blocked
            command: 'echo "blocked {{ failed_count }}" >> events.log'
            when: [blocked]
          - webhook: {url: "@URL@/webhook/200/hook", json: {text: "{{ verdict }} {{ deploy.id }}"}}
            when: {verdict: passed}
    """

SUITES = {
    "pre.yaml": """\
        checks:
          - {name: backup verified, kind: checklist, command: "echo ok"}
          - {name: ci green, kind: checklist, command: "echo ok"}
          - {name: queue drained, kind: metric, phase: predeploy, source: errors, query: "0",
             threshold: "== 0"}
        """,
    "post.yaml": """\
        checks:
          - {name: error rate under 1%, kind: metric, source: errors, query: "0.002",
             threshold: "< 0.01"}
          - {name: rollout finished, kind: health, command: "echo done"}
        """,
}

FACTS = ["--deploy-version=1.2.3", "--deploy-commit=abc1234def5678", "--deploy-id=run-77"]


@pytest.fixture
def lifecycle(project: Project, server: LoopbackServer,
              monkeypatch: pytest.MonkeyPatch) -> Project:
    project.environments(ENVIRONMENTS.replace("@URL@", server.url))
    for name, text in SUITES.items():
        project.suite(name, text)
    monkeypatch.setenv("DEPLOY_ACTOR", "alice")
    return project


def events(project: Project) -> list[str]:
    log = project.path / "events.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_a_predeploy_run_announces_once_and_does_not_say_deployed(
        lifecycle: Project, server: LoopbackServer, workers: list[str]) -> None:
    before = len(server.bodies)
    result = runpytest(lifecycle.pytester, "--env=prod", "-m", "predeploy", *FACTS,
                       "--gate-report=gate.json", *workers)
    # xdist's controller does not count what its workers deselected.
    result.assert_outcomes(passed=3, deselected=0 if workers else 2)
    assert events(lifecycle) == [
        "start predeploy: deploying api 1.2.3, commit abc1234, by alice"]
    # The webhook wants any phase with verdict passed: it is told once.
    posted = [json.loads(body) for path, body in server.bodies[before:] if path == "/webhook/200/hook"]
    assert posted == [{"text": "passed run-77"}]
    report = json.loads((lifecycle.path / "gate.json").read_text())
    assert report["phase"] == "predeploy"
    assert report["deploy"]["version"] == "1.2.3"
    assert report["deploy"]["id"] == "run-77"
    assert [a["name"] for a in report["announce"]] == ["status page in progress"]


def test_a_postdeploy_run_says_deployed_with_the_measured_value(lifecycle: Project) -> None:
    result = runpytest(lifecycle.pytester, "--env=prod", "-m", "postdeploy", *FACTS,
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=2, deselected=3)
    assert events(lifecycle) == [
        "deployed 1.2.3 in postdeploy: error rate 0.002 (baseline '')"]
    report = json.loads((lifecycle.path / "gate.json").read_text())
    assert report["phase"] == "postdeploy"
    values = {c["name"]: c.get("value") for c in report["checks"]}
    assert values == {"error rate under 1%": 0.002, "rollout finished": None}


def test_a_blocked_predeploy_run_tells_only_what_wants_blocked(lifecycle: Project) -> None:
    lifecycle.suite("pre.yaml", SUITES["pre.yaml"].replace('command: "echo ok"}',
                                                           'command: "exit 3"}', 1))
    result = runpytest(lifecycle.pytester, "--env=prod", "-m", "predeploy", *FACTS)
    result.assert_outcomes(passed=2, failed=1, deselected=2)
    assert events(lifecycle) == [
        "start predeploy: deploying api 1.2.3, commit abc1234, by alice", "blocked 1"]


def test_a_notify_naming_a_check_that_did_not_run_still_goes_out(lifecycle: Project) -> None:
    result = runpytest(lifecycle.pytester, "--env=prod", "-k", "rollout", *FACTS)
    result.assert_outcomes(passed=1, deselected=4)
    assert events(lifecycle) == ["deployed 1.2.3 in postdeploy: error rate  (baseline '')"]


def test_the_commit_defaults_to_the_ci_then_git(lifecycle: Project,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_SHA", "feedfacecafe")
    monkeypatch.setenv("DEPLOY_VERSION", "2.0.0")
    monkeypatch.setenv("GITHUB_RUN_ID", "4711")
    runpytest(lifecycle.pytester, "--env=prod", "-m", "predeploy", "--gate-report=g.json")
    report = json.loads((lifecycle.path / "g.json").read_text())
    assert {k: report["deploy"][k] for k in ("commit", "version", "id", "actor")} == {
        "commit": "feedfacecafe", "version": "2.0.0", "id": "4711", "actor": "alice"}
    assert events(lifecycle)[0] == "start predeploy: deploying api 2.0.0, commit feedfac, " \
                                   "by alice"


@pytest.mark.parametrize(("entry", "message"), [
    ("notify:\n      - {command: 'true', when: {phase: predeploi}}",
     "environments.yaml:6: environments.prod.notify[[]0[]].when.phase: unknown phase "
     "'predeploi' (did you mean 'predeploy'?); phases: predeploy, postdeploy, postrollback"),
    ("notify:\n      - {command: 'true', when: {verdict: [passd]}}",
     "environments.yaml:6: environments.prod.notify[[]0[]].when.verdict: unknown verdict "
     "'passd' (did you mean 'passed'?)*"),
    ("announce:\n      - {command: 'true', when: {verdict: passed}}",
     "environments.yaml:6: environments.prod.announce[[]0[]].when.verdict: unknown key "
     "'verdict'*; when takes phase"),
    ("announce:\n      - {command: 'echo {{ deploy.verison }}'}",
     "environments.yaml:6: environments.prod.announce[[]0[]].command: template "
     "'{{ deploy.verison }}': the deploy has no fact 'verison' (did you mean 'version'?)*"),
    ("notify:\n      - {command: 'true', when: {phse: postdeploy}}",
     "environments.yaml:6: environments.prod.notify[[]0[]].when.phse: unknown key 'phse' "
     "(did you mean 'phase'?)*"),
])
def test_bad_announce_and_notify_entries_name_file_line_and_key(
        project: Project, entry: str, message: str) -> None:
    project.environments("environments:\n  prod:\n    vars: {a: 1}\n    services: {}\n"
                         f"    {entry}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    assert_bad_input(project, message, "--env=prod")


ORDERED = """\
    environments:
      prod:
        announce:
          - {command: 'echo "announce {{ phase }}" >> order.log', when: {phase: predeploy}}
        notify:
          - {command: 'echo "notify {{ phase }} {{ verdict }}" >> order.log',
             when: {phase: predeploy}}
    """


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_the_announcement_goes_out_before_any_check_of_its_phase_runs(
        project: Project, workers: list[str]) -> None:
    project.environments(ORDERED)
    project.suite("pre.yaml", "checks:\n" + "".join(
        f"  - {{name: c{n}, kind: checklist, command: 'echo c{n} >> order.log'}}\n"
        for n in range(4)))
    runpytest(project.pytester, "--env=prod", *workers).assert_outcomes(passed=4)
    lines = (project.path / "order.log").read_text().splitlines()
    assert lines[0] == "announce predeploy"
    assert sorted(lines[1:5]) == ["c0", "c1", "c2", "c3"]
    assert lines[5:] == ["notify predeploy passed"]


def test_planning_runs_announce_and_notify_nothing(project: Project) -> None:
    project.environments(ORDERED)
    project.suite("pre.yaml", "checks:\n  - {name: c, kind: checklist, command: 'true'}\n")
    for option in ("--setup-plan", "--setup-only", "--collect-only"):
        runpytest(project.pytester, "--env=prod", option)
    assert not (project.path / "order.log").exists()


def test_a_gate_blocked_at_collection_tells_the_phase_minus_m_selected(
        project: Project) -> None:
    project.environments(ORDERED)
    project.suite("pre.yaml", "checks:\n  - {name: c, kind: checklist, command: 'echo {{ nope }}'}\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy")
    assert result.ret != 0
    assert (project.path / "order.log").read_text().splitlines() == ["notify predeploy blocked"]


@pytest.mark.parametrize(("command", "message"), [
    ("echo {{ vars.servce }}", "template '{{ vars.servce }}': 'servce' is not defined in vars "
                               "(did you mean 'service'?); defined: service"),
    ("echo {{ checks['error rate'].valeu }}",
     "template '{{ checks['error rate'].valeu }}': write checks['check name'].FIELD, FIELD one "
     "of value, baseline, outcome, message, id (did you mean 'value'?)"),
    ("echo {{ phase.x }}", "template '{{ phase.x }}': 'phase' is a single value, with no 'x'"),
    ("echo {{ service.name }}", "template '{{ service.name }}': 'service' is a single value, "
                                "with no 'name'"),
])
def test_a_misspelt_name_in_a_rollback_command_is_a_collection_error(
        project: Project, command: str, message: str) -> None:
    project.environments("environments:\n  prod:\n    vars: {service: api}\n"
                         f"    rollback:\n      - {{command: \"{command}\"}}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    assert_bad_input(project, f"environments.yaml:5: environments.prod.rollback[[]0[]]"
                                 f".command: {message.replace('[', '[[]')}", "--env=prod")


def test_what_a_python_action_prints_is_masked_and_kept(project: Project,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", "sekritvalue12345")
    project.environments("environments:\n  prod:\n    vars: {token: '${API_TOKEN}'}\n"
                         "    announce:\n      - {python: 'hooks:announce'}\n")
    (project.path / "hooks.py").write_text(
        "import os, sys\n\ndef announce(env, failures):\n"
        "    print('token', os.environ['API_TOKEN'])\n"
        "    print('err', os.environ['API_TOKEN'], file=sys.stderr)\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    result = runpytest(project.pytester, "--env=prod", "-vv", "-rA", "--gate-report=gate.json")
    result.assert_outcomes(passed=1)
    assert "sekritvalue12345" not in result.stdout.str() + result.stderr.str()
    report = json.loads((project.path / "gate.json").read_text())
    assert report["announce"][0]["output"] == "token ***\nerr ***\n"


@pytest.mark.parametrize("when", ["{phase: []}", "{verdict: []}", "[]"])
def test_an_empty_when_is_a_collection_error(project: Project, when: str) -> None:
    project.environments("environments:\n  prod:\n    notify:\n"
                         f"      - {{command: 'true', when: {when}}}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    assert_bad_input(project, "environments.prod.notify[[]0[]].when*: an empty list of "
                              "*never matches*", "--env=prod")
