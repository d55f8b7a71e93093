"""Staged rollouts (SPEC §10): each stage of an environment's rollout is an item, in order; a
stage runs its action, waits, runs its checks; a failing stage rolls back and stops the rest."""

from __future__ import annotations

import json

import pytest

from conftest import Project, assert_bad_input, runpytest

ENVIRONMENTS = """\
    environments:
      prod:
        rollout:
          stages:
            - {name: 1%, action: {command: "echo 1 > percent; echo stage 1% >> rollout.log"},
               markers: canary}
            - {name: 5%, action: {command: "echo 5 > percent; echo stage 5% >> rollout.log"},
               wait: 300ms, markers: [canary]}
            - {name: 25%, action: {command: "echo 25 > percent; echo stage 25% >> rollout.log"},
               markers: canary}
            - {name: 100%, action: {command: "echo 100 > percent; echo stage 100% >> rollout.log"}}
        rollback:
          - command: "echo 0 > percent; echo rollback >> rollout.log"
    """
# The new version copes with up to 5% of the traffic, then errors climb.
SUITE = """\
    checks:
      - name: error rate at this share of traffic
        kind: smoke
        marks: [canary]
        command: 'test "$(cat percent)" -le @LIMIT@'
      - {name: api up, kind: health, command: "true"}
    """


def setup(project: Project, limit: int = 5) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("canary.yaml", SUITE.replace("@LIMIT@", str(limit)))


def log(project: Project) -> list[str]:
    path = project.path / "rollout.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_a_failing_stage_rolls_back_and_stops_the_rollout(project: Project,
                                                         workers: list[str]) -> None:
    setup(project)
    result = runpytest(project.pytester, "--env=prod", "-m", "rollout", "-rs",
                       "--gate-report=gate.json", *workers)
    result.assert_outcomes(passed=2, failed=1, skipped=1, deselected=0 if workers else 2)
    assert log(project) == ["stage 1%", "stage 5%", "stage 25%", "rollback"]
    assert (project.path / "percent").read_text().strip() == "0"
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    outcomes = [(c["name"], c["outcome"]) for c in report["checks"]]
    assert outcomes == [("1%", "passed"), ("5%", "passed"), ("25%", "failed"),
                        ("100%", "skipped")]
    assert report["rollback"]["triggered_by"] == ["rollout::25%[prod]"]
    result.stdout.fnmatch_lines_random([
        "rollout stage '25%' failed in environment 'prod'",
        "  check error rate at this share of traffic[[]prod[]]: failed (exit code 1, "
        "expected 0)",
        "SKIPPED * stage '25%' failed: the rollout stopped there"])


def test_a_rollout_that_holds_goes_to_the_end(project: Project) -> None:
    setup(project, limit=100)
    result = runpytest(project.pytester, "--env=prod", "-m", "rollout",
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=4, deselected=2)
    assert log(project) == ["stage 1%", "stage 5%", "stage 25%", "stage 100%"]
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "passed"
    waited = next(c for c in report["checks"] if c["name"] == "5%")
    assert waited["duration"] >= 0.3


def test_a_gate_run_never_moves_traffic(project: Project) -> None:
    setup(project)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1, failed=1)  # the canary check alone: no percent file
    assert not [line for line in log(project) if line.startswith("stage")]


def test_markers_that_select_no_check_fail_the_stage(project: Project) -> None:
    """A typo in markers must not let the rollout go on without evidence."""
    project.environments(ENVIRONMENTS.replace("markers: canary}", "markers: canery}", 1))
    project.suite("canary.yaml", SUITE.replace("@LIMIT@", "100"))
    result = runpytest(project.pytester, "--env=prod", "-m", "rollout",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1, skipped=3, deselected=2)
    result.stdout.fnmatch_lines(["*stage '1%': its markers (canery) select no post-deploy "
                                 "check in environment 'prod'*"])
    assert log(project) == ["rollback"]  # the stage moved nothing


def test_a_failing_stage_action_fails_the_stage(project: Project) -> None:
    project.environments(ENVIRONMENTS.replace('echo 5 > percent; echo stage 5% >> rollout.log',
                                              'exit 7'))
    project.suite("canary.yaml", SUITE.replace("@LIMIT@", "100"))
    result = runpytest(project.pytester, "--env=prod", "-m", "rollout")
    result.assert_outcomes(passed=1, failed=1, skipped=2, deselected=2)
    result.stdout.fnmatch_lines(["*stage '5%': its action failed: exit code 7*"])
    assert log(project) == ["stage 1%", "rollback"]


@pytest.mark.parametrize(("stages", "message"), [
    ("      - {name: 1%}\n",
     "environments.yaml:5: environments.prod.rollout.stages[[]0[]]: *action*"),
    ("      - {name: 1%, action: {command: 'true'}}\n      - {name: 1%, action: {command: 'true'}}\n",
     "environments.yaml:6: environments.prod.rollout.stages[[]1[]].name: two stages are named "
     "'1%'"),
    ("      - {name: 1%, action: {comand: 'true'}}\n",
     "environments.yaml:5: environments.prod.rollout.stages[[]0[]].action: an action needs "
     "exactly one of command, webhook, python; found 'comand' (did you mean 'command'?)"),
    ("      - {name: 1%, action: {command: 'true'}, wait: soon}\n",
     "environments.yaml:5: environments.prod.rollout.stages[[]0[]].wait: 'soon' is not a "
     "duration*"),
])
def test_bad_stages_name_file_line_and_key(project: Project, stages: str, message: str) -> None:
    project.environments("environments:\n  prod:\n    rollout:\n      stages:\n" + stages)
    project.suite("s.yaml", "checks:\n  - {name: a, kind: smoke, command: 'true'}\n")
    assert_bad_input(project, message, "--env=prod", "-m", "rollout")
