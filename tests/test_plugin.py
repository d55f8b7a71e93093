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


UNIT_TESTS = """\
    import sys

    import pytest


    @pytest.mark.smoke
    def test_unit_marked_smoke():
        # Nothing of the plugin beyond its options and markers was loaded for this run.
        assert "pytest_deploycheck.deployrun" not in sys.modules
        assert "httpx" not in sys.modules


    def test_plain():
        assert True
    """


def test_a_run_of_other_tests_loads_and_prints_nothing_of_the_plugin(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A virtualenv shared with unit tests: no environment, no suites folder."""
    monkeypatch.delenv("DEPLOYCHECK_ENV", raising=False)
    pytester.makepyfile(test_unit=UNIT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:allure_pytest")
    result.assert_outcomes(passed=2)
    assert "deploycheck:" not in result.stdout.str()  # no header (pytest lists the plugin)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "smoke")
    result.assert_outcomes(passed=1, deselected=1)
    assert result.ret == pytest.ExitCode.OK


def test_unit_tests_marked_smoke_are_no_gate(project: Project,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With the environment set for the whole virtualenv (a variable or the ini file), a run
    that selects only plain tests is no gate; asked for on the command line it is one, and
    nothing to check there is inconclusive."""
    project.environments("environments:\n  staging: {}\n")
    project.suite("s.yaml", "checks:\n  - {name: up, kind: health, request: {url: 'http://127.0.0.1:9/'}}\n")
    project.pytester.makepyfile(test_unit="""\
        import pytest

        @pytest.mark.smoke
        def test_unit_marked_smoke():
            assert True
        """)
    monkeypatch.setenv("DEPLOYCHECK_ENV", "staging")
    for workers in ("0", "2"):
        result = runpytest(project.pytester, "-p", "xdist", "-n", workers, "-m", "smoke")
        # (xdist's workers deselect: its controller does not count them)
        result.assert_outcomes(passed=1, deselected=1 if workers == "0" else 0)
        assert result.ret == pytest.ExitCode.OK
        result.stdout.fnmatch_lines(["deploycheck: no check selected for staging (from "
                                     "environment variable DEPLOYCHECK_ENV): no gate"])
        assert "inconclusive" not in result.stdout.str()
    result = runpytest(project.pytester, "--env=staging", "-m", "smoke")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["staging: inconclusive (0 passed, 0 failed, 0 skipped)"])
    monkeypatch.delenv("DEPLOYCHECK_ENV")
    (project.path / "suites" / "s.yaml").unlink()
    project.pytester.makepyfile(test_env="""\
        def test_needs_an_environment(deploy_env):
            pass
        """)
    (project.path / "suites").rmdir()
    result = runpytest(project.pytester, "test_env.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*deploy_env needs an environment: pass --env NAME*"])


def test_a_python_check_with_more_parameters_keeps_the_run_a_gate(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check whose id reads test_x[eu-prod] (another parameter first) is a check: with the
    environment from DEPLOYCHECK_ENV its failure is the gate's."""
    project.environments("environments:\n  prod: {}\n")
    project.pytester.makeconftest("""\
        def pytest_generate_tests(metafunc):
            if "region" in metafunc.fixturenames:
                metafunc.parametrize("region", ["eu"])
        """)
    project.pytester.makepyfile(test_checks="""\
        import pytest

        @pytest.mark.deploycheck(kind="smoke")
        def test_checkout(region, deploy_env):
            assert False, "checkout is down"
        """)
    monkeypatch.setenv("DEPLOYCHECK_ENV", "prod")
    result = runpytest(project.pytester, "--gate-report=gate.json")
    assert "no gate" not in result.stdout.str()
    result.stdout.fnmatch_lines(["prod: failed (0 passed, 1 failed, 0 skipped)"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
