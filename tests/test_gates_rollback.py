"""Gates and rollback: verdicts, rollback actions run exactly once (also under xdist), the gate
report and the audit log, against real commands and a loopback webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from conftest import Project, free_port, runpytest
from servers import LoopbackServer


def environments(project: Project, server: LoopbackServer, *parts: str) -> None:
    """One environment ``prod`` with service ``api``; ``parts`` are more of its keys."""
    body = "".join(textwrap.indent(textwrap.dedent(part), "    ") for part in parts)
    (project.path / "environments.yaml").write_text(
        f'environments:\n  prod:\n    services: {{api: {{url: "{server.url}"}}}}\n{body}')


def logging_rollback(hook: str) -> str:
    """A command that logs each call, then a webhook to ``hook``, in that order."""
    return f"""\
            rollback:
              - name: redeploy previous
                command: 'echo "$DEPLOYCHECK_ENV $(cat $DEPLOYCHECK_FAILURES | wc -c)" >> rollbacks.log'
                timeout: 10s
              - webhook: {{url: "{hook}", method: POST, json: {{service: api, env: "{{{{ env }}}}"}}}}
    """


def failing_suite(project: Project, failing: int, passing: int = 3) -> None:
    """``passing`` checks that pass, then ``failing`` that fail (smoke: on_fail rollback)."""
    text = ("service: api\nchecks:\n"
            f"  - {{name: healthy, kind: health, parametrize: {{n: {list(range(passing))}}}, "
            "request: {path: /ok}}\n")
    if failing:
        text += (f"  - {{name: broken, kind: smoke, parametrize: {{n: {list(range(failing))}}}, "
                 "request: {path: /status/503}, expect: {status: 200}}\n")
    (project.path / "suites").mkdir(exist_ok=True)
    (project.path / "suites" / "post.yaml").write_text(text)


def log_lines(project: Project) -> list[str]:
    path = project.path / "rollbacks.log"
    return path.read_text().splitlines() if path.exists() else []


def hook_url(server: LoopbackServer, status: int = 200) -> str:
    return f"{server.url}/webhook/{status}/{uuid.uuid4().hex}"


@pytest.mark.parametrize("workers", ["0", "2", "4"])
@pytest.mark.parametrize("failing", [1, 50])
def test_rollback_runs_exactly_once(project: Project, server: LoopbackServer, workers: str,
                                    failing: int) -> None:
    hook = hook_url(server)
    environments(project, server, logging_rollback(hook))
    failing_suite(project, failing)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=3, failed=failing)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(log_lines(project)) == 1
    assert log_lines(project)[0].startswith("prod ")
    assert server.hits[hook.removeprefix(server.url)] == 1
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert len(report["rollback"]["triggered_by"]) == failing
    assert [a["outcome"] for a in report["rollback"]["actions"]] == ["succeeded", "succeeded"]
    result.stdout.fnmatch_lines(["prod: rolled_back (3 passed, * failed, 0 skipped)",
                                 "  ROLLBACK triggered by post::broken[[]prod-*",
                                 "    command 'redeploy previous': succeeded in *s",
                                 "    webhook 'webhook POST *': succeeded in *s"])


def test_rollback_once_with_maxfail(project: Project, server: LoopbackServer) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    failing_suite(project, 20)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2", "--maxfail=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # rolled_back, also when stopped early
    assert len(log_lines(project)) == 1


def test_rollback_once_when_an_xdist_worker_crashes(project: Project,
                                                    server: LoopbackServer) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    failing_suite(project, 0, passing=6)
    project.pytester.makeconftest("""
        import os

        def pytest_runtest_call(item):
            if item.name == "healthy[prod-2]":
                os._exit(1)   # the worker dies in the middle of the check
        """)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2",
                       "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert len(log_lines(project)) == 1
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert report["rollback"]["triggered_by"] == ["post::healthy[prod-2]"]
    crashed = next(c for c in report["checks"] if c["id"] == "post::healthy[prod-2]")
    assert crashed["outcome"] == "failed" and "crashed" in crashed["message"]


def test_rollback_commands_get_the_environment_and_the_failures(
        project: Project, server: LoopbackServer) -> None:
    environments(project, server, """\
            rollback:
              - command: [sh, -c, 'echo "$DEPLOYCHECK_ENV" > env.txt; cp "$DEPLOYCHECK_FAILURES" failures.json']
    """)
    failing_suite(project, 2)
    runpytest(project.pytester, "--env=prod")
    assert (project.path / "env.txt").read_text() == "prod\n"
    failures = json.loads((project.path / "failures.json").read_text())
    assert [f["id"] for f in failures] == ["post::broken[prod-0]", "post::broken[prod-1]"]
    assert failures[0]["message"] == "status: expected 200, got 503" or \
        "503" in failures[0]["message"]
    assert failures[0]["file"] == "suites/post.yaml" and failures[0]["kind"] == "smoke"


@pytest.mark.parametrize(("mode", "line"), [
    ("dry-run", "  ROLLBACK (dry run) triggered by post::broken[[]prod-0[]]"),
    ("off", "  ROLLBACK skipped (--rollback off); triggered by post::broken[[]prod-0[]]"),
])
def test_dry_run_and_off_run_nothing(project: Project, server: LoopbackServer, mode: str,
                                     line: str) -> None:
    hook = hook_url(server)
    environments(project, server, logging_rollback(hook))
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod", f"--rollback={mode}",
                       "--audit-log=audit.jsonl")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert log_lines(project) == []
    assert server.hits[hook.removeprefix(server.url)] == 0
    result.stdout.fnmatch_lines(["prod: rollback_skipped *", line])
    events = [json.loads(x) for x in (project.path / "audit.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "rollback_decision"
    assert events[0]["mode"] == mode
    if mode == "dry-run":
        result.stdout.fnmatch_lines(["    command 'redeploy previous': dry_run (command echo *)"])
        assert [e["outcome"] for e in events if e["event"] == "rollback_action"] == \
            ["dry_run", "dry_run"]


@pytest.mark.parametrize(("action", "message"), [
    ("command: [no-such-rollback-tool, undo]",
     "cannot run no-such-rollback-tool undo: No such file or directory"),
    ("command: 'echo undoing; exit 3'", "exit code 3"),
    ("{command: 'sleep 30', timeout: 1s}",
     "timed out after 1s; killed with every process it started"),
    ("command: 'yes rollback | head -c 3000000; exit 1'", "exit code 1"),
    ("webhook: {url: 'http://127.0.0.1:PORT/', timeout: 1s, retries: 0}", "cannot connect*"),
    ("webhook: {url: 'URL/hang', timeout: 1s, retries: 0}", "timed out after 1s*"),
    ("webhook: {url: 'URL/webhook/500/x', retries: 1, retries_on_timeout: true}",
     "answered 500 (after 2 attempts)"),
    ("webhook: {url: 'URL/webhook/500/x', retries: 1}", "answered 500"),
    ("python: no_such_module.deploy:rollback",
     "cannot import no_such_module.deploy:rollback: ModuleNotFoundError*"),
    ("python: rollbacks:explode", "RuntimeError: kubectl said no"),
    ("python: exits_on_import:undo", "cannot import exits_on_import:undo: SystemExit: 3"),
])
def test_a_failing_rollback_action_makes_the_verdict_rollback_failed(
        project: Project, server: LoopbackServer, action: str, message: str) -> None:
    action = action.replace("PORT", str(free_port())).replace("URL", server.url)
    after = hook_url(server)
    environments(project, server, f"""\
            rollback:
              - {action}
              - webhook: {{url: "{after}"}}
    """)
    (project.path / "rollbacks.py").write_text(
        "def explode(env, failures):\n    raise RuntimeError('kubectl said no')\n")
    (project.path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    failing_suite(project, 1)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl")
    assert time.monotonic() - started < 15
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["prod: rollback_failed *", f"    * ({message})"])
    assert server.hits[after.removeprefix(server.url)] == 0      # stopped at the first failure
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rollback_failed"
    assert report["rollback"]["actions"][0]["outcome"] == "failed"
    assert len(report["rollback"]["actions"][0]["output"]) <= 4001
    events = [json.loads(x) for x in (project.path / "audit.jsonl").read_text().splitlines()]
    assert events[-1] == {**events[-1], "event": "verdict", "verdict": "rollback_failed"}


def test_python_action_and_hook_get_env_and_failures(project: Project,
                                                     server: LoopbackServer) -> None:
    environments(project, server, """\
            rollback:
              - python: rollbacks:undo
    """)
    (project.path / "rollbacks.py").write_text(
        "import json\n\ndef undo(env, failures):\n"
        "    with open('python.log', 'a') as out:\n"
        "        out.write(json.dumps([env, [f['id'] for f in failures]]) + '\\n')\n")
    project.pytester.makeconftest("""
        import json

        def pytest_deploycheck_rollback(config, env, failures):
            with open("hook.log", "a") as out:
                out.write(json.dumps([env, len(failures)]) + "\\n")

        def pytest_deploycheck_gate(config, env, verdict, report):
            with open("gate-hook.log", "a") as out:
                out.write(json.dumps([env, verdict, report["verdict"]]) + "\\n")
        """)
    failing_suite(project, 3)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2")
    result.stdout.fnmatch_lines(["    python 'rollbacks:undo': succeeded*",
                                 "    hook 'pytest_deploycheck_rollback': succeeded*"])
    calls = [json.loads(line) for line in (project.path / "python.log").read_text().splitlines()]
    assert len(calls) == 1 and calls[0][0] == "prod"
    # In the order the workers reported them.
    assert sorted(calls[0][1]) == ["post::broken[prod-0]", "post::broken[prod-1]",
                                   "post::broken[prod-2]"]
    assert (project.path / "hook.log").read_text() == '["prod", 3]\n'
    assert (project.path / "gate-hook.log").read_text() == \
        '["prod", "rolled_back", "rolled_back"]\n'


@pytest.mark.parametrize(("raised", "message"), [
    ('RuntimeError("argo rollouts abort failed")', "RuntimeError: argo rollouts abort failed"),
    ("SystemExit(3)", "SystemExit: 3"),
])
def test_a_failing_hook_makes_the_rollback_fail(project: Project, server: LoopbackServer,
                                                raised: str, message: str) -> None:
    environments(project, server)
    project.pytester.makeconftest(f"""
        def pytest_deploycheck_rollback(config, env, failures):
            raise {raised}
        """)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.stdout.fnmatch_lines(["prod: rollback_failed *", "    hook 'pytest_deploycheck_rollback'"
                                 f": failed in *s ({message})"])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "rollback_failed"


@pytest.mark.parametrize(("suite", "verdict", "status"), [
    ("- {name: ok, kind: health, request: {path: /ok}}", "passed", 0),
    ("- {name: soft, kind: smoke, on_fail: warn, request: {path: /status/503}, expect: {status: 200}}",
     "passed_with_warnings", 0),
    ("- {name: gate, kind: checklist, command: 'exit 1'}", "blocked", 1),
    ("- {name: down, kind: health, request: {path: /status/503}, expect: {status: 200}}", "failed", 1),
])
def test_verdicts_and_exit_status(project: Project, server: LoopbackServer, suite: str,
                                  verdict: str, status: int) -> None:
    environments(project, server)
    project.suite("s.yaml", f"service: api\nchecks:\n  {suite}\n")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert result.ret == status
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == verdict
    result.stdout.fnmatch_lines([f"prod: {verdict} *"])


def test_a_warning_passes_and_is_listed(project: Project, server: LoopbackServer) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    project.suite("s.yaml", """\
        service: api
        checks:
          - {name: soft, kind: smoke, on_fail: warn, request: {path: /status/503}, expect: {status: 200}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["prod: passed_with_warnings (1 passed, 0 failed, 0 skipped, 1 "
                                 "with warnings)",
                                 "  WARNING suites/s.yaml::s::soft[[]prod[]]  (suites/s.yaml:3)",
                                 "         status: expected 200, got 503"])
    assert log_lines(project) == []


def test_several_environments_get_one_report_object_each(project: Project,
                                                          server: LoopbackServer) -> None:
    project.environments(f"""\
        environments:
          a: {{services: {{api: {{url: "{server.url}"}}}}}}
          b: {{services: {{api: {{url: "{server.url}"}}}}}}
        """)
    project.suite("s.yaml", """\
        service: api
        checks:
          - {name: ok, kind: health, request: {path: /ok}}
          - {name: down, kind: health, envs: [b], request: {path: /status/503}, expect: {status: 200}}
        """)
    runpytest(project.pytester, "--env=a,b", "--gate-report=gate.json")
    report = json.loads((project.path / "gate.json").read_text())
    assert [(e["env"], e["verdict"]) for e in report["environments"]] == \
        [("a", "passed"), ("b", "failed")]
    check = report["environments"][1]["checks"][1]
    assert {k: check[k] for k in ("id", "suite", "name", "kind", "env", "outcome", "on_fail",
                                  "file", "line")} == {
        "id": "s::down[b]", "suite": "s", "name": "down", "kind": "health", "env": "b",
        "outcome": "failed", "on_fail": "rollback", "file": "suites/s.yaml", "line": 4}
    assert report["environments"][0]["rollback"] is None


def test_the_audit_log_only_ever_grows(project: Project, server: LoopbackServer) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    failing_suite(project, 1)
    runpytest(project.pytester, "--env=prod", "--audit-log=audit.jsonl")
    first = (project.path / "audit.jsonl").read_text()
    runpytest(project.pytester, "--env=prod", "--audit-log=audit.jsonl")
    second = (project.path / "audit.jsonl").read_text()
    assert second.startswith(first) and len(second) > len(first)
    events = [json.loads(line)["event"] for line in first.splitlines()]
    assert events == ["rollback_decision", "rollback_action_start", "rollback_action",
                      "rollback_action_start", "rollback_action", "verdict"]


def test_notify_runs_once_for_its_verdicts(project: Project, server: LoopbackServer) -> None:
    chat, never = hook_url(server), hook_url(server)
    environments(project, server, logging_rollback(hook_url(server)), f"""\
            notify:
              - webhook: {{url: "{chat}", json: {{text: "{{{{ env }}}}: {{{{ verdict }}}} ({{{{ failed_count }}}} failed)"}}}}
                when: [rolled_back, rollback_failed]
              - webhook: {{url: "{never}"}}
                when: [passed]
    """)
    failing_suite(project, 5)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", "2")
    result.stdout.fnmatch_lines(["  NOTIFY webhook POST *: succeeded"])
    assert server.hits[chat.removeprefix(server.url)] == 1
    assert server.hits[never.removeprefix(server.url)] == 0
    body = next(b for p, b in server.bodies if p == chat.removeprefix(server.url))
    assert json.loads(body) == {"text": "prod: rolled_back (5 failed)"}


def test_rollback_fast_starts_at_the_first_failure_and_stops(project: Project,
                                                             server: LoopbackServer) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: a broken, kind: health, request: {path: /status/503}, expect: {status: 200}}
          - {name: b slow, kind: smoke, parametrize: {n: [1, 2, 3, 4, 5, 6]},
             request: {path: /slow, params: {ms: "700"}}}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", "--rollback-fast", "-p", "xdist", "-n",
                       "2", "--gate-report=gate.json")
    elapsed = time.monotonic() - started
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # rolled_back, as the exit table says
    assert len(log_lines(project)) == 1
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert report["rollback"]["reaction_seconds"] < 1.0
    result.stdout.fnmatch_lines(["    started *ms after the failing report (--rollback-fast)"])
    assert elapsed < 4.2 + 5   # the six slow checks alone would take 4.2 s on one worker


@pytest.mark.parametrize("stop", ["--rollback-fast", "-x"])
def test_a_stop_under_xdist_ends_an_observation_on_another_worker(
        project: Project, server: LoopbackServer, stop: str) -> None:
    """The first failure stops the run; an observation watching on the other worker gives up
    at once instead of watching the rolled-back system for its minute, and it is not a pass
    (nor a failure that would roll back another environment): inconclusive."""
    environments(project, server, logging_rollback(hook_url(server)), """\
            metrics:
              calm: {type: command, command: "echo 0.1"}
              hot: {type: command, command: "echo 5"}
        """)
    project.suite("post.yaml", """\
        checks:
          - {name: a watches, kind: metric, source: calm, query: q, threshold: "< 1",
             observe: {duration: 60s, interval: 1s}, timeout: 90s}
          - {name: b breaks, kind: metric, source: hot, query: q, threshold: "< 1"}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", stop, "-p", "xdist", "-n", "2",
                       "--gate-report=gate.json")
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # the observation alone would take 60 s
    report = json.loads((project.path / "gate.json").read_text())
    outcomes = {check["name"]: check["outcome"] for check in report["checks"]}
    assert outcomes == {"b breaks": "failed", "a watches": "inconclusive"}, outcomes
    assert report["verdict"] == "rolled_back"
    assert len(log_lines(project)) == 1
    assert "not evaluated: the run is stopping" in result.stdout.str()


def test_sigterm_leaves_a_valid_gate_report_and_audit_log(project: Project,
                                                          server: LoopbackServer) -> None:
    hang = uuid.uuid4().hex
    environments(project, server, logging_rollback(hook_url(server)))
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: a broken, kind: health, request: {path: /status/503}, expect: {status: 200}}
          - {name: b hangs, kind: smoke, timeout: 60s, request: {path: /hang/HANG}}
        """.replace("HANG", hang))
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--env=prod", "--gate-report=gate.json", "--audit-log=audit.jsonl"],
                           cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.hits[f"/hang/{hang}"] == 0:
        time.sleep(0.1)
    time.sleep(0.3)
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=30)
    assert run.returncode != 0
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert [c["id"] for c in report["checks"]] == ["post::a broken[prod]"]
    lines = (project.path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(x)["event"] for x in lines][-1] == "verdict"
    assert b"Traceback" not in output


def test_sigterm_to_the_xdist_controller_alone_ends_the_workers_observations(
        project: Project, server: LoopbackServer) -> None:
    """A cancelled job whose signal reaches only pytest's own process: the observations on
    the workers stop measuring at once (they would watch on until xdist ends them), and the
    gate is not a pass."""
    environments(project, server, logging_rollback(hook_url(server)), """\
            metrics:
              calm: {type: command, command: "date +%s.%N >> ticks; echo 0.1"}
        """)
    project.suite("post.yaml", """\
        checks:
          - {name: a watches, kind: metric, source: calm, query: q, threshold: "< 1",
             observe: {duration: 60s, interval: 1s}, timeout: 90s}
          - {name: b watches, kind: metric, source: calm, query: q, threshold: "< 1",
             observe: {duration: 60s, interval: 1s}, timeout: 90s}
        """)
    ticks = project.path / "ticks"
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                            "xdist", "-n", "2", "--env=prod", "--gate-report=gate.json",
                            "--audit-log=audit.jsonl"],
                           cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not ticks.exists()
                                           or len(ticks.read_text().split()) < 4):
        time.sleep(0.1)
    signalled = time.time()
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=30)
    # A measurement may have been under way; none starts a second after the signal (xdist
    # alone ends its workers about five seconds later, a measurement a second until then).
    late = [float(t) for t in ticks.read_text().split() if float(t) > signalled + 1.0]
    assert not late, (late, signalled)
    assert run.returncode == pytest.ExitCode.INTERRUPTED
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"
    assert not log_lines(project)
    assert [json.loads(x)["event"] for x in
            (project.path / "audit.jsonl").read_text().splitlines()][-1] == "verdict"
    assert b"Traceback" not in output


@pytest.mark.parametrize(("rollback", "message"), [
    ("rollback:\n  - kubectl: [rollout, undo]",
     "environments.yaml:5: environments.prod.rollback[[]0[]]: an action needs exactly one of "
     "command, webhook, python; found 'kubectl'"),
    ("rollback:\n  - {command: 'true', timout: 5s}",
     "environments.yaml:5: environments.prod.rollback[[]0[]].timout: unknown key 'timout' "
     "(did you mean 'timeout'?)*"),
    ("rollback:\n  - {command: 'true', webhook: {url: 'http://x'}}",
     "environments.yaml:5: environments.prod.rollback[[]0[]]: an action needs exactly one of "
     "command, webhook, python; found 'command' and 'webhook'"),
    ("rollback:\n  - {python: not-a-target}",
     "environments.yaml:5: environments.prod.rollback[[]0[]].python: 'not-a-target' is not "
     "'module:function'*"),
    ("rollback:\n  - {command: 'true', timeout: soon}",
     "environments.yaml:5: environments.prod.rollback[[]0[]].timeout: 'soon' is not a duration*"),
    ("notify:\n  - {command: 'true', when: [rolledback]}",
     "environments.yaml:5: environments.prod.notify[[]0[]].when: unknown verdict 'rolledback' "
     "(did you mean 'rolled_back'?)*"),
])
def test_bad_actions_name_file_line_and_key(project: Project, server: LoopbackServer,
                                            rollback: str, message: str) -> None:
    environments(project, server, rollback + "\n")
    project.suite("s.yaml", "checks:\n  - {name: ok, kind: health, request: {url: 'http://x'}}\n")
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([message])


def test_a_bad_rollback_mode_is_a_usage_error(project: Project, server: LoopbackServer) -> None:
    environments(project, server)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod", "--rollback=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --rollback / deploycheck_rollback: 'maybe' is not one "
                                 "of auto, dry-run, off, defer"])


def test_gate_report_folder_is_made(project: Project, server: LoopbackServer) -> None:
    environments(project, server)
    failing_suite(project, 0)
    runpytest(project.pytester, "--env=prod", "--gate-report=out/reports/gate.json")
    assert json.loads((project.path / "out/reports/gate.json").read_text())["verdict"] == \
        "passed"
    assert not [p for p in Path(project.path / "out/reports").iterdir() if p.name.startswith(".")]
    assert os.environ.get("DEPLOYCHECK_ENV") is None


@pytest.mark.parametrize("workers", ["0", "2"])
def test_a_suite_that_fails_to_collect_blocks_with_a_report(project: Project,
                                                            server: LoopbackServer,
                                                            workers: str) -> None:
    environments(project, server, logging_rollback(hook_url(server)))
    failing_suite(project, 0)
    (project.path / "suites" / "broken.yaml").write_text(
        "checks:\n  - name: x\n    kind: healt\n    request: {path: /ok}\n")
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json")
    assert result.ret != pytest.ExitCode.OK
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"
    assert report["rollback"] is None and log_lines(project) == []
    assert report["errors"] == ["suites/broken.yaml:3: checks[0].kind: 'healt' is not one of "
                                "health, smoke, metric, checklist (did you mean 'health'?)"]
    result.stdout.fnmatch_lines(["prod: blocked (*)",
                                 "  NOT COLLECTED suites/broken.yaml:3: checks[[]0[]].kind: *"])


def test_an_environment_no_check_ran_against_is_inconclusive(project: Project,
                                                             server: LoopbackServer) -> None:
    (project.path / "environments.yaml").write_text(
        f'environments:\n  prod: {{services: {{api: {{url: "{server.url}"}}}}}}\n'
        f'  staging: {{services: {{api: {{url: "{server.url}"}}}}}}\n')
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: up, kind: health, envs: [prod], request: {path: /ok}}
        """)
    result = runpytest(project.pytester, "--env=prod,staging", "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    verdicts = {d["env"]: d["verdict"] for d in
                json.loads((project.path / "gate.json").read_text())["environments"]}
    assert verdicts == {"prod": "passed", "staging": "inconclusive"}
    result.stdout.fnmatch_lines(["staging: inconclusive (0 passed, 0 failed, 0 skipped)",
                                 "  no check ran against staging"])


def test_no_gate_report_when_no_gate_ran(project: Project, server: LoopbackServer) -> None:
    """``--collect-only`` lints; a usage error writes a ``blocked`` report instead (see
    test_gate_guarantees)."""
    environments(project, server)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--gate-report=gate.json", "--env=prod",
                       "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    assert not (project.path / "gate.json").exists()
