"""``if:`` on a suite or check (SPEC §10): a git change, an environment variable or a template
decides whether a check is needed; a skipped check says why and never runs."""

from __future__ import annotations

import json

import pytest

from conftest import Project, assert_bad_input, git, runpytest

ENVIRONMENTS = """\
    environments:
      prod:
        vars: {migration: "false", region: eu}
      staging:
        vars: {migration: "true", region: eu}
    """


def repository(project: Project, *changed: str) -> None:
    """A git repository in the project: a first commit, then one that changes ``changed``."""
    git(project.path, "init", "-q", "-b", "main")
    (project.path / "README").write_text("app\n")
    git(project.path, "add", "-A")
    git(project.path, "commit", "-q", "-m", "first")
    for name in changed:
        path = project.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("change\n")
    git(project.path, "add", "-A")
    git(project.path, "commit", "-q", "-m", "release")


def gate(project: Project) -> dict[str, object]:
    report: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return report


MIGRATION_SUITE = """\
    checks:
      - name: migration status up to date
        kind: smoke
        phase: predeploy
        if: {changed: "prisma/migrations/**"}
        command: "touch migration-checked; exit 1"
      - name: docs built
        kind: smoke
        if: {changed: ["docs/**", "mkdocs.yml"], base: main~1}
        command: "touch docs-checked"
    """


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_a_check_runs_only_when_its_files_changed(project: Project,
                                                  workers: list[str]) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", MIGRATION_SUITE)
    repository(project, "prisma/migrations/0042_tags/migration.sql")
    result = runpytest(project.pytester, "--env=prod", "-rs", "--gate-report=gate.json",
                       *workers)
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "SKIPPED [[]1[]] suites/release.yaml: if: no file matching docs/**, mkdocs.yml "
        "changed since main~1 (1 changed)"])
    assert (project.path / "migration-checked").exists()
    assert not (project.path / "docs-checked").exists()
    report = gate(project)
    assert report["verdict"] == "blocked"
    checks = {c["name"]: c for c in report["checks"]}  # type: ignore[attr-defined]
    assert checks["docs built"]["outcome"] == "skipped"
    assert checks["docs built"]["unneeded"].startswith("if: no file matching docs/**")


def test_a_suite_whose_checks_are_all_unneeded_passes(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", """\
        if: {changed: "prisma/**"}
        checks:
          - {name: migration status, kind: smoke, command: "touch ran; exit 1"}
          - {name: data integrity, kind: smoke, command: "touch ran; exit 1"}
        """)
    repository(project, "src/app.py")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(skipped=2)
    assert result.ret == 0
    assert gate(project)["verdict"] == "passed"
    assert not (project.path / "ran").exists()


def test_a_base_git_cannot_compare_is_a_collection_error(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", MIGRATION_SUITE.replace("main~1", "origin/main"))
    repository(project, "docs/index.md")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert result.ret != 0
    result.stdout.fnmatch_lines([
        "*suites/release.yaml:9: checks[[]1[]].if: git cannot compare 'origin/main' with HEAD "
        "in *: fatal: *(in CI, fetch the base first: a shallow clone has no history to "
        "compare)*"])
    assert gate(project)["verdict"] == "blocked"
    assert not (project.path / "migration-checked").exists()


def test_an_environment_variable_decides(project: Project,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", """\
        checks:
          - {name: workers answer, kind: smoke, if: {env_var: HAS_WORKERS}, command: "true"}
        """)
    monkeypatch.delenv("HAS_WORKERS", raising=False)
    runpytest(project.pytester, "--env=prod", "-rs").stdout.fnmatch_lines(
        ["SKIPPED * if: $HAS_WORKERS is not set"])
    monkeypatch.setenv("HAS_WORKERS", "off")
    runpytest(project.pytester, "--env=prod", "-rs").stdout.fnmatch_lines(
        ["SKIPPED * if: $HAS_WORKERS is 'off'"])
    monkeypatch.setenv("HAS_WORKERS", "celery")
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_a_template_decides_per_environment(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", """\
        checks:
          - name: migration applied
            kind: smoke
            if: "{{ vars.migration }}"
            command: "echo {{ region }}"
        """)
    result = runpytest(project.pytester, "--env=prod,staging", "-rs", "-v")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines_random([
        "*migration applied[[]staging[]] PASSED*",
        "SKIPPED * if: {{ vars.migration }} is false"])


@pytest.mark.parametrize(("condition", "message"), [
    ('"{{ region }}"', "suites/bad.yaml:4: checks[[]0[]].if: renders 'eu', which is neither "
                       "true nor false (true/false, yes/no, on/off, 1/0; *"),
    ('"{{ nope }}"', "suites/bad.yaml:4: checks[[]0[]].if: template '{{ nope }}' is not "
                     "defined in environment 'prod'*"),
    ("{env_var: X, changed: a}", "suites/bad.yaml:4: checks[[]0[]].if: if: takes one of "
                                 "{changed: GLOB, base: REF} or {env_var: NAME}"),
    ("[{env_var: X}]", "suites/bad.yaml:4: checks[[]0[]].if: *"),
    ("{chanegd: a}", "suites/bad.yaml:4: checks[[]0[]].if.chanegd: unknown key 'chanegd' (did "
                     "you mean 'changed'?)*"),
    ("'{{ region }} ${X}'", "suites/bad.yaml:4: checks[[]0[]].if: ${...} is not interpolated*"),
])
def test_a_condition_that_cannot_be_decided_names_file_line_and_key(
        project: Project, condition: str, message: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("bad.yaml", "checks:\n  - name: a\n    kind: smoke\n"
                              f"    if: {condition}\n    command: 'true'\n")
    assert_bad_input(project, message, "--env=prod")


def test_a_suite_condition_in_a_template_is_rendered(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", """\
        if: "{{ migration }}"
        checks:
          - {name: migration applied, kind: smoke, command: "true"}
        """)
    result = runpytest(project.pytester, "--env=staging")
    result.assert_outcomes(passed=1)
    result = runpytest(project.pytester, "--env=prod", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * if: {{ migration }} is false"])


@pytest.mark.parametrize("glob", ["prisma/migrations/**", "prisma/migrations/",
                                  "prisma/migrations", "./prisma/migrations/**",
                                  "/prisma/migrations", "*.sql", "prisma/**/*.sql"])
def test_a_change_matches_however_the_folder_is_written(project: Project, glob: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", f"""\
        checks:
          - {{name: migration status, kind: smoke, if: {{changed: "{glob}"}}, command: "true"}}
        """)
    repository(project, "prisma/migrations/0042_tags/migration.sql")
    runpytest(project.pytester, "--env=prod").assert_outcomes(passed=1)


def test_changes_are_relative_to_the_project_and_count_both_sides_of_a_rename(
        project: Project) -> None:
    """The project is a folder of a bigger repository (a monorepo): its globs are relative
    to it; a migration moved out of its folder changed that folder."""
    mono = project.path
    service = mono / "svc"
    service.mkdir()
    (service / "prisma" / "migrations").mkdir(parents=True)
    (service / "prisma" / "migrations" / "001.sql").write_text("create\n")
    git(mono, "init", "-q", "-b", "main")
    git(mono, "add", "-A")
    git(mono, "commit", "-q", "-m", "first")
    (service / "archive").mkdir()
    git(mono, "mv", "svc/prisma/migrations/001.sql", "svc/archive/001.sql")
    git(mono, "commit", "-q", "-m", "archive a migration")
    (service / "environments.yaml").write_text(
        "environments:\n  prod:\n    vars: {migration: 'true'}\n")
    (service / "suites").mkdir()
    (service / "suites" / "release.yaml").write_text(
        "checks:\n  - {name: migrations, kind: smoke, if: {changed: 'prisma/migrations/**'},\n"
        "     command: 'touch ran'}\n")
    project.pytester.chdir()
    result = project.pytester.runpytest("-p", "no:cacheprovider", "--rootdir", str(service),
                                        "-c", "/dev/null", "--env=prod",
                                        str(service / "suites"))
    result.assert_outcomes(passed=1)
    assert (mono / "ran").exists() or (service / "ran").exists()


def test_an_empty_value_is_a_missing_one_never_false(project: Project) -> None:
    project.environments("environments:\n  prod:\n    vars: {migration: ''}\n")
    project.suite("release.yaml", """\
        checks:
          - {name: migration applied, kind: smoke, if: "{{ migration }}", command: "true"}
        """)
    assert_bad_input(project, "suites/release.yaml:2: checks[[]0[]].if: renders '', which is "
                              "neither true nor false*an empty value is a missing one*",
                     "--env=prod")


def test_an_unneeded_check_never_runs_without_the_skipping_plugin(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", """\
        checks:
          - {name: migration applied, kind: smoke, if: "{{ migration }}", command: "touch ran"}
        """)
    result = runpytest(project.pytester, "--env=prod", "-p", "no:skipping")
    result.assert_outcomes(skipped=1)
    assert not (project.path / "ran").exists()
