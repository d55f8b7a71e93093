"""The examples of the README and the documentation (docs/), and this repository's own suites,
run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project, copy_repo_suites, free_port, git, runpytest
from db_servers import PostgreSQL
from metric_servers import Prometheus, start_alertmanager, stop_process
from pytest_deploycheck.demo.server import DemoServer
from servers import LoopbackServer

ROOT = Path(__file__).parent.parent


def documents() -> list[Path]:
    """Where examples are shown: the README and the documentation's pages."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def readme_examples(kind: str) -> list[str]:
    """The fenced blocks after each ``<!-- readme-test: KIND -->`` marker of the README and the
    documentation, in the order of :func:`documents`."""
    pattern = rf"<!-- readme-test: {kind} -->\n```\w+\n(.*?)```"
    found = [example for path in documents()
             for example in re.findall(pattern, path.read_text(), flags=re.S)]
    assert found, f"no {kind} example in the README or docs/"
    return found


def demo_environments(project: Project, demo: DemoServer) -> None:
    url = f"http://127.0.0.1:{demo.server_port}"
    project.environments(f"""
        environments:
          local:
            vars: {{expected_version: "1.2.3"}}
            services: {{api: {{url: "{url}"}}, console: {{url: "{url}"}}}}
            metrics: {{default: {{type: http, url: "{url}/stats"}}}}
          staging: {{extends: local}}
          production: {{extends: local}}
    """)


def test_readme_suite_example_passes_against_the_demo(project: Project, demo: DemoServer) -> None:
    demo_environments(project, demo)
    for index, example in enumerate(readme_examples("suite")):
        (project.path / "suites").mkdir(exist_ok=True)
        (project.path / "suites" / f"readme{index}.yaml").write_text(example)
    result = runpytest(project.pytester, "--env=local", "-v")
    result.assert_outcomes(passed=4)


def test_readme_python_example_passes_against_the_demo(project: Project, demo: DemoServer) -> None:
    demo_environments(project, demo)
    for index, example in enumerate(readme_examples("python")):
        (project.path / f"test_readme{index}.py").write_text(example)
    result = runpytest(project.pytester, "--env=local", "-v", "--gate-report=gate.json")
    result.assert_outcomes(passed=3)
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "passed"
    assert {(c["name"], c["kind"], c["on_fail"]) for c in report["checks"]} == {
        ("test_workflow_detail_matches_listing", "smoke", "rollback"),
        ("test_error_rate_stays_low", "metric", "rollback"),
        ("test_release_version_is_given", "checklist", "block")}
    predeploy = runpytest(project.pytester, "--env=local", "-m", "predeploy")
    predeploy.assert_outcomes(passed=1, deselected=2)


def test_readme_environments_example_resolves_every_environment(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    (project.path / "environments.yaml").write_text(readme_examples("environments")[0])
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, request: {path: /health}, "
                            "service: api}\n")
    monkeypatch.setenv("STAGING_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RELEASE_VERSION", "2.0.0")
    monkeypatch.setenv("PROD_API_TOKEN", "tok-abcdef")
    result = runpytest(project.pytester, "--env=local,staging,production", "--collect-only",
                       "-q", "--no-start")
    result.stdout.fnmatch_lines(["*a[[]local[]]", "*a[[]staging[]]", "*a[[]production[]]"])
    monkeypatch.delenv("PROD_API_TOKEN")
    result = runpytest(project.pytester, "--env=production", "--collect-only", "--no-start")
    result.stdout.fnmatch_lines(["*environments.yaml:* environment variable PROD_API_TOKEN is "
                                 "not set: set PROD_API_TOKEN"])


def test_readme_metric_example_passes_against_prometheus(
        project: Project, prometheus: Prometheus, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_URL", prometheus.url)
    (project.path / "environments.yaml").write_text(readme_examples("metric-environments")[0])
    suite = readme_examples("metric-suite")[0]
    # Watch for 2 s instead of the example's 5 minutes; everything else runs as written.
    assert "observe: {duration: 5m, interval: 30s" in suite
    suite = suite.replace("duration: 5m, interval: 30s", "duration: 2s, interval: 1s")
    project.suite("post-deploy-metrics.yaml", suite)
    result = runpytest(project.pytester, "--env=production", "-m", "metric")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["  NOTE *p99 under 500ms while we watch[[]production[]]: no "
                                 "baseline: the state dir * was empty (a fresh CI runner? *); "
                                 "recorded 0.236964 as the baseline"])


def test_readme_evidence_example_against_postgresql_alertmanager_and_chromium(
        project: Project, postgresql: PostgreSQL, demo: DemoServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's SQL, alerts and browser checks, as written, against a real PostgreSQL (a
    read-only role on an ``orders`` database), a real Alertmanager and the demo in Chromium;
    then the demo's page throws and a critical alert fires, and exactly those checks fail."""
    import datetime as dt

    import psycopg

    with psycopg.connect(postgresql.url("postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE orders")
        admin.execute("CREATE ROLE deploy_ro LOGIN PASSWORD 'ro-pw-5150'")
    with psycopg.connect(postgresql.url("orders"), autocommit=True) as owner:
        owner.execute("""
            CREATE TABLE schema_migrations (version text, applied_at timestamptz);
            INSERT INTO schema_migrations VALUES ('001', now()), ('002', now());
            CREATE TABLE orders (id int, region text);
            INSERT INTO orders VALUES (1, 'eu'), (2, 'us');
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO deploy_ro;
        """)
    alertmanager = start_alertmanager(tmp_path)
    try:
        ends = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        alertmanager.post("/api/v2/alerts", [{"labels": {"alertname": "Watchdog",
                                                         "severity": "critical"},
                                              "endsAt": ends}])
        for name, value in {"WEB_URL": f"http://127.0.0.1:{demo.server_port}",
                            "DB_PASSWORD": "ro-pw-5150", "DB_HOST": f"127.0.0.1:{postgresql.port}",
                            "ALERTMANAGER_URL": alertmanager.url}.items():
            monkeypatch.setenv(name, value)
        (project.path / "environments.yaml").write_text(readme_examples("evidence-environments")[0])
        project.suite("post-deploy-evidence.yaml", readme_examples("evidence-suite")[0])
        result = runpytest(project.pytester, "--env=production")
        result.assert_outcomes(passed=5)
        result.stdout.fnmatch_lines(["  NOTE *no critical alerts[[]production[]]: ignored: Watchdog"])

        demo.state.faults.page_error = True
        alertmanager.post("/api/v2/alerts", [{"labels": {"alertname": "OrdersStuck",
                                                         "severity": "page"},
                                              "annotations": {"summary": "no order in 10m"},
                                              "endsAt": ends}])
        result = runpytest(project.pytester, "--env=production")
        result.assert_outcomes(passed=2, failed=3)
        out = result.stdout.str()
        assert "ro-pw-5150" not in out
        result.stdout.fnmatch_lines([
            "*FAILED*no critical alerts[[]production[]]*",
            "*1 alert(s) active/unprocessed: OrdersStuck",
            "*FAILED*the app renders without errors[[]production[]]*",
            "*uncaught exception: ReferenceError: undefinedRenderer is not defined",
            "*FAILED*sign in works[[]production[]]*"])
    finally:
        stop_process(alertmanager.process)


def readme_checklist_project(project: Project, server: LoopbackServer) -> None:
    """The README's checklist suite and windows, with everything its checks look at: a backup
    script, a fresh dump, a tagged main pushed to its upstream, and a status page."""
    environments = readme_examples("windows")[0]
    assert "https://status.example.com" in environments
    (project.path / "environments.yaml").write_text(
        environments.replace("https://status.example.com", f"{server.url}/statuspage/0"))
    project.suite("predeploy.yaml", readme_examples("checklist-suite")[0])
    scripts = project.path / "scripts"
    scripts.mkdir()
    (scripts / "verify_backup.sh").write_text(
        '#!/bin/sh\ntest "$BACKUP_BUCKET" = db-backups-production && '
        'echo "Backup verified in $BACKUP_BUCKET ($1 $2)"\n')
    (scripts / "verify_backup.sh").chmod(0o755)
    for folder, name in (("backups", "db-2026-11-22.dump"), ("config", "release.yaml")):
        (project.path / folder).mkdir()
        (project.path / folder / name).write_text("x\n")
    (project.path / ".gitignore").write_text(".deploycheck/\n")
    origin = project.path.parent / f"{project.path.name}-origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    git(project.path, "init", "-q", "-b", "main")
    git(project.path, "add", "-A")
    git(project.path, "commit", "-q", "-m", "release 1.2.3")
    git(project.path, "tag", "v1.2.3")
    git(project.path, "remote", "add", "origin", str(origin))
    git(project.path, "push", "-q", "-u", "origin", "main")


def test_readme_checklist_example_passes_when_everything_is_in_order(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    readme_checklist_project(project, server)
    monkeypatch.setenv("PROD_API_TOKEN", "tok-abcdef")
    monkeypatch.setenv("DD_API_KEY", "dd-abcdef")
    result = runpytest(project.pytester, "--env=production", "-m", "predeploy",
                       "--deploy-time=2026-11-23T15:00:00Z",
                       "--ack=predeploy::code reviewed and approved")
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines([
        "production: passed (7 passed, 0 failed, 0 skipped)",
        "  NOTE *deploy window[[]production[]]: deploy window open at 2026-11-23T15:00:00Z: "
        "inside mon-thu 14:00-17:00 UTC, Mon 2026-11-23 15:00 UTC until 17:00",
        "  NOTE *code reviewed and approved[[]production[]]: acknowledged (--ack predeploy::code"
        " reviewed and approved): Two approvals on the release PR for 1.2.3",
    ])


def test_readme_checklist_example_blocks_in_the_freeze_without_secrets_or_approval(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    readme_checklist_project(project, server)
    monkeypatch.delenv("PROD_API_TOKEN", raising=False)
    monkeypatch.setenv("DD_API_KEY", "dd-abcdef")
    result = runpytest(project.pytester, "--env=production", "-m", "predeploy",
                       "--deploy-time=2026-12-20T10:00:00+01:00")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines([
        "  evaluated at: 2026-12-20T09:00:00Z",
        "  FAILED inside blackout 'holiday freeze' (12-15 - 01-05 UTC every year)",
        "  next allowed window: Wed 2027-01-06 14:00 UTC until 17:00 (in 17d 5h)",
    ])
    result.stdout.fnmatch_lines([
        "production: blocked (4 passed, 3 failed, 0 skipped)",
        "*secrets present*", "         1 of 2 environment variables missing: PROD_API_TOKEN "
        "(not set)",
        "*deploy window*", "*",
        "*code reviewed and approved*", "         not acknowledged: Two approvals on the release "
        "PR for 1.2.3",
    ])


@pytest.mark.parametrize(("env", "instant", "is_open"), [
    ("production", "2026-11-24T10:00:00Z", False),     # the database migration
    ("production", "2026-11-24T11:30:00Z", False),     # migration over, but before 14:00
    ("production", "2026-11-24T14:00:00Z", True),
    ("eu-production", "2026-11-24T20:59:00Z", False),  # Tuesday 21:59 CET
    ("eu-production", "2026-11-24T21:00:00Z", True),   # 22:00 CET: the overnight window opens
    ("eu-production", "2026-11-25T00:59:00Z", True),   # Wednesday 01:59 CET
    ("eu-production", "2026-11-25T01:00:00Z", False),  # 02:00 CET
    ("eu-production", "2026-11-27T09:00:00Z", False),  # Friday 10:00 CET: no Friday deploys
    ("eu-production", "2026-11-26T09:00:00Z", True),   # Thursday 10:00 CET
    ("eu-production", "2026-07-02T07:30:00Z", True),   # Thursday 09:30 CEST (summer time)
    ("eu-production", "2026-12-31T10:00:00Z", False),  # the freeze
])
def test_readme_windows_example_expresses_the_runbook_schedules(
        project: Project, server: LoopbackServer, env: str, instant: str, is_open: bool) -> None:
    readme_checklist_project(project, server)
    project.suite("predeploy.yaml", "checks:\n  - {name: window, kind: checklist, window: true}\n")
    result = runpytest(project.pytester, f"--env={env}", f"--deploy-time={instant}")
    result.assert_outcomes(**{"passed" if is_open else "failed": 1})


@pytest.fixture
def release(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the deploy pipeline sets (``./dev gate`` does the same)."""
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.3")


@pytest.mark.usefixtures("release")
def test_repo_suites_pass_against_local(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(free_port()))
    result = runpytest(project.pytester, "--env=local")
    result.assert_outcomes(passed=20, deselected=1)
    result.stdout.fnmatch_lines(["*deploycheck*", "local: passed (20 passed, 0 failed, 0 skipped)"])


def test_repo_checklist_blocks_a_deploy(project: Project, demo: DemoServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    monkeypatch.delenv("DEPLOY_VERSION", raising=False)
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--backup-age-hours", "30", "--incident",
                    "workflow runs delayed"], check=True, capture_output=True)
    (project.path / "hotfix.py").write_text("print('untested')\n")
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "predeploy")
    result.assert_outcomes(passed=2, failed=4, deselected=15)
    result.stdout.fnmatch_lines([
        "local: blocked (2 passed, 4 failed, 0 skipped)",
        "  FAILED *backup verified[[]local[]]*",
        "         exit code 1, expected 0",
        "  FAILED *release version given[[]local[]]*",
        "         1 of 1 environment variables missing: DEPLOY_VERSION (not set)",
        "  FAILED *no open incidents[[]local[]]*",
        "         json length(incidents): expected 0, got 1",
        "  FAILED *working tree clean[[]local[]]*",
        "         working tree not clean (1 changed or untracked)",
    ])
    result.stdout.fnmatch_lines(["    Backup backup-* NOT verified: it is 30.0h old (max 24h)"])


@pytest.mark.usefixtures("release")
@pytest.mark.parametrize(("instant", "outcome", "line"), [
    ("2026-11-24T15:00:00Z", "passed", "*deploy window open at 2026-11-24T15:00:00Z: inside "
     "mon-thu 14:00-17:00 UTC*"),
    ("2026-11-27T15:00:00Z", "failed", "  FAILED inside fri all day UTC, which is for emergency "
     "deploys only"),
    ("2026-12-22T15:00:00Z", "failed", "  next allowed window: Wed 2027-01-06 14:00 UTC until "
     "17:00 (in 14d 23h)"),
])
def test_repo_production_windows_follow_the_change_calendar(
        project: Project, monkeypatch: pytest.MonkeyPatch, instant: str, outcome: str,
        line: str) -> None:
    copy_repo_suites(project)
    for name in ("PROD_API_URL", "PROD_CONSOLE_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("PROD_API_TOKEN", "unused")
    result = runpytest(project.pytester, "--env=production", "-k", "window",
                       f"--deploy-time={instant}")
    result.assert_outcomes(**{outcome: 1}, deselected=15)
    result.stdout.fnmatch_lines([line])


def test_repo_suites_catch_an_unhealthy_component(project: Project, demo: DemoServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--unhealthy", "queue", "--latency-ms", "50"],
                   check=True, capture_output=True)
    # Shorten the readiness wait: the fault is not going away.
    suite = project.path / "suites" / "control-plane-health.yaml"
    suite.write_text(suite.read_text().replace("until: 10s", "until: 1s"))
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "health")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "  FAILED status: expected 200, got 503",
        '  FAILED json checks.*: expected every element == "healthy", got ["healthy", '
        '"unhealthy", "healthy"]',
    ])


def test_repo_gate_rolls_the_demo_back_once(project: Project, demo: DemoServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--unhealthy", "queue"], check=True,
                   capture_output=True)
    suite = project.path / "suites" / "control-plane-health.yaml"
    suite.write_text(suite.read_text().replace("until: 10s", "until: 1s"))
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "health",
                       "--gate-report=gate.json", "--audit-log=audit.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "local: rolled_back (2 passed, 1 failed, 0 skipped)",
        "  FAILED *health endpoint reports healthy[[]local[]]  (suites/control-plane-health.yaml:"
        "6; on_fail: rollback)",
        "  ROLLBACK triggered by control-plane-api::health endpoint reports healthy[[]local[]]",
        "    command 'redeploy previous release': succeeded in *s",
    ])
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert len(report["rollback"]["actions"]) == 1
    actions = [json.loads(line) for line in (project.path / "audit.jsonl").read_text()
               .splitlines() if json.loads(line)["event"] == "rollback_action"]
    assert len(actions) == 1
    assert httpx.get(f"http://127.0.0.1:{demo.server_port}/health").status_code == 200


def test_repo_metric_checks_catch_a_rising_error_rate(project: Project, demo: DemoServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--error-rate", "0.25"],
                   check=True, capture_output=True)
    for _ in range(8):
        httpx.get(f"http://127.0.0.1:{demo.server_port}/v1/workflows")
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "metric")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["  query: error_rate", "  rule: < 1%",
                                 "  measurement 1 at *: breach (1 of 1 samples breach < 1% *)",
                                 "  FAILED 1 breaches (failure_limit 0)*"])


def test_readme_lifecycle_example_announces_gates_and_notifies(
        project: Project, demo: DemoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    environments, = readme_examples("lifecycle-environments")
    suite, = readme_examples("lifecycle-suite")
    url = f"http://127.0.0.1:{demo.server_port}"
    project.environments(environments.replace("http://127.0.0.1:8765", url))
    project.suite("release.yaml", suite)
    monkeypatch.setenv("DEPLOY_ACTOR", "alice")
    facts = ["--deploy-version=1.2.3", "--deploy-commit=0123456789abcdef"]
    pre = runpytest(project.pytester, "--env=local", "-m", "predeploy", *facts)
    pre.assert_outcomes(passed=1, deselected=3)
    post = runpytest(project.pytester, "--env=local", "-m", "postdeploy", "-rs", *facts)
    post.assert_outcomes(passed=2, skipped=1, deselected=1)
    post.stdout.fnmatch_lines(["SKIPPED * if: {{ vars.migration }} is false"])
    log = (project.path / "deploys.log").read_text().splitlines()
    assert log[0] == "Deploying demo-api 1.2.3 (commit 0123456) by alice"
    assert re.fullmatch(r"1\.2\.3 is live after \S+: error rate 0(\.0+)?", log[1]), log[1]
    assert len(log) == 2
    import httpx

    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", "fault", "--port",
                    str(demo.server_port), "--error-rate", "0.5"], check=True, capture_output=True)
    for _ in range(4):
        httpx.get(f"{url}/v1/workflows")
    failed = runpytest(project.pytester, "--env=local", "-m", "postdeploy", *facts)
    failed.assert_outcomes(passed=1, failed=1, skipped=1, deselected=1)
    assert (project.path / "deploys.log").read_text().splitlines()[2:] == [
        'postdeploy gate failed: ["release::error rate under 1%[local]"]']


def test_readme_rollback_targets_example_rolls_back_only_the_failed_service(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    example, = readme_examples("rollback-targets")
    # The platforms' CLIs are stand-ins here: the api's rollback fails, its fallbacks run.
    example = (example.replace("https://api.example.com", f"{server.url}/status/503")
               .replace("https://www.example.com", server.url)
               .replace("[kubectl, rollout, undo, deployment/api]", "'echo kubectl >> log; exit 1'")
               .replace('"scripts/redeploy.sh {{ vars.previous_tag }}"',
                        '"echo redeploy {{ vars.previous_tag }} >> log"')
               .replace("[vercel, rollback, --yes]", "'echo vercel >> log'")
               .replace('command: \'echo "rolled back', 'command: \'echo >> log "rolled back'))
    (project.path / "environments.yaml").write_text(example)
    monkeypatch.setenv("MAINTENANCE_HOOK_URL", f"{server.url}/webhook/200/maintenance")
    project.suite("s.yaml", "checks:\n"
                            "  - {name: api up, kind: health, service: api, request: {path: /}}\n"
                            "  - {name: web up, kind: health, service: web, request: {path: /ok}}\n")
    result = runpytest(project.pytester, "--env=production", "--gate-report=gate.json")
    result.assert_outcomes(passed=1, failed=1)
    assert (project.path / "log").read_text().splitlines() == [
        "kubectl", "redeploy v1.2.2", 'rolled back production: ["s::api up[production]"]']
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert [(a["name"], a["outcome"]) for a in report["rollback"]["actions"]] == [
        ("roll back the api", "failed"), ("redeploy the previous tag", "succeeded"),
        ("maintenance mode", "succeeded"), ("roll back the web front end", "skipped"),
        ("tell the channel", "succeeded")]


def _demo(port: int, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", *args, "--port", str(port)],
                   check=True, capture_output=True)


def test_readme_whole_deploy_on_the_demo(project: Project, demo: DemoServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's command sequence, then each of its failure paths, on the demo."""
    example, = readme_examples("whole-deploy")
    assert "-m predeploy" in example and "deploy --port 8765 --version 1.2.4" in example
    copy_repo_suites(project)
    port = demo.server_port
    monkeypatch.setenv("DEMO_PORT", str(port))
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.4")
    monkeypatch.setenv("DEPLOYCHECK_DEPLOY_ID", "demo-1")
    monkeypatch.setenv("DEPLOY_ACTOR", "alice")
    pre = runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m", "predeploy",
                    "--gate-report=.deploycheck/gate.json")
    assert json.loads((project.path / ".deploycheck" / "gate.json").read_text())["verdict"] == "passed", \
        pre.stdout.str()
    _demo(port, "deploy", "--version", "1.2.4")
    post = runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m",
                     "postdeploy", "--gate-report=.deploycheck/gate.json")
    assert json.loads((project.path / ".deploycheck" / "gate.json").read_text())["verdict"] == "passed", \
        post.stdout.str()
    log = (project.path / ".deploycheck" / "deploys.log").read_text().splitlines()
    assert re.fullmatch(r"demo-1: deploying 1\.2\.4 \(\w{7}\) by alice", log[0]), log
    assert re.fullmatch(r"demo-1: postdeploy passed, p99 [\d.]+ ms \(before: [\d.]+\)",
                        log[1]), log
    assert len(log) == 2, log

    # A regression against the pre-deploy snapshot: rolled back, and verified.
    _demo(port, "rollback")
    monkeypatch.setenv("DEPLOYCHECK_DEPLOY_ID", "demo-2")
    runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m", "predeploy")
    _demo(port, "deploy", "--version", "1.2.4", "--latency-ms", "300")
    post = runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m",
                     "postdeploy", "--gate-report=.deploycheck/gate.json")
    report = json.loads((project.path / ".deploycheck" / "gate.json").read_text())
    assert report["verdict"] == "rolled_back", post.stdout.str()
    assert "deploy-comparison::p99 within 100 ms of before the deploy[local]" in \
        report["rollback"]["triggered_by"]
    assert [v["outcome"] for v in report["rollback"]["verification"]] == ["passed"]

    # A rollback that does not verify: it goes back to 1.2.4, not 1.2.3.
    monkeypatch.setenv("DEPLOYCHECK_DEPLOY_ID", "demo-3")
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.5")
    _demo(port, "deploy", "--version", "1.2.4")
    runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m", "predeploy")
    _demo(port, "deploy", "--version", "1.2.5", "--unhealthy", "database")
    post = runpytest(project.pytester, "--env=local", "suites", "--no-start", "-m",
                     "postdeploy", "--gate-report=.deploycheck/gate.json")
    report = json.loads((project.path / ".deploycheck" / "gate.json").read_text())
    assert report["verdict"] == "rollback_failed", post.stdout.str()
    post.stdout.fnmatch_lines(["    NOT VERIFIED deploy-comparison::the previous release is "
                               "live again[[]local[]]: failed*"])


def test_repo_staged_rollout_on_the_demo(project: Project, demo: DemoServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    copy_repo_suites(project)
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.4")
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "rollout")
    result.assert_outcomes(passed=3, deselected=21)
    assert demo.state.version == "1.2.4"
    _demo(demo.server_port, "rollback")  # 1.2.3 again, as before the rollout
    # A slow canary at half the traffic: the stage fails, the demo goes back, verified.
    monkeypatch.setenv("DEMO_CANARY_LATENCY_MS", "800")
    result = runpytest(project.pytester, "--env=local", "--no-start", "-m", "rollout", "-rs",
                       "--gate-report=.deploycheck/gate.json")
    result.assert_outcomes(passed=1, failed=1, skipped=1, deselected=21)
    report = json.loads((project.path / ".deploycheck" / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert report["rollback"]["triggered_by"] == ["rollout::50%[local]"]
    assert [v["outcome"] for v in report["rollback"]["verification"]] == ["passed"]
    result.stdout.fnmatch_lines(["SKIPPED * stage '50%' failed: the rollout stopped there"])


def test_the_repo_suites_lint_for_production_without_its_secrets(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pull request's job: production's suites and environment checked with none of its
    variables set; an error in a suite is reported once, at its line."""
    for name in ("PROD_API_URL", "PROD_API_TOKEN", "PROD_CONSOLE_URL", "DEPLOY_VERSION"):
        monkeypatch.delenv(name, raising=False)
    copy_repo_suites(project)
    result = runpytest(project.pytester, "--env=production", "--collect-only", "-q",
                       "--deploycheck-lint", "suites")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert "tests collected" in result.stdout.str()
    result = runpytest(project.pytester, "--env=production", "--collect-only", "suites")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*environment variable * is not set*",
                                 "the same error as suites/* (above)"])
    (project.path / "suites" / "api-smoke.yaml").write_text(
        (project.path / "suites" / "api-smoke.yaml").read_text().replace(
            "kind: smoke", "kind: smok", 1))
    result = runpytest(project.pytester, "--env=production", "--collect-only",
                       "--deploycheck-lint", "suites")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["suites/api-smoke.yaml:*kind*smok*"])
    assert "not set" not in result.stdout.str()
    result = runpytest(project.pytester, "--env=production", "--deploycheck-lint", "suites")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploycheck-lint checks the files and runs nothing: use "
                                 "it with --collect-only"])


def test_readme_argo_and_flagger_recipes_ask_what_the_gate_answers(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipes' YAML parses; the Job's pytest command line is one the plugin accepts (run
    here with --collect-only on this repository's suites); the web provider and Flagger ask
    the webhook's /gate with the keys it reads and read the key it answers."""
    from urllib.parse import parse_qs, urlsplit

    import yaml

    job = yaml.safe_load(readme_examples("argo-job")[0])
    (container,) = job["spec"]["metrics"][0]["provider"]["job"]["spec"]["template"]["spec"][
        "containers"]
    argv = [arg.replace("{{args.env}}", "local") for arg in container["command"]]
    assert argv[0] == "pytest" and "--rollback=off" in argv
    copy_repo_suites(project)
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.3")
    argv = [arg if not arg.startswith("--gate-report=") else "--gate-report=gate.json"
            for arg in argv[1:]]
    result = runpytest(project.pytester, *argv, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()

    web = yaml.safe_load(readme_examples("argo-web")[0])["spec"]["metrics"][0]
    url = urlsplit(web["provider"]["web"]["url"])
    assert url.path == "/gate" and set(parse_qs(url.query)) == {"env", "markers"}
    assert web["provider"]["web"]["jsonPath"] == "{$.passed}"
    assert web["successCondition"] == "result == true"

    canary = yaml.safe_load(readme_examples("flagger")[0])
    (hook,) = canary["spec"]["analysis"]["webhooks"]
    assert urlsplit(hook["url"]).path == "/gate" and set(hook["metadata"]) <= {"env", "markers", "args"}
    from pytest_deploycheck.webhook import markers_ok

    assert markers_ok(hook["metadata"]["markers"])


def test_lint_placeholders_stand_where_urls_hosts_and_numbers_stand(project: Project) -> None:
    project.environments("""\
        environments:
          production:
            timeout: "${PROD_TIMEOUT}"
            services:
              api: {url: "${PROD_API_URL}", timeout: "${API_TIMEOUT}"}
            metrics:
              db: {type: sql, url: "postgresql://deploy:${DB_PASSWORD}@${DB_HOST}:${DB_PORT}/app"}
        """)
    project.suite("s.yaml", "service: api\nchecks:\n  - {name: up, kind: health, request: {path: /}}\n")
    result = runpytest(project.pytester, "--env=production", "--collect-only", "-q",
                       "--deploycheck-lint")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_readme_example_suite_passes_against_the_demo(project: Project, demo: DemoServer) -> None:
    """The one example the README shows, as written: three items, all passing."""
    demo_environments(project, demo)
    example, = readme_examples("readme-suite")
    project.suite("control-plane-api.yaml", example)
    result = runpytest(project.pytester, "--env=staging", "-m", "postdeploy")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["staging: passed (3 passed, 0 failed, 0 skipped)"])


@pytest.mark.parametrize(("recipe", "env", "collected"), [
    ("kubernetes", "production", "5/6 tests collected (1 deselected)"),  # the post-rollback check
    ("railway", "production", "3 tests collected"),
    ("vercel", "candidate", "3 tests collected"),
    ("vercel", "production", "3 tests collected"),
    ("feature-flag", "production", "4 tests collected"),  # with the pre-deploy companion
])
def test_platform_recipes_are_files_the_plugin_accepts(
        project: Project, recipe: str, env: str, collected: str) -> None:
    """The how-to recipes' environments file and suite, as written, pass the linter (every key,
    template and ${VAR} checked, no secret needed) and give the items the recipe speaks of."""
    environments, = readme_examples(f"{recipe}-environments")
    suite, = readme_examples(f"{recipe}-suite")
    (project.path / "environments.yaml").write_text(environments)
    project.suite(f"{recipe}.yaml", suite)
    result = runpytest(project.pytester, f"--env={env}", "--collect-only", "-q",
                       "--deploycheck-lint")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines([f"{collected} in *"])


def test_feature_flag_recipe_stages_are_items_of_a_rollout_run(project: Project) -> None:
    environments, = readme_examples("feature-flag-environments")
    (project.path / "environments.yaml").write_text(environments)
    project.suite("checkout-v2.yaml", readme_examples("feature-flag-suite")[0])
    result = runpytest(project.pytester, "--env=production", "--collect-only", "-q",
                       "--deploycheck-lint", "-m", "rollout")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*rollout::1%[[]production[]]", "*rollout::25%[[]production[]]",
                                 "*rollout::100%[[]production[]]"])
