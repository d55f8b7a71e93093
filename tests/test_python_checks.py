"""Checks written in Python: the ``deploycheck`` marker, the ``metric`` fixture, timeouts, and
their part in env targeting, markers, gates and rollback, next to YAML checks."""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import pytest

from conftest import Project, runpytest
from metric_servers import Prometheus
from servers import LoopbackServer


def two_envs(project: Project, server: LoopbackServer, hook: str = "", extra: str = "") -> None:
    """Environments ``staging`` and ``prod`` with service ``api``; ``prod`` rolls back by
    logging to rollbacks.log and calling ``hook``."""
    rollback = ""
    if hook:
        rollback = textwrap.indent(textwrap.dedent(f"""\
            rollback:
              - command: 'echo "$DEPLOYCHECK_ENV" >> rollbacks.log'
              - webhook: {{url: "{hook}", method: POST}}
            """), "    ")
    project.environments(f"""\
        environments:
          staging:
            services: {{api: {{url: "{server.url}"}}}}
          prod:
            services: {{api: {{url: "{server.url}"}}}}
        """)
    path = project.path / "environments.yaml"
    path.write_text(path.read_text() + rollback + extra)


def gate(project: Project, name: str = "gate.json") -> dict[str, dict]:
    """The gate report's objects by environment."""
    report = json.loads((project.path / name).read_text())
    return {doc["env"]: doc for doc in report.get("environments", [report])}


def rollbacks(project: Project) -> list[str]:
    path = project.path / "rollbacks.log"
    return path.read_text().splitlines() if path.exists() else []


def test_the_marker_gives_kind_markers_envs_and_on_fail(project: Project,
                                                         server: LoopbackServer) -> None:
    two_envs(project, server)
    project.pytester.makepyfile(test_checks="""
        import pytest

        @pytest.mark.deploycheck(kind="smoke", envs=["prod"])
        def test_checkout(service):
            assert service("api").get("/ok").status_code == 200

        @pytest.mark.deploycheck("checklist")
        def test_backup_fresh():
            pass

        @pytest.mark.deploycheck(kind="health", skip_envs=["staging"], on_fail="warn")
        def test_health(service):
            assert service("api").get("/status/503").status_code == 200

        def test_unmarked_is_smoke(deploy_env):
            assert deploy_env.name in ("staging", "prod")

        def test_plain_tests_are_left_alone():
            pass
        """)
    result = runpytest(project.pytester, "--env=staging,prod", "-v", "--gate-report=gate.json")
    result.assert_outcomes(passed=7, deselected=2)
    result.stdout.fnmatch_lines(["*test_checkout[[]prod[]] PASSED*"])
    assert "test_checkout[staging]" not in result.stdout.str()
    assert "test_health[staging]" not in result.stdout.str()
    report = gate(project)
    prod = {c["id"]: c for c in report["prod"]["checks"]}
    assert set(prod) == {f"test_checks.py::{name}[prod]" for name in (
        "test_checkout", "test_backup_fresh", "test_health", "test_unmarked_is_smoke")}
    checkout = prod["test_checks.py::test_checkout[prod]"]
    assert (checkout["kind"], checkout["on_fail"], checkout["file"], checkout["line"],
            checkout["suite"], checkout["name"]) == (
        "smoke", "rollback", "test_checks.py", 3, "test_checks.py", "test_checkout")
    assert prod["test_checks.py::test_backup_fresh[prod]"]["on_fail"] == "block"
    assert prod["test_checks.py::test_health[prod]"]["outcome"] == "warned"
    assert "assert 503 == 200" in prod["test_checks.py::test_health[prod]"]["message"]
    assert prod["test_checks.py::test_unmarked_is_smoke[prod]"]["kind"] == "smoke"
    assert report["prod"]["verdict"] == "passed_with_warnings"
    assert report["staging"]["verdict"] == "passed"
    assert result.ret == pytest.ExitCode.OK

    for expression, expected in [("smoke", {"test_checkout[prod]", "test_unmarked_is_smoke"}),
                                 ("predeploy", {"test_backup_fresh"}),
                                 ("health and postdeploy", {"test_health[prod]"})]:
        selected = runpytest(project.pytester, "--env=staging,prod", "-m", expression,
                             "--collect-only", "-q")
        names = {line.split("::")[1] for line in selected.stdout.lines if "::" in line}
        assert {n.split("[")[0] for n in names} == {e.split("[")[0] for e in expected}, expression
        assert all(n in names for n in expected if "[" in n), (expression, names)


@pytest.mark.parametrize("workers", ["0", "4"])
def test_failing_python_checks_roll_back_once_with_yaml_checks(
        project: Project, server: LoopbackServer, workers: str) -> None:
    hook = f"/webhook/200/{uuid.uuid4().hex}"
    two_envs(project, server, hook=server.url + hook)
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: down, kind: health, request: {path: /status/503}}
        """)
    project.pytester.makepyfile(test_checks="""
        import pytest

        @pytest.mark.deploycheck(kind="smoke")
        @pytest.mark.parametrize("n", range(20))
        def test_broken(service, n):
            assert service("api").get("/status/500").status_code == 200
        """)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=21)
    assert rollbacks(project) == ["prod"]
    assert server.hits[hook] == 1
    report = gate(project)["prod"]
    assert report["verdict"] == "rolled_back"
    assert len(report["rollback"]["triggered_by"]) == 21
    assert "test_checks.py::test_broken[prod-7]" in report["rollback"]["triggered_by"]
    result.stdout.fnmatch_lines([
        "prod: rolled_back (0 passed, 21 failed, 0 skipped)",
        "  FAILED test_checks.py::test_broken[[]prod-*]  (test_checks.py:3; on_fail: rollback)",
        "         AssertionError: assert 500 == 200"])


def test_a_blocking_python_check_blocks_without_rollback(project: Project,
                                                         server: LoopbackServer) -> None:
    two_envs(project, server, hook=f"{server.url}/webhook/200/{uuid.uuid4().hex}")
    project.pytester.makepyfile(test_checks="""
        import pytest

        @pytest.mark.deploycheck(kind="checklist")
        def test_change_ticket_approved():
            raise RuntimeError("change ticket CHG-1 is not approved")
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert rollbacks(project) == []
    report = gate(project)["prod"]
    assert report["verdict"] == "blocked" and report["rollback"] is None
    assert report["checks"][0]["message"] == "RuntimeError: change ticket CHG-1 is not approved"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_check_whose_teardown_fails_fails_its_gate(project: Project, server: LoopbackServer,
                                                     workers: str) -> None:
    # Only a check's setup report describes it; a failing teardown's report must still be
    # told apart and charged to the right check, in the controller of an xdist run too.
    two_envs(project, server)
    project.pytester.makepyfile(test_checks="""
        import pytest

        @pytest.fixture
        def session_lock():
            yield
            raise RuntimeError("deploy lock could not be released")

        @pytest.mark.deploycheck(kind="checklist")
        def test_lock_taken(session_lock):
            pass

        @pytest.mark.deploycheck(kind="checklist")
        def test_ticket_approved():
            pass
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", "-p",
                       "xdist", "-n", workers)
    result.assert_outcomes(passed=2, errors=1)
    report = gate(project)["prod"]
    assert report["verdict"] == "blocked"
    outcomes = {check["name"]: (check["outcome"], check["message"], check["kind"])
                for check in report["checks"]}
    assert outcomes == {
        "test_lock_taken": ("failed", "RuntimeError: deploy lock could not be released",
                            "checklist"),
        "test_ticket_approved": ("passed", "", "checklist")}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_the_checks_timeout_fails_it_and_the_run_goes_on(project: Project,
                                                         server: LoopbackServer,
                                                         workers: str) -> None:
    two_envs(project, server, hook=f"{server.url}/webhook/200/{uuid.uuid4().hex}")
    hang = f"/hang/{uuid.uuid4().hex}"
    project.pytester.makepyfile(test_checks=f"""
        import time
        import pytest

        @pytest.mark.deploycheck(kind="smoke", timeout="500ms")
        def test_sleeps():
            time.sleep(30)

        @pytest.mark.deploycheck(kind="health", timeout=0.5)
        def test_reads_a_hanging_endpoint(service):
            service("api").get("{hang}", timeout=30)

        @pytest.mark.deploycheck(kind="smoke", timeout="5s")
        def test_fast_enough(service):
            assert service("api").get("/ok").status_code == 200
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=1, failed=2)
    assert elapsed < 15, elapsed
    assert rollbacks(project) == ["prod"]
    checks = {c["name"]: c for c in gate(project)["prod"]["checks"]}
    for name in ("test_sleeps", "test_reads_a_hanging_endpoint"):
        assert checks[name]["message"] == "timed out after 500ms (the check's timeout)"
        assert checks[name]["duration"] < 3
    assert gate(project)["prod"]["verdict"] == "rolled_back"


@pytest.mark.parametrize(("method", "workers"), [("signal", "0"), ("thread", "2")])
def test_pytest_timeout_is_a_backstop_that_counts_as_a_gate_failure(
        project: Project, server: LoopbackServer, method: str, workers: str) -> None:
    hook = f"/webhook/200/{uuid.uuid4().hex}"
    two_envs(project, server, hook=server.url + hook)
    project.pytester.makepyfile(test_checks="""
        import time

        def test_hangs(deploy_env):
            time.sleep(60)

        def test_fine(deploy_env):
            pass
        """)
    started = time.monotonic()
    # The thread method ends the process it runs in, so only under xdist (a worker dies and
    # the controller still decides) does the gate get to roll back.
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--timeout=1", f"--timeout-method={method}", "--gate-report=gate.json")
    assert time.monotonic() - started < 30
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert rollbacks(project) == ["prod"]
    assert server.hits[hook] == 1
    report = gate(project)["prod"]
    assert report["verdict"] == "rolled_back"
    assert report["rollback"]["triggered_by"] == ["test_checks.py::test_hangs[prod]"]
    hung = next(c for c in report["checks"] if c["name"] == "test_hangs")
    assert hung["outcome"] == "failed"
    assert ("Timeout" in hung["message"]) if method == "signal" else ("crashed" in
                                                                      hung["message"])


def test_metric_fixture_reads_prometheus(project: Project, server: LoopbackServer,
                                         prometheus: Prometheus) -> None:
    two_envs(project, server, extra=textwrap.indent(textwrap.dedent(f"""\
        metrics:
          prom: {{type: prometheus, url: "{prometheus.url}"}}
        """), "    "))
    project.pytester.makepyfile(test_checks="""
        import pytest

        @pytest.mark.deploycheck(kind="metric")
        def test_error_ratio(metric):
            prom = metric("prom")
            assert prom.query('dc_error_ratio{service="api"}') == pytest.approx(0.002)
            samples = prom.series('dc_error_ratio{service="api"}', "10m", step="1m")
            assert len(samples) >= 5
            assert all(s.value == pytest.approx(0.002) for s in samples)
            assert samples == sorted(samples, key=lambda s: s.timestamp)

        @pytest.mark.deploycheck(kind="metric")
        def test_web_breaches(metric):
            assert metric("prom").query('dc_error_ratio{service="web"}') < 0.01

        @pytest.mark.deploycheck(kind="metric", on_fail="warn")
        def test_several_series(metric):
            metric("prom").query("dc_error_ratio")

        @pytest.mark.deploycheck(kind="metric", on_fail="warn")
        def test_no_data(metric):
            metric("prom").query("dc_no_such_metric")

        @pytest.mark.deploycheck(kind="metric", on_fail="warn")
        def test_unknown_source(metric):
            metric("promm")
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.assert_outcomes(passed=4, failed=1)
    checks = {c["name"]: c for c in gate(project)["prod"]["checks"]}
    assert checks["test_error_ratio"]["outcome"] == "passed"
    assert checks["test_web_breaches"]["message"] == "AssertionError: assert 0.02 < 0.01"
    assert checks["test_several_series"]["message"].startswith("the query returned 2 series")
    assert checks["test_no_data"]["message"] == (
        f"no data for 'dc_no_such_metric' from prometheus {prometheus.url}")
    assert "unknown metric source 'promm'" in checks["test_unknown_source"]["message"]
    assert "Traceback" not in result.stdout.str()
    assert "pytest_deploycheck" not in result.stdout.str()


@pytest.mark.parametrize(("marker", "message"), [
    ('kind="smok"', "deploycheck(kind=...): 'smok' is not a kind (did you mean 'smoke'?)"),
    ('"smoke", "health"', "deploycheck(kind=...): takes the kind as its only positional"),
    ('on_fail="rollbak"', "deploycheck(on_fail=...): 'rollbak' is not one of rollback, block"),
    ('envs=["prd"]', "deploycheck(envs=...): unknown environment 'prd' (did you mean 'prod'?)"),
    ('envs="prod"', "deploycheck(envs=...): must be a list of environment names, not 'prod'"),
    ('severity="high"', "deploycheck(severity=...): 'high' is not one of blocker, critical"),
    ('timeout="soon"', "deploycheck(timeout=...): 'soon' is not a duration"),
    ('on_fial="warn"', "deploycheck(on_fial=...): unknown argument 'on_fial' (did you mean "
                       "'on_fail'?)"),
])
def test_a_bad_marker_is_a_collection_error_at_the_test(project: Project, server: LoopbackServer,
                                                        marker: str, message: str) -> None:
    two_envs(project, server)
    project.pytester.makepyfile(test_checks=f"""
        import pytest


        @pytest.mark.deploycheck({marker})
        def test_x(deploy_env):
            pass
        """)
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"test_checks.py:4: {message}*"])  # the marker's line
    assert "Traceback" not in result.stdout.str()
