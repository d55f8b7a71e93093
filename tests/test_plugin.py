"""The plugin as pytest sees it: entry point, options, markers, header."""

from __future__ import annotations

import pytest

from conftest import Project, runpytest


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = runpytest(pytester, "--markers")
    result.stdout.fnmatch_lines([f"@pytest.mark.{name}: *" for name in
                                 ("health", "smoke", "checklist", "metric", "predeploy",
                                  "postdeploy")], consecutive=False)


def test_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--trace-config", "--co")
    result.stdout.fnmatch_lines(["*deploycheck*pytest_deploycheck/plugin.py*"])


def test_header_shows_settings_and_their_sources(project: Project) -> None:
    project.pytester.makeini("[pytest]\ndeploycheck_suites = checks\ndeploycheck_concurrency = 8\n")
    project.environments("environments:\n  e: {}\n")
    result = runpytest(project.pytester, "--env=e", "--co")
    result.stdout.fnmatch_lines(["deploycheck: env=e (--env), environments=*environments.yaml "
                                 "(default), suites=checks (ini deploycheck_suites), state_dir=*.deploycheck (default), "
                                 "no_start=False (default), rollback=auto (default), "
                                 "concurrency=8 (ini deploycheck_concurrency)"])
    result = runpytest(project.pytester, "--env=e", "--co", "--deploycheck-concurrency", "1")
    result.stdout.fnmatch_lines(["deploycheck: *, concurrency=1 (--deploycheck-concurrency)"])


@pytest.mark.parametrize("value", ["0", "many", "-3"])
def test_a_bad_concurrency_is_a_usage_error(project: Project, value: str) -> None:
    project.environments("environments:\n  e: {}\n")
    result = runpytest(project.pytester, "--env=e", f"--deploycheck-concurrency={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --deploycheck-concurrency / deploycheck_concurrency: "
                                 f"'{value}' is not a whole number of at least 1"])


def test_missing_env_under_xdist_fails_the_run(project: Project,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEPLOYCHECK_ENV", raising=False)
    project.environments("environments:\n  e: {}\n")
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    result = runpytest(project.pytester, "-n", "2")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["no environment selected, but suites were collected*"])
