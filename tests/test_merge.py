"""Gates bigger than one job: shards run with ``--rollback defer``, then ``python -m
pytest_deploycheck merge`` decides once, rolls back once and notifies once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer


def shard_project(project: Project, server: LoopbackServer) -> None:
    project.environments(textwrap.dedent(f"""\
        environments:
          prod:
            services: {{api: {{url: "{server.url}"}}}}
            rollback:
              - {{name: undo, command: "echo undo >> rollbacks.log"}}
            notify:
              - {{name: tell, command: "echo {{{{ verdict }}}} >> notified.log"}}
        """))
    project.suite("eu.yaml", """\
        service: api
        checks:
          - {name: eu up, kind: health, request: {path: /ok}}
        """)
    project.suite("us.yaml", """\
        service: api
        checks:
          - {name: us up, kind: health, request: {path: /ok}}
          - {name: us checkout, kind: smoke, request: {path: /status/503}}
        """)


def merge(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_deploycheck", "merge", *args],
                          cwd=project.path, capture_output=True, text=True, timeout=120)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_shards_defer_and_the_merge_decides_once(project: Project,
                                                 server: LoopbackServer) -> None:
    shard_project(project, server)
    eu = runpytest(project.pytester, "--env=prod", "--rollback=defer", "--gate-report=eu.json",
                   "suites/eu.yaml")
    eu.assert_outcomes(passed=1)
    us = runpytest(project.pytester, "--env=prod", "--rollback=defer", "--gate-report=us.json",
                   "suites/us.yaml", "-p", "xdist", "-n", "2")
    us.assert_outcomes(passed=1, failed=1)
    us.stdout.fnmatch_lines(["prod: rollback_deferred (1 passed, 1 failed, 0 skipped)",
                             "  ROLLBACK deferred to the merge of the shards (--rollback defer);*"])
    assert json.loads((project.path / "us.json").read_text())["verdict"] == "rollback_deferred"
    assert lines(project.path / "rollbacks.log") == lines(project.path / "notified.log") == []

    done = merge(project, "eu.json", "us.json", "--shards", "2", "--gate-report", "gate.json",
                 "--audit-log", "audit.jsonl")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "prod: rolled_back (2 passed, 1 failed, 0 skipped)" in done.stdout
    assert lines(project.path / "rollbacks.log") == ["undo"]
    assert lines(project.path / "notified.log") == ["rolled_back"]
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert sorted(c["name"] for c in report["checks"]) == ["eu up", "us checkout", "us up"]
    assert report["rollback"]["triggered_by"] == ["us::us checkout[prod]"]
    events = [json.loads(line)["event"] for line in lines(project.path / "audit.jsonl")]
    assert events.count("rollback_decision") == 1 and events.count("verdict") == 1


def test_a_missing_or_unreadable_shard_is_never_a_pass(project: Project,
                                                       server: LoopbackServer) -> None:
    shard_project(project, server)
    runpytest(project.pytester, "--env=prod", "--rollback=defer", "--gate-report=eu.json",
              "suites/eu.yaml").assert_outcomes(passed=1)
    done = merge(project, "eu.json", "--shards", "2", "--gate-report", "gate.json")
    assert done.returncode == 1
    assert "prod: blocked" in done.stdout
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked" and "1 of 2 shards sent no report of prod" in report["errors"]
    (project.path / "us.json").write_text('{"verdict": "pass')
    done = merge(project, "eu.json", "us.json")
    assert done.returncode == 1 and "prod: blocked" in done.stdout
    assert "cannot read its report" in done.stdout
    done = merge(project, "eu.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "prod: passed (1 passed, 0 failed, 0 skipped)" in done.stdout
    # The shard notified nobody; each merge did, with its verdict.
    assert lines(project.path / "notified.log") == ["blocked", "blocked", "passed"]


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_deferring_shard_runs_nothing_also_with_rollback_fast(project: Project,
                                                                server: LoopbackServer,
                                                                workers: str) -> None:
    shard_project(project, server)
    result = runpytest(project.pytester, "--env=prod", "--rollback=defer", "--rollback-fast",
                       "--gate-report=us.json", "suites/us.yaml", "-p", "xdist", "-n", workers)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert json.loads((project.path / "us.json").read_text())["verdict"] == "rollback_deferred"
    assert lines(project.path / "rollbacks.log") == lines(project.path / "notified.log") == []


def test_the_merge_counts_shards_per_environment_and_never_rolls_back_twice(
        project: Project, server: LoopbackServer) -> None:
    shard_project(project, server)
    args = ("--env=prod", "--rollback=defer", "--deploy-id=release-7")
    runpytest(project.pytester, *args, "--gate-report=eu.json", "suites/eu.yaml")
    runpytest(project.pytester, *args, "--gate-report=us.json", "suites/us.yaml")
    # The same report twice (or by another path) is one shard: the second is missing.
    done = merge(project, "eu.json", "./eu.json", "--shards", "2")
    assert done.returncode == 1 and "prod: blocked" in done.stdout
    assert "the same report as" in done.stdout and "1 of 2 shards sent no report of prod" in done.stdout
    assert lines(project.path / "rollbacks.log") == []
    # A merge rolls back once per deploy: the job run again does not roll back again.
    for _ in range(2):
        done = merge(project, "eu.json", "us.json", "--shards", "2")
        assert done.returncode == 1
    assert lines(project.path / "rollbacks.log") == ["undo"]
    assert "a merge of deploy release-7 rolled prod back already" in done.stdout
    # A shard that decided itself (no --rollback defer) rolled back: never again here.
    runpytest(project.pytester, "--env=prod", "--deploy-id=release-8", "--gate-report=us.json",
              "suites/us.yaml")
    assert lines(project.path / "rollbacks.log") == ["undo", "undo"]
    done = merge(project, "eu.json", "us.json")
    assert "decided by the shard itself (run shards with --rollback defer)" in done.stdout
    assert "the shards gated different deploys (release-7, release-8)" in done.stdout
    assert lines(project.path / "rollbacks.log") == ["undo", "undo"]


@pytest.mark.parametrize("report", [
    '{"env": "prod", "verdict": "passed", "checks": 5, "errors": 5}',
    '{"env": "prod", "verdict": "passed", "checks": [null, {"id": 1}]}',
    '{"env": "prod", "verdict": "passed", "checks": [{"id": "a", "suite": "s", "name": "a", "kind": "health", "outcome": "error", "on_fail": "rollback", "line": 1e400}]}',
    '{"env": "prod", "verdict": "inconclusive", "checks": []}',
    '{"environments": []}',
    '[1, 2]',
])
def test_a_hostile_shard_report_blocks_without_a_traceback(project: Project,
                                                           server: LoopbackServer,
                                                           report: str) -> None:
    shard_project(project, server)
    runpytest(project.pytester, "--env=prod", "--rollback=defer", "--gate-report=eu.json",
              "suites/eu.yaml")
    (project.path / "odd.json").write_text(report)
    done = merge(project, "eu.json", "odd.json", "--gate-report", "gate.json")
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert json.loads((project.path / "gate.json").read_text())["verdict"] != "passed"
    done = merge(project, "eu.json", "--environments", "nosuch.yaml")
    assert done.returncode == 4 and "environments file not found" in done.stderr
