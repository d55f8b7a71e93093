"""Before/after comparison of one deploy (SPEC §10): a baseline from this deploy's pre-deploy
run (``from: predeploy``, any source) or from the same query before the deploy started
(``before_deploy``, against a real Prometheus)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from conftest import Project, assert_bad_input, prometheus_env, runpytest
from metric_servers import Prometheus

# The value is what the file says: a stand-in for "count recent errors".
ENVIRONMENTS = """\
    environments:
      prod:
        metrics:
          files: {type: command, command: "cat {{ query }}"}
        rollback:
          - command: 'echo rolled back >> rollbacks.log'
    """
SUITE = """\
    checks:
      - name: recent errors
        kind: metric
        source: files
        query: errors.txt
        threshold: "< 100"
        baseline: {relative: "<= +50%", from: predeploy}
    """


def errors(project: Project, value: str) -> None:
    (project.path / "errors.txt").write_text(value + "\n")


def report(project: Project) -> dict[str, object]:
    found: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["n0", "n2"])
def test_the_post_deploy_value_is_compared_with_the_pre_deploy_one(
        project: Project, workers: list[str]) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "10")
    pre = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1", "-v",
                    *workers)
    pre.assert_outcomes(passed=1, deselected=0 if workers else 1)
    pre.stdout.fnmatch_lines(["*PASSED*", "  NOTE *recent errors (before the deploy)[[]prod[]]: "
                                          "recorded 10 as the pre-deploy value of deploy 'd1'"])
    errors(project, "14")  # same or a little more: passes
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d1",
                     *workers)
    post.assert_outcomes(passed=1, deselected=0 if workers else 1)
    errors(project, "31")  # three times as many errors after the deploy
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d1",
                     "--gate-report=gate.json", *workers)
    post.assert_outcomes(failed=1, deselected=0 if workers else 1)
    post.stdout.fnmatch_lines([
        "  baseline: 10 (recorded in the pre-deploy run of deploy 'd1' at *)",
        "  FAILED value 31 breaches <= 15 (baseline 10 <= +50%)"])
    assert report(project)["verdict"] == "rolled_back"


def test_without_the_pre_deploy_run_the_check_is_inconclusive(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "10")
    runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1")
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d2",
                     "--gate-report=gate.json", "-rs")
    post.assert_outcomes(skipped=1, deselected=1)
    post.stdout.fnmatch_lines(["*no pre-deploy value of this check for deploy 'd2' in *: run "
                               "the pre-deploy gate (-m predeploy) with the same --deploy-id "
                               "first, and carry the state dir from that job to this one"])
    assert report(project)["verdict"] == "inconclusive"
    assert not (project.path / "rollbacks.log").exists()


def test_the_pre_deploy_threshold_blocks(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "250")
    pre = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1",
                    "--gate-report=gate.json")
    pre.assert_outcomes(failed=1, deselected=1)
    assert report(project)["verdict"] == "blocked"
    assert not (project.path / "rollbacks.log").exists()


@pytest.mark.parametrize(("suite", "message"), [
    (SUITE.replace("from: predeploy", "from: predeploy, before_deploy: 5m"),
     "suites/release.yaml:7: checks[[]0[]].baseline.before_deploy: a baseline comes either "
     "'from: predeploy' or 'before_deploy', not both"),
    (SUITE.replace("from: predeploy", "before_deploy: 5m"),
     "suites/release.yaml:7: checks[[]0[]].baseline: 'before_deploy' needs a source with "
     "history*"),
    (SUITE.replace("kind: metric", "kind: metric\n        phase: predeploy"),
     "suites/release.yaml:4: checks[[]0[]].phase: a baseline 'from: predeploy' compares*"),
])
def test_bad_deploy_baselines_name_file_line_and_key(project: Project, suite: str,
                                                     message: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", suite)
    assert_bad_input(project, message, "--env=prod")


def test_before_deploy_compares_with_the_same_query_before_the_deploy_started(
        project: Project, prometheus: Prometheus) -> None:
    """``dc_spiky_ratio`` is 0.05 from 150 s to 120 s before the session started, 0.001
    otherwise: a deploy that started 121 s before sees the spike as its baseline."""
    prometheus_env(project, prometheus.url)
    project.suite("release.yaml", """\
        checks:
          - name: success ratio holds
            kind: metric
            query: dc_spiky_ratio
            baseline: {relative: ">= -10%", before_deploy: 9s}
        """)
    started = dt.datetime.fromtimestamp(prometheus.started - 121, dt.UTC).isoformat()
    result = runpytest(project.pytester, "--env=test", f"--deploy-started={started}",
                       "--gate-report=gate.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "  baseline: 0.05 (recorded as the avg of * samples in the 9s before the deploy "
        "started: * - *)",
        "  FAILED value 0.001 breaches >= 0.045 (baseline 0.05 >= -10%)"])
    check = report(project)["checks"][0]  # type: ignore[index]
    assert (check["value"], check["baseline"]) == (0.001, 0.05)


def test_before_deploy_reads_the_start_the_pre_deploy_run_recorded(
        project: Project, prometheus: Prometheus) -> None:
    prometheus_env(project, prometheus.url)
    project.suite("release.yaml", """\
        checks:
          - {name: ready, kind: checklist, command: "true"}
          - name: error ratio holds
            kind: metric
            query: dc_spiky_ratio
            baseline: {relative: "<= +10%", before_deploy: 1m}
        """)
    missing = runpytest(project.pytester, "--env=test", "-m", "postdeploy", "--deploy-id=d7",
                        "-rs")
    missing.assert_outcomes(skipped=1, deselected=1)
    missing.stdout.fnmatch_lines(["*no deploy start to compare before: pass --deploy-started*"])
    runpytest(project.pytester, "--env=test", "-m", "predeploy",
              "--deploy-id=d7").assert_outcomes(passed=1, deselected=1)
    state = json.loads((project.path / ".deploycheck" / "test.json").read_text())
    assert "started" in state["deploys"]["d7"]
    result = runpytest(project.pytester, "--env=test", "-m", "postdeploy", "--deploy-id=d7")
    result.assert_outcomes(passed=1, deselected=1)


def test_without_a_baseline_the_threshold_still_judges(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "5000")
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d9",
                     "--gate-report=gate.json")
    post.assert_outcomes(failed=1, deselected=1)
    assert report(project)["verdict"] == "rolled_back"


def test_a_repeated_pre_deploy_run_keeps_the_first_value(project: Project) -> None:
    """Run again after the deploy with the same id, it must not make the after the before."""
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "10")
    runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1")
    errors(project, "40")
    again = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1")
    again.stdout.fnmatch_lines(["  NOTE *: the pre-deploy value of deploy 'd1' stays 10, "
                                "recorded earlier (measured 40 now; a new deploy needs a new "
                                "id)"])
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d1")
    post.assert_outcomes(failed=1, deselected=1)
    state = (project.path / ".deploycheck" / "prod.json").read_text()
    assert "errors.txt" not in state  # the query is kept as a digest


def test_a_blocked_pre_deploy_run_records_nothing(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "250")
    runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1")
    errors(project, "10")
    runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1")
    errors(project, "40")
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d1")
    post.assert_outcomes(failed=1, deselected=1)


@pytest.mark.parametrize("state", ['{"version": 1, "baselines": {}, "deploys": []}',
                                   '{"version": 1, "baselines": {}, "deploys": {"d1": '
                                   '{"values": []}}}'])
def test_a_broken_state_file_is_named_and_never_rolls_back(project: Project,
                                                           state: str) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    errors(project, "10")
    (project.path / ".deploycheck").mkdir()
    (project.path / ".deploycheck" / "prod.json").write_text(state)
    pre = runpytest(project.pytester, "--env=prod", "-m", "predeploy", "--deploy-id=d1",
                    "--gate-report=gate.json")
    assert "Traceback" not in pre.stdout.str() + pre.stderr.str()
    assert report(project)["verdict"] == "blocked"
    post = runpytest(project.pytester, "--env=prod", "-m", "postdeploy", "--deploy-id=d1",
                     "--gate-report=gate.json", "-rs")
    post.stdout.fnmatch_lines(["*is not a deploycheck state file; delete it to start over*"])
    assert report(project)["verdict"] == "inconclusive"
    assert not (project.path / "rollbacks.log").exists()


def test_a_deploy_start_in_the_future_is_a_usage_error(project: Project) -> None:
    project.environments(ENVIRONMENTS)
    project.suite("release.yaml", SUITE)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    result = runpytest(project.pytester, "--env=prod", f"--deploy-started={later}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploy-started: * is in the future*"])
