"""Checks by phase (SPEC §10): ``phase:`` says when a check runs, whatever it does; markers
follow the phase, commands serve any kind, and a pre-deploy check blocks by default."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Project, assert_bad_input, runpytest

# A metric source that is a command: no server needed, and the value is what the check says.
ENVIRONMENTS = """\
    environments:
      prod:
        metrics:
          errors: {type: command, command: "echo {{ query }}"}
        rollback:
          - command: 'echo rolled back >> rollbacks.log'
    """


def rollbacks(project: Project) -> list[str]:
    log = project.path / "rollbacks.log"
    return log.read_text().splitlines() if log.exists() else []


def gate(project: Project) -> dict[str, object]:
    report: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return report


POST_DEPLOY_COMMANDS = """\
    checks:
      - name: rollout finished
        kind: health
        command: "echo 'deployment \\"api\\" successfully rolled out'"
        expect: {stdout: "successfully rolled out"}
      - name: workers answer
        kind: smoke
        command: "echo 'Error: No nodes replied within time constraint' >&2; exit 69"
      - name: backup verified
        kind: checklist
        command: "echo ok"
    """


def test_a_command_after_the_deploy_runs_with_postdeploy_and_rolls_back(
        project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("post.yaml", POST_DEPLOY_COMMANDS)
    result = runpytest(project.pytester, "--env=prod", "-m", "postdeploy",
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines([
        "smoke check 'workers answer' failed in environment 'prod'",
        "*FAILED exit code 69, expected 0",
        "*FAILED *workers answer[[]prod[]]  (suites/post.yaml:6; on_fail: rollback)",
    ])
    assert gate(project)["verdict"] == "rolled_back"
    assert rollbacks(project) == ["rolled back"]


def test_a_command_check_of_the_deploy_is_not_run_before_it(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("post.yaml", POST_DEPLOY_COMMANDS)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy")
    result.assert_outcomes(passed=1, deselected=2)


def test_a_metric_check_in_the_predeploy_phase_blocks_and_never_rolls_back(
        project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("pre.yaml", """\
        checks:
          - name: error rate is low before we start
            kind: metric
            phase: predeploy
            source: errors
            query: "0.05"
            threshold: "< 0.01"
        """)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED *error rate is low before we start[[]prod[]]  "
                                 "(suites/pre.yaml:2; on_fail: block)"])
    report = gate(project)
    assert report["verdict"] == "blocked"
    assert report["rollback"] is None
    assert rollbacks(project) == []


def test_an_explicit_on_fail_is_kept_in_the_predeploy_phase(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("pre.yaml", """\
        checks:
          - {name: live version is broken, kind: smoke, phase: predeploy, on_fail: rollback,
             command: "exit 1"}
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    assert gate(project)["verdict"] == "rolled_back"
    assert rollbacks(project) == ["rolled back"]


def test_a_suite_phase_is_the_default_of_its_checks(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("pre.yaml", """\
        phase: predeploy
        checks:
          - {name: migrations pending are known, kind: smoke, command: "echo 2"}
          - {name: after all, kind: smoke, phase: postdeploy, command: "echo done"}
        """)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*migrations pending are known[[]prod[]] PASSED*"])
    result = runpytest(project.pytester, "--env=prod", "-m", "postdeploy and smoke", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*after all[[]prod[]] PASSED*"])


@pytest.mark.parametrize(("suite", "message"), [
    ("checks:\n  - {name: a, kind: smoke, command: 'true',\n     phase: predeploi}\n",
     "suites/bad.yaml:3: checks[[]0[]].phase: *predeploy*"),
    ("phase: after\nchecks:\n  - {name: a, kind: smoke, command: 'true'}\n",
     "suites/bad.yaml:1: phase: *"),
    ("checks:\n  - name: a\n    kind: health\n    git: {clean: true}\n",
     "suites/bad.yaml:4: checks[[]0[]].git: 'git' does not apply to a health check"),
    ("checks:\n  - name: a\n    kind: metric\n    query: up\n    threshold: '< 1'\n"
     "    command: 'true'\n",
     "suites/bad.yaml:6: checks[[]0[]].command: 'command' does not apply to a metric check"),
    ("checks:\n  - name: a\n    kind: smoke\n    command: 'true'\n    request: {url: 'http://x'}\n",
     "suites/bad.yaml:5: checks[[]0[]].request: a smoke check does one thing, but this one "
     "has 'command' and 'request'; split it into two checks"),
])
def test_bad_phases_and_kinds_name_file_line_and_key(project: Project, suite: str,
                                                      message: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("bad.yaml", suite)
    assert_bad_input(project, f"*{message}*", "--env=prod")


def test_a_python_check_takes_a_phase(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    Path(project.path / "test_live.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.deploycheck(kind='metric', phase='predeploy')\n"
        "def test_queue_is_drained(deploy_env):\n"
        "    assert 12 == 0, 'queue still has 12 jobs'\n\n"
        "@pytest.mark.deploycheck(kind='metric')\n"
        "def test_after(deploy_env):\n"
        "    pass\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_queue_is_drained*on_fail: block*"])
    assert gate(project)["verdict"] == "blocked"
    assert rollbacks(project) == []


def test_a_python_check_with_an_unknown_phase_is_a_collection_error(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    Path(project.path / "test_live.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.deploycheck(kind='smoke', phase='predeploi')\n"
        "def test_typo(deploy_env):\n"
        "    pass\n")
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["test_live.py:3: deploycheck(phase=...): 'predeploi' is not a "
                                 "phase (did you mean 'predeploy'?); one of predeploy, "
                                 "postdeploy, postrollback"])


def test_a_crashed_python_check_under_xdist_blocks_and_never_rolls_back(
        project: Project) -> None:
    """The controller cannot read the marker of a check whose worker died before its setup
    report: it must not guess a post-deploy check that rolls back (-m predeploy chose it)."""
    project.environments(ENVIRONMENTS)
    Path(project.path / "test_live.py").write_text(
        "import os\nimport pytest\n\n@pytest.fixture\ndef dies():\n    os._exit(1)\n\n"
        "@pytest.mark.deploycheck(kind='checklist')\n"
        "def test_backup_verified(deploy_env, dies):\n    pass\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "-p", "xdist",
                       "-n", "2", "--max-worker-restart=0", "--gate-report=gate.json")
    assert result.ret != 0
    report = gate(project)
    assert report["verdict"] == "blocked"
    assert report["rollback"] is None
    assert rollbacks(project) == []
    assert [(c["phase"], c["on_fail"]) for c in report["checks"]] == [  # type: ignore[attr-defined]
        ("predeploy", "block")]


@pytest.mark.parametrize("argument", ["kind=['smoke']", "phase=['predeploy']", "on_fail=1"])
def test_a_marker_argument_of_the_wrong_type_is_a_collection_error(project: Project,
                                                                   argument: str) -> None:
    project.environments(ENVIRONMENTS)
    Path(project.path / "test_live.py").write_text(
        f"import pytest\n\n@pytest.mark.deploycheck({argument})\n"
        "def test_x(deploy_env):\n    pass\n")
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    key = argument.partition("=")[0]
    result.stdout.fnmatch_lines([f"test_live.py:3: deploycheck({key}=...): must be a string, "
                                 f"not *"])
    assert "Traceback" not in result.stdout.str()
