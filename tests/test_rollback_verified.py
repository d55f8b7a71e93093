"""Verified rollback (SPEC §10): after the rollback actions, the environment's post-rollback
checks run against what was rolled back to; ``rolled_back`` only when they pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer

ENVIRONMENTS = """\
    environments:
      prod:
        services:
          api: {url: "@URL@"}
        vars: {previous: "1.2.2"}
        rollback:
          - name: redeploy previous
            command: '@ROLLBACK@'
    """

SUITE = """\
    checks:
      - {name: api healthy, kind: health, service: api, request: {path: /status/503}}
      - {name: api answers, kind: smoke, service: api, request: {path: /ok}}
      - name: previous version is live
        kind: health
        phase: postrollback
        command: 'echo verified >> verifications.log; grep -x "{{ previous }}" version.txt'
      - name: api is back
        kind: health
        phase: postrollback
        request: {service: api, path: /ok}
    """


def setup(project: Project, server: LoopbackServer, rollback: str,
          suite: str = SUITE) -> None:
    project.environments(ENVIRONMENTS.replace("@URL@", server.url)
                         .replace("@ROLLBACK@", rollback))
    project.suite("post.yaml", suite)
    (project.path / "version.txt").write_text("1.2.3\n")


def report(project: Project) -> dict[str, object]:
    found: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return found


def verifications(project: Project) -> int:
    log = project.path / "verifications.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_a_rollback_is_verified_once_by_the_post_rollback_checks(
        project: Project, server: LoopbackServer, workers: list[str]) -> None:
    setup(project, server, "echo 1.2.2 > version.txt")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *workers)
    # The post-rollback checks are no items of the run: the gate runs them.
    result.assert_outcomes(passed=1, failed=1)
    found = report(project)
    assert found["verdict"] == "rolled_back"
    verification = found["rollback"]["verification"]  # type: ignore[index]
    assert [(v["id"], v["outcome"]) for v in verification] == [
        ("post::previous version is live[prod]", "passed"), ("post::api is back[prod]", "passed")]
    assert verifications(project) == 1
    result.stdout.fnmatch_lines(["    command 'redeploy previous': succeeded in *",
                                 "    VERIFIED post::previous version is live[[]prod[]]: passed",
                                 "    VERIFIED post::api is back[[]prod[]]: passed"])


def test_a_rollback_whose_checks_fail_is_rollback_failed(project: Project,
                                                         server: LoopbackServer) -> None:
    setup(project, server, "echo rolled back, or so it says")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    found = report(project)
    assert found["verdict"] == "rollback_failed"
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "prod: rollback_failed*",
        "    NOT VERIFIED post::previous version is live[[]prod[]]: failed (exit code 1, "
        "expected 0)"])


def test_without_a_failure_the_post_rollback_checks_do_not_run(
        project: Project, server: LoopbackServer) -> None:
    setup(project, server, "echo 1.2.2 > version.txt", SUITE.replace("/status/503", "/ok"))
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=2, deselected=2)
    assert report(project)["verdict"] == "passed"
    assert verifications(project) == 0


def test_minus_m_postrollback_runs_them_as_items(project: Project,
                                                  server: LoopbackServer) -> None:
    setup(project, server, "true")
    (project.path / "version.txt").write_text("1.2.2\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "postrollback", "-v")
    result.assert_outcomes(passed=2, deselected=2)
    result.stdout.fnmatch_lines(["*previous version is live[[]prod[]] PASSED*"])


def test_a_dry_run_does_not_verify(project: Project, server: LoopbackServer) -> None:
    setup(project, server, "echo 1.2.2 > version.txt")
    result = runpytest(project.pytester, "--env=prod", "--rollback=dry-run",
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    assert report(project)["verdict"] == "rollback_skipped"
    assert verifications(project) == 0


def test_a_python_check_cannot_be_post_rollback(project: Project,
                                                server: LoopbackServer) -> None:
    setup(project, server, "true")
    Path(project.path / "test_live.py").write_text(
        "import pytest\n\n@pytest.mark.deploycheck(kind='health', phase='postrollback')\n"
        "def test_back(deploy_env):\n    pass\n")
    result = runpytest(project.pytester, "--env=prod", "test_live.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["test_live.py:3: deploycheck(phase=...): post-rollback checks "
                                 "are YAML checks*"])


def test_post_rollback_checks_in_a_linked_folder_are_verified(project: Project,
                                                             server: LoopbackServer) -> None:
    setup(project, server, "echo 1.2.2 > version.txt", SUITE.split("      - name: previous")[0])
    shared = project.path / "shared"
    shared.mkdir()
    (shared / "verify.yaml").write_text(
        "checks:\n  - {name: previous version is live, kind: health, phase: postrollback,\n"
        "     command: 'grep -x 1.2.0 version.txt'}\n")
    (project.path / "suites" / "shared").symlink_to(shared)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    assert report(project)["verdict"] == "rollback_failed"


def test_a_post_rollback_check_waits_for_what_comes_back(project: Project,
                                                         server: LoopbackServer) -> None:
    """Its retry sleeps also once the run's checks are done (-n 0, no --rollback-fast)."""
    setup(project, server, "true", SUITE.split("      - name: previous")[0] + """\
      - name: api is back
        kind: health
        phase: postrollback
        request: {service: api, path: /flaky/back, params: {fail: "2"}}
        retry: {attempts: 5, interval: 200ms}
    """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    assert report(project)["verdict"] == "rolled_back"


def test_a_post_rollback_check_skipped_for_no_data_does_not_verify(
        project: Project, server: LoopbackServer) -> None:
    project.environments(ENVIRONMENTS.replace("@URL@", server.url)
                         .replace("@ROLLBACK@", "true").rstrip(" ") + "        metrics:\n"
                         "          none: {type: command, command: 'test -n {{ query }}'}\n")
    project.suite("post.yaml", SUITE.split("      - name: previous")[0] + """\
      - {name: errors back to normal, kind: metric, phase: postrollback, source: none,
         query: "errors", threshold: "< 1", no_data: skip}
    """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    assert report(project)["verdict"] == "rollback_failed"
