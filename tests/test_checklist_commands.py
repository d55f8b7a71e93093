"""Checklist ``command`` entries run real commands: exit codes, output, timeouts, big output."""

from __future__ import annotations

import subprocess
import time

import pytest

from conftest import Project, runpytest

ENVIRONMENTS = """\
    environments:
      prod:
        vars: {release: "1.2.3 final"}
    """


def checklist(project: Project, body: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("pre.yaml", "checks:\n" + body)


def test_a_command_that_exits_0_and_prints_the_expected_text_passes(project: Project) -> None:
    checklist(project, """\
          - name: backup verified
            kind: checklist
            command: "echo 'Backup verified: db-2026-11-22'"
            expect: {exit_code: 0, stdout: "^Backup verified"}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_a_failing_command_shows_its_exit_code_and_output(project: Project) -> None:
    checklist(project, """\
          - name: backup verified
            kind: checklist
            command: "echo checking; echo 'no backup since 2026-11-20' >&2; exit 3"
            runbook: https://wiki.example.com/backups
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "checklist check 'backup verified' failed in environment 'prod'",
        "  at suites/pre.yaml:2",
        "  runbook: https://wiki.example.com/backups",
        "",
        "  command: echo checking; echo 'no backup since 2026-11-20' >&2; exit 3",
        "  cwd: *",
        "  -> exit code 3 in *",
        "  FAILED exit code 3, expected 0",
        "  stdout:",
        "    checking",
        "  stderr:",
        "    no backup since 2026-11-20",
        "*deploycheck*",
        "  FAILED *backup verified[[]prod[]]  (suites/pre.yaml:2; on_fail: block)",
        "         exit code 3, expected 0",
    ])


def test_stdout_and_stderr_are_matched_as_regexes(project: Project) -> None:
    checklist(project, """\
          - name: ci green
            kind: checklist
            command: [sh, -c, "echo 'pipeline 4711: failed'; echo 'warning: flaky' >&2"]
            expect: {stdout: "pipeline \\\\d+: (passed|success)", stderr: "^all good$"}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        r"  FAILED stdout does not match /pipeline \d+: (passed|success)/",
        "  FAILED stderr does not match /^all good$/",
    ])


def test_several_accepted_exit_codes(project: Project) -> None:
    checklist(project, """\
          - {name: diff, kind: checklist, command: "exit 1", expect: {exit_code: [0, 1]}}
          - {name: diff 2, kind: checklist, command: "exit 2", expect: {exit_code: [0, 1]}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  FAILED exit code 2, expected 0 or 1"])


def test_cwd_env_templates_and_deploycheck_env_reach_the_command(project: Project) -> None:
    (project.path / "ops").mkdir()
    (project.path / "ops" / "release.txt").write_text("1.2.3 final\n")
    checklist(project, """\
          - name: release notes match
            kind: checklist
            cwd: ops
            env: {EXPECTED: "{{ release }}"}
            command: 'test "$(cat release.txt)" = "$EXPECTED" && test {{ release }} = "$EXPECTED"
              && echo "$DEPLOYCHECK_ENV ok"'
            expect: {stdout: "^prod ok$"}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_templates_in_a_shell_command_are_quoted(project: Project) -> None:
    project.environments("""\
        environments:
          prod:
            vars: {name: "x; echo INJECTED"}
        """)
    project.suite("pre.yaml", """\
        checks:
          - {name: quoted, kind: checklist, command: "echo {{ name }}",
             expect: {stdout: "^x; echo INJECTED$"}}
        """)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_a_program_that_does_not_exist(project: Project) -> None:
    checklist(project, """\
          - {name: list form, kind: checklist, command: [no-such-program-xyz, --check]}
          - {name: shell form, kind: checklist, command: "no-such-program-xyz --check"}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*list form*",
        "         cannot run no-such-program-xyz --check: No such file or directory",
        "*shell form*",
        "         exit code 127 (command not found), expected 0",
    ])


def test_a_missing_cwd_fails_the_item(project: Project) -> None:
    checklist(project, """\
          - {name: cwd, kind: checklist, command: [ls], cwd: no/such/folder}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["         cannot run ls: No such file or directory"])


def test_a_hanging_command_is_killed_with_its_children(project: Project) -> None:
    marker = f"deploycheck-hang-{time.time_ns()}"
    sleeper = f'python -c "import time; time.sleep(60)" {marker}'
    checklist(project, f"""\
          - name: hangs
            kind: checklist
            timeout: 1s
            command: '{sleeper} & {sleeper}; echo done'
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  -> killed after 1s (timeout), with every process it started",
                                 "  FAILED timed out after 1s and was killed"])
    assert elapsed < 6
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout == ""


def test_megabytes_of_output_are_cut_and_the_end_is_judged(project: Project) -> None:
    checklist(project, """\
          - name: chatty
            kind: checklist
            command: "yes 'progress line' | head -c 5000000; echo; echo 'Backup verified'; exit 1"
            expect: {stdout: "Backup verified"}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  FAILED exit code 1, expected 0",
        "  (output longer than 64 KB per stream: only its end was kept and judged)",
        "  stdout: (last 30 of * lines)",
        "    Backup verified",
    ])
    assert "stdout does not match" not in result.stdout.str()
    assert len(result.stdout.str()) < 20_000


def test_secrets_printed_by_a_command_are_masked(project: Project,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELEASE_API_TOKEN", "tok-8c1f0e9d2b")
    monkeypatch.setenv("DB_PASSWORD", "hunter2-db")
    checklist(project, """\
          - name: leaky
            kind: checklist
            command: 'echo "token=$RELEASE_API_TOKEN"; echo "pw=$DB_PASSWORD" >&2; exit 1'
        """)
    result = runpytest(project.pytester, "--env=prod", "-vv", "--junitxml=junit.xml")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["    token=***", "    pw=***"])
    output = result.stdout.str() + (project.path / "junit.xml").read_text()
    assert "tok-8c1f0e9d2b" not in output and "hunter2-db" not in output
