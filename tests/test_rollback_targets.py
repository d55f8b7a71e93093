"""Rollback that fits what failed (SPEC §10): per-service actions, the veto of a post-deploy
check that blocks, and fallback actions; against a loopback server and real commands."""

from __future__ import annotations

import json

import pytest

from conftest import Project, assert_bad_input, runpytest
from servers import LoopbackServer

ENVIRONMENTS = """\
    environments:
      prod:
        services:
          api: {url: "@URL@"}
          web: {url: "@URL@"}
        metrics:
          numbers: {type: command, command: "echo {{ query }}"}
        rollback:
          - {name: undo api, service: api, command: 'echo api >> rollbacks.log'}
          - {name: undo web, service: web, command: 'echo web >> rollbacks.log'}
          - {name: tell the team, command: 'echo all >> rollbacks.log'}
    """


def setup(project: Project, server: LoopbackServer, suite: str,
          environments: str = ENVIRONMENTS) -> None:
    project.environments(environments.replace("@URL@", server.url))
    project.suite("post.yaml", suite)


def rollbacks(project: Project) -> list[str]:
    log = project.path / "rollbacks.log"
    return log.read_text().splitlines() if log.exists() else []


def report(project: Project) -> dict[str, object]:
    found: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_a_failed_check_rolls_back_the_services_it_called(
        project: Project, server: LoopbackServer, workers: list[str]) -> None:
    setup(project, server, """\
        checks:
          - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
          - {name: web healthy, kind: health, service: web, request: {path: /ok}}
          - {name: api lists, kind: smoke, request: {service: api, path: /status/500}}
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *workers)
    result.assert_outcomes(passed=1, failed=2)
    assert rollbacks(project) == ["api", "all"]
    rollback = report(project)["rollback"]
    assert isinstance(rollback, dict)
    assert rollback["services"] == ["api"]
    assert [(a["name"], a["outcome"]) for a in rollback["actions"]] == [
        ("undo api", "succeeded"), ("undo web", "skipped"), ("tell the team", "succeeded")]
    assert report(project)["verdict"] == "rolled_back"
    result.stdout.fnmatch_lines([
        "  ROLLBACK triggered by * (services: api)",
        "    command 'undo api': succeeded in *",
        "    command 'undo web': skipped (no failed check called service 'web')"])


@pytest.mark.parametrize(("service", "expected"), [
    ("", ["api", "web", "all"]),  # a metric of the whole environment: everything
    ("service: web,", ["web", "all"]),  # a metric check about one service
])
def test_a_metric_check_rolls_back_its_service_or_everything(
        project: Project, server: LoopbackServer, service: str, expected: list[str]) -> None:
    setup(project, server, f"""\
        checks:
          - {{name: error rate, kind: metric, {service} source: numbers, query: "0.2",
             threshold: "< 0.01"}}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(failed=1)
    assert rollbacks(project) == expected


def test_a_post_deploy_check_that_blocks_vetoes_the_rollback(
        project: Project, server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
          - name: migration applied
            kind: smoke
            on_fail: block              # migration failed: do NOT roll back the app
            command: "echo 'migration 0042 failed' >&2; exit 1"
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl")
    result.assert_outcomes(failed=2)
    assert rollbacks(project) == []
    found = report(project)
    assert found["verdict"] == "blocked"
    assert found["rollback"] == {"mode": "auto", "triggered_by": ["post::api healthy[prod]"],
                                 "actions": [], "vetoed_by": ["post::migration applied[prod]"]}
    result.stdout.fnmatch_lines(["  ROLLBACK vetoed by post::migration applied[[]prod[]] "
                                 "(on_fail: block after the deploy); triggered by "
                                 "post::api healthy[[]prod[]]"])
    events = [json.loads(line) for line in (project.path / "audit.jsonl").read_text().splitlines()]
    assert [e.get("vetoed_by") for e in events if e["event"] == "rollback_decision"] == [
        ["post::migration applied[prod]"]]


def test_a_pre_deploy_check_that_blocks_does_not_veto(project: Project,
                                                     server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
          - {name: tree clean, kind: checklist, command: "exit 1"}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(failed=2)
    assert rollbacks(project) == ["api", "all"]


FALLBACK = """\
    environments:
      prod:
        services:
          api: {url: "@URL@"}
        rollback:
          - name: railway rollback
            command: 'echo railway >> rollbacks.log; exit @EXIT@'
            fallback:
              - {name: redeploy previous tag, command: 'echo redeploy >> rollbacks.log; exit @FB@'}
              - {name: maintenance mode, command: 'echo maintenance >> rollbacks.log'}
          - {name: tell the team, command: 'echo all >> rollbacks.log'}
    """
FAILING = """\
    checks:
      - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
    """


@pytest.mark.parametrize(("primary", "fallback", "log", "verdict"), [
    ("0", "0", ["railway", "all"], "rolled_back"),  # the fallback is not needed
    ("1", "0", ["railway", "redeploy", "maintenance", "all"], "rolled_back"),
    ("1", "1", ["railway", "redeploy"], "rollback_failed"),
])
def test_a_failed_action_runs_its_fallback(project: Project, server: LoopbackServer,
                                           primary: str, fallback: str, log: list[str],
                                           verdict: str) -> None:
    setup(project, server, FAILING,
          FALLBACK.replace("@EXIT@", primary).replace("@FB@", fallback))
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    assert rollbacks(project) == log
    assert report(project)["verdict"] == verdict
    if primary == "1" and fallback == "0":
        result.stdout.fnmatch_lines([
            "    command 'railway rollback': failed (recovered by its fallback) in *",
            "      fallback command 'redeploy previous tag': succeeded in *",
            "      fallback command 'maintenance mode': succeeded in *",
            "    command 'tell the team': succeeded in *"])
        actions = report(project)["rollback"]["actions"]  # type: ignore[index]
        assert [a.get("fallback_for", "") for a in actions] == [
            "", "railway rollback", "railway rollback", ""]


@pytest.mark.parametrize(("rollback", "message"), [
    ("rollback:\n      - {service: wbe, command: 'true'}",
     "environments.yaml:7: environments.prod.rollback[[]0[]].service: unknown service 'wbe' "
     "(did you mean 'web'?); the environment's services: api, web"),
    ("notify:\n      - {command: 'true', fallback: [{command: 'true'}]}",
     "environments.yaml:7: environments.prod.notify[[]0[]].fallback: 'fallback' belongs to "
     "rollback actions"),
    ("rollback:\n      - {command: 'true', fallback: [{command: 'true', fallback: "
     "[{command: 'true'}]}]}",
     "environments.yaml:7: environments.prod.rollback[[]0[]].fallback[[]0[]].fallback: a "
     "fallback action has no fallback of its own*"),
    ("rollback:\n      - {command: 'true', fallback: [{service: api, command: 'true'}]}",
     "environments.yaml:7: environments.prod.rollback[[]0[]].fallback[[]0[]].service: a "
     "fallback runs for the action it belongs to*"),
])
def test_bad_rollback_targets_name_file_line_and_key(project: Project, rollback: str,
                                                     message: str) -> None:
    project.environments("environments:\n  prod:\n    services:\n"
                         "      api: {url: 'http://127.0.0.1:9'}\n"
                         "      web: {url: 'http://127.0.0.1:9'}\n"
                         f"    {rollback}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    assert_bad_input(project, message, "--env=prod")


def test_a_metric_check_naming_an_unknown_service_is_a_collection_error(
        project: Project, server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - name: error rate
            kind: metric
            service: wbe
            source: numbers
            query: "0"
            threshold: "< 1"
        """)
    assert_bad_input(project, "suites/post.yaml:4: checks[[]0[]].service: unknown service "
                              "'wbe' in environment 'prod' (did you mean 'web'?); its "
                              "services: api, web", "--env=prod")


def test_a_check_of_an_absolute_url_rolls_back_every_service(project: Project,
                                                             server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - name: login flow
            kind: smoke
            steps:
              - request: {service: api, path: /ok}
              - request: {url: "@URL@/status/503"}
        """.replace("@URL@", server.url))
    runpytest(project.pytester, "--env=prod").assert_outcomes(failed=1)
    assert rollbacks(project) == ["api", "web", "all"]


def test_a_service_failing_after_a_fast_rollback_started_is_rolled_back_too(
        project: Project, server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - {name: api ok, kind: smoke, service: api, command: "exit 1"}
          - {name: web ok, kind: smoke, service: web, command: "sleep 0.3; exit 1"}
        """)
    result = runpytest(project.pytester, "--env=prod", "--rollback-fast", "-p", "xdist",
                       "-n", "2", "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    found = report(project)
    failed = {c["name"] for c in found["checks"] if c["outcome"] == "failed"}  # type: ignore[attr-defined]
    expected = ["api", *(["web"] if "web ok" in failed else []), "all"]
    assert sorted(rollbacks(project)) == sorted(expected)
    assert found["verdict"] == "rolled_back"
    outcomes = {a["name"]: a["outcome"] for a in found["rollback"]["actions"]}  # type: ignore[index]
    assert outcomes["undo web"] == ("succeeded" if "web ok" in failed else "skipped")


def test_a_crash_whose_policy_was_guessed_never_vetoes(project: Project,
                                                      server: LoopbackServer) -> None:
    setup(project, server, """\
        checks:
          - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
        """)
    (project.path / "test_flow.py").write_text(
        "import os\nimport pytest\n\n@pytest.fixture\ndef dies():\n    os._exit(1)\n\n"
        "@pytest.mark.deploycheck(kind='smoke')\ndef test_checkout(deploy_env, dies):\n"
        "    pass\n")
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2",
                       "--max-worker-restart=1", "--gate-report=gate.json")
    assert result.ret != 0
    assert "vetoed_by" not in report(project)["rollback"]  # type: ignore[operator]
    assert rollbacks(project) == ["api", "all"]
