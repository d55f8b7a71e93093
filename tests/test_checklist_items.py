"""Checklist entries other than commands: env_vars, files, git, manual with --ack, requests;
their gate defaults and markers, and their bad input."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GIT_IDENTITY, Project, git, runpytest
from servers import LoopbackServer


def checklist(project: Project, body: str, environments: str = "environments:\n  prod: {}\n"
              ) -> None:
    project.environments(environments)
    project.suite("pre.yaml", "checks:\n" + body)


# --- env_vars -----------------------------------------------------------------------------

def test_env_vars_must_be_set_and_non_empty_and_values_are_never_shown(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_API_TOKEN", "tok-value-4e1d")
    monkeypatch.setenv("DD_API_KEY", "   ")
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    checklist(project, """\
          - {name: secrets present, kind: checklist,
             env_vars: [PROD_API_TOKEN, DD_API_KEY, DD_APP_KEY]}
        """)
    result = runpytest(project.pytester, "--env=prod", "-vv")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  required: PROD_API_TOKEN, DD_API_KEY, DD_APP_KEY",
        "  FAILED DD_API_KEY (empty)",
        "  FAILED DD_APP_KEY (not set)",
        "         2 of 3 environment variables missing: DD_API_KEY (empty), DD_APP_KEY (not set)",
    ])
    assert "tok-value-4e1d" not in result.stdout.str()


def test_env_vars_pass_when_all_are_set(project: Project,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROD_API_TOKEN", "x")
    checklist(project, "  - {name: s, kind: checklist, env_vars: [PROD_API_TOKEN]}\n")
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


# --- files --------------------------------------------------------------------------------

def test_files_exist_and_are_newer_than_max_age(project: Project) -> None:
    backups = project.path / "backups"
    backups.mkdir()
    old, new = backups / "db-2026-11-20.dump", backups / "db-2026-11-22.dump"
    old.write_text("old")
    new.write_text("new")
    day = 24 * 3600
    os.utime(old, (time.time() - 3 * day, time.time() - 3 * day))
    os.utime(new, (time.time() - 3600, time.time() - 3600))
    (project.path / "release.yaml").write_text("version: 1\n")
    checklist(project, """\
          - name: fresh backup
            kind: checklist
            files: [release.yaml, {path: "backups/db-*.dump", max_age: 24h}]
          - name: stale backup
            kind: checklist
            files: [{path: backups/db-2026-11-20.dump, max_age: 24h}]
          - name: missing
            kind: checklist
            files: [backups/none-*.dump, release.yaml, nothing.txt]
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "  FAILED */backups/db-2026-11-20.dump (modified *, 3d ago): older than max_age 24h",
        "*",
        "  FAILED backups/none-*.dump: not found (looked at */backups/none-*.dump)",
        "  ok */release.yaml (modified *)",
        "  FAILED nothing.txt: not found*",
    ])


# --- git ----------------------------------------------------------------------------------

def make_repo(folder: Path) -> Path:
    """A repository with one commit on main, tagged v1.2.3, pushed to a bare 'origin'."""
    origin = folder.parent / f"{folder.name}-origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    folder.mkdir(exist_ok=True)
    git(folder, "init", "-q", "-b", "main")
    (folder / "app.txt").write_text("v1\n")
    git(folder, "add", "app.txt")
    git(folder, "commit", "-q", "-m", "release 1.2.3")
    git(folder, "tag", "v1.2.3")
    git(folder, "remote", "add", "origin", str(origin))
    git(folder, "push", "-q", "-u", "origin", "main")
    return folder


GIT_SUITE = """\
      - name: tree clean on main
        kind: checklist
        git: {path: repo, clean: true, branch: main, tag: "v*", up_to_date: true}
    """


def test_git_passes_on_a_clean_tagged_pushed_main(project: Project) -> None:
    make_repo(project.path / "repo")
    checklist(project, GIT_SUITE)
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_git_lists_what_is_not_clean_and_the_wrong_branch(project: Project) -> None:
    repo = make_repo(project.path / "repo")
    git(repo, "checkout", "-q", "-b", "feature/x")
    (repo / "app.txt").write_text("v2\n")
    (repo / "notes.txt").write_text("todo\n")
    checklist(project, GIT_SUITE.replace("up_to_date: true", "up_to_date: origin/main"))
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  repository: */repo",
        "  FAILED clean: 2 changed or untracked:",
        "     M app.txt",
        "    ?? notes.txt",
        "  FAILED branch: feature/x, expected main",
        "  ok tag v*: v1.2.3",
        "  ok up_to_date with origin/main",
        "         working tree not clean (2 changed or untracked); on branch feature/x, "
        "expected main",
    ])


def test_git_tag_must_point_at_head(project: Project) -> None:
    repo = make_repo(project.path / "repo")
    (repo / "app.txt").write_text("v2\n")
    git(repo, "commit", "-q", "-am", "unreleased change")
    git(repo, "tag", "build-7")
    checklist(project, """\
          - {name: tagged, kind: checklist, git: {path: repo, tag: "v[0-9]*"}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["         no tag matching v[[]0-9[]]* on HEAD (HEAD has "
                                 "build-7)"])


def test_git_up_to_date_counts_commits_behind_and_ahead(project: Project,
                                                        tmp_path: Path) -> None:
    repo = make_repo(project.path / "repo")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(project.path / "repo-origin.git"), str(other)],
                   check=True, env={**os.environ, **GIT_IDENTITY})
    for n in (1, 2):
        (other / "app.txt").write_text(f"v{n + 1}\n")
        git(other, "commit", "-q", "-am", f"upstream {n}")
    git(other, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q")
    (repo / "local.txt").write_text("x\n")
    git(repo, "add", "local.txt")
    git(repo, "commit", "-q", "-m", "local only")
    checklist(project, "  - {name: fresh, kind: checklist, git: {path: repo, up_to_date: true}}\n")
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  FAILED up_to_date: 2 behind and 1 ahead of origin/main"])


def test_git_up_to_date_without_an_upstream_skips_with_the_reason(project: Project) -> None:
    repo = project.path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    checklist(project, "  - {name: fresh, kind: checklist, git: {path: repo, up_to_date: true}}\n")
    result = runpytest(project.pytester, "--env=prod", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * cannot check up_to_date: branch main has no upstream;"
                                 " set one (git branch -u origin/main) or name the ref*"])


def test_a_folder_that_is_not_a_repository_skips_the_item(project: Project) -> None:
    (project.path / "plain").mkdir()
    checklist(project, "  - {name: clean, kind: checklist, git: {path: plain, clean: true}}\n")
    result = runpytest(project.pytester, "--env=prod", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * not a git repository: */plain"])


# --- manual and --ack ---------------------------------------------------------------------

MANUAL = """\
      - {name: code reviewed, kind: checklist, manual: "Two approvals on release {{ v }}"}
      - {name: announced, kind: checklist, manual: "Announced in #deploys"}
    """
MANUAL_ENVS = "environments:\n  prod:\n    vars: {v: 1.2.3}\n"


def test_manual_steps_fail_saying_how_to_acknowledge(project: Project) -> None:
    checklist(project, MANUAL, MANUAL_ENVS)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "  manual step: Two approvals on release 1.2.3",
        "  confirm it, then run again with --ack 'pre::code reviewed' (or --ack all for every "
        "manual step)",
    ])


@pytest.mark.parametrize("ack", ["pre::code reviewed", "pre::code reviewed[prod]",
                                 "suites/pre.yaml::pre::code reviewed[prod]"])
def test_ack_by_check_id_item_id_or_node_id(project: Project, ack: str) -> None:
    checklist(project, MANUAL, MANUAL_ENVS)
    result = runpytest(project.pytester, "--env=prod", "--ack", ack)
    result.assert_outcomes(passed=1, failed=1)
    shown = "".join({"[": "[[]", "]": "[]]"}.get(c, c) for c in ack)
    result.stdout.fnmatch_lines([f"  NOTE *code reviewed[[]prod[]]: acknowledged (--ack {shown}):"
                                 f" Two approvals on release 1.2.3"])


def test_ack_all_acknowledges_every_manual_step(project: Project) -> None:
    checklist(project, MANUAL, MANUAL_ENVS)
    result = runpytest(project.pytester, "--env=prod", "--ack=all")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["  ACKNOWLEDGED suites/pre.yaml::pre::announced[[]prod[]] "
                                 "(--ack all)"])


def test_an_ack_that_matches_nothing_is_reported(project: Project) -> None:
    checklist(project, MANUAL, MANUAL_ENVS)
    result = runpytest(project.pytester, "--env=prod", "--ack=pre::code reviewd",
                       "--ack=pre::announced")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  NOTE --ack 'pre::code reviewd' matched no item of this run"])


def test_acknowledged_items_are_recorded_in_their_reports(project: Project) -> None:
    checklist(project, MANUAL, MANUAL_ENVS)
    project.pytester.makeconftest("""
        import json

        WORKER = []

        def pytest_configure(config):
            WORKER.append(hasattr(config, "workerinput"))

        def pytest_runtest_logreport(report):
            info = getattr(report, "deploycheck", None)
            # Only what reaches the controller.
            if info and report.when == "call" and not WORKER[-1]:
                with open("acks.jsonl", "a") as out:
                    out.write(json.dumps([report.nodeid, info["acknowledged"]]) + "\\n")
        """)
    runpytest(project.pytester, "--env=prod", "--ack=all", "-p", "xdist", "-n", "2")
    lines = sorted((project.path / "acks.jsonl").read_text().splitlines())
    assert lines == ['["suites/pre.yaml::pre::announced[prod]", "all"]',
                     '["suites/pre.yaml::pre::code reviewed[prod]", "all"]']


# --- request/expect, gates and markers ----------------------------------------------------

def test_a_status_page_request_on_a_checklist(project: Project, server: LoopbackServer) -> None:
    checklist(project, f"""\
          - name: no open incidents
            kind: checklist
            request: {{url: "{server.url}/statuspage/0/api/v2/incidents/unresolved.json"}}
            expect: {{json: {{"length(incidents)": 0}}}}
          - name: no open incidents (two open)
            kind: checklist
            request: {{url: "{server.url}/statuspage/2/api/v2/incidents/unresolved.json"}}
            expect: {{json: {{"length(incidents)": 0}}}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["  FAILED json length(incidents): expected 0, got 2"])


def test_checklists_are_the_predeploy_gate_and_block_by_default(project: Project,
                                                                server: LoopbackServer) -> None:
    project.environments(f"environments:\n  prod:\n    services:\n      api: {{url: "
                         f"'{server.url}'}}\n")
    project.suite("all.yaml", """\
        service: api
        checks:
          - {name: window, kind: checklist, window: true}
          - {name: ok, kind: checklist, command: "true"}
          - {name: health, kind: health, request: {path: /ok}}
        """)
    project.pytester.makeconftest("""
        def pytest_runtest_logreport(report):
            if report.when == "setup":  # the report that describes the check
                with open("gates.txt", "a") as out:
                    out.write(f"{report.deploycheck['id']} {report.deploycheck['on_fail']}\\n")
        """)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy")
    result.assert_outcomes(passed=2, deselected=1)
    assert (project.path / "gates.txt").read_text() == "all::window block\nall::ok block\n"
    result = runpytest(project.pytester, "--env=prod", "-m", "postdeploy")
    result.assert_outcomes(passed=1, deselected=2)
    assert (project.path / "gates.txt").read_text().endswith("all::health rollback\n")


def test_checklists_run_under_xdist(project: Project) -> None:
    checklist(project, "".join(
        f"  - {{name: c{n}, kind: checklist, command: 'test {n} -lt 6'}}\n" for n in range(8)))
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=6, failed=2)


# --- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ("  - {name: a, kind: checklist}\n",
     "suites/pre.yaml:2: checks[[]0[]]: a checklist check needs one of: command, env_vars, files,"
     " git, window, manual, request or steps"),
    ("  - name: a\n    kind: checklist\n    command: 'true'\n    manual: confirm\n",
     "suites/pre.yaml:5: checks[[]0[]].manual: a checklist check does one thing, but this one "
     "has 'command' and 'manual'; split it into two checks"),
    ("  - name: a\n    kind: checklist\n    window: false\n",
     "suites/pre.yaml:4: checks[[]0[]].window: window: False: a checklist check takes 'window: "
     "true'*"),
    ("  - name: a\n    kind: checklist\n    manual: ok\n    cwd: ops\n",
     "suites/pre.yaml:5: checks[[]0[]].cwd: 'cwd' does not apply to a 'manual' checklist check"),
    ("  - name: a\n    kind: checklist\n    command: 'true'\n    expect: {status: 200}\n",
     "suites/pre.yaml:5: checks[[]0[]].expect.status: 'status' is not an expectation of a "
     "command; use exit_code, stdout, stderr"),
    ("  - name: a\n    kind: checklist\n    command: 'true'\n    expect:\n      stdout: '(bad'\n",
     "suites/pre.yaml:6: checks[[]0[]].expect.stdout: bad regex '(bad'*"),
    ("  - name: a\n    kind: checklist\n    request: {url: 'http://127.0.0.1:9/'}\n"
     "    expect:\n      exit_code: 0\n",
     "suites/pre.yaml:6: checks[[]0[]].expect.exit_code: 'exit_code' is an expectation of a "
     "checklist command, not of a request"),
    ("  - name: a\n    kind: checklist\n    files:\n      - {path: x, max_age: a day}\n",
     "suites/pre.yaml:5: checks[[]0[]].files[[]0[]].max_age: 'a day' is not a duration*"),
    ("  - name: a\n    kind: checklist\n    git: {clean: yes, brnch: main}\n",
     "suites/pre.yaml:4: checks[[]0[]].git.brnch: unknown key 'brnch' (did you mean 'branch'?)*"),
    ("  - name: a\n    kind: checklist\n    env_vars: [PROD-TOKEN]\n",
     "suites/pre.yaml:4: checks[[]0[]].env_vars[[]0[]]: *does not match*"),
    ("  - name: a\n    kind: checklist\n    command: 'echo {{ nope }}'\n",
     "suites/pre.yaml:4: checks[[]0[]].command: template '{{ nope }}' is not defined in environment "
     "'prod'*"),
    ("  - name: a\n    kind: health\n    manual: confirm\n",
     "suites/pre.yaml:4: checks[[]0[]].manual: 'manual' does not apply to a health check"),
    ("  - name: a\n    kind: metric\n    query: x\n    threshold: '< 1'\n    command: 'true'\n",
     "suites/pre.yaml:6: checks[[]0[]].command: 'command' does not apply to a metric check"),
])
def test_bad_checklist_input_names_file_line_and_key(project: Project, body: str,
                                                     message: str) -> None:
    checklist(project, body)
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str()


def test_a_release_tag_checkout_is_on_the_branch_that_contains_it(project: Project) -> None:
    """CI checks out a release tag (a detached HEAD): ``branch: main`` holds when main (or
    origin/main) contains the commit, and fails for a commit main does not have."""
    from conftest import git

    project.environments("environments:\n  prod: {}\n")
    project.suite("pre.yaml", """\
        checks:
          - {name: from main, kind: checklist, git: {clean: true, branch: main, up_to_date: origin/main}}
        """)
    (project.path / ".gitignore").write_text(".deploycheck/\n")
    origin = project.path.parent / f"{project.path.name}-origin.git"
    git(project.path.parent, "init", "-q", "--bare", "-b", "main", str(origin))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"],
                 ["tag", "v1.2.3"], ["remote", "add", "origin", str(origin)],
                 ["push", "-q", "origin", "main"], ["fetch", "-q", "origin"],
                 ["checkout", "-q", "v1.2.3"], ["branch", "-D", "main"]):
        git(project.path, *args)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "-rA")
    result.assert_outcomes(passed=1)
    git(project.path, "checkout", "-q", "-b", "feature")
    (project.path / "x.txt").write_text("x\n")
    for args in (["add", "-A"], ["commit", "-q", "-m", "not released"], ["checkout", "-q", "--detach"]):
        git(project.path, *args)
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED branch: detached HEAD, in no branch matching main"])


def test_a_clean_tree_stays_clean_of_what_the_run_writes(project: Project) -> None:
    """The gate report, audit log, Allure results and JUnit file of the run itself, written
    into the repository (a CI workspace), do not make it unclean; anything else does."""
    project.environments("environments:\n  prod: {}\n")
    project.suite("pre.yaml", "checks:\n  - {name: clean, kind: checklist, git: {clean: true}}\n")
    (project.path / ".gitignore").write_text(".deploycheck/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        git(project.path, *args)
    out = ["--gate-report=gate/gate.json", "--audit-log=gate/audit.jsonl",
           "--alluredir=gate/allure-results", "--junitxml=junit.xml"]
    for _ in range(2):  # the second run finds the first one's files too
        result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", *out)
        result.assert_outcomes(passed=1)
    (project.path / "gate" / "notes.txt").write_text("left behind\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", *out)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED clean: 1 changed or untracked:", "*?? gate/notes.txt"])


def test_an_output_folder_holding_the_repository_hides_nothing(project: Project) -> None:
    project.environments("environments:\n  prod: {}\n")
    project.suite("pre.yaml", "checks:\n  - {name: clean, kind: checklist, git: {clean: true}}\n")
    (project.path / ".gitignore").write_text(".deploycheck/\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "release"]):
        git(project.path, *args)
    (project.path / "evil.sh").write_text("echo\n")
    result = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--alluredir=.")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*?? evil.sh"])
