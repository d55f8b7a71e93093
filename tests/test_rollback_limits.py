"""Rollback and notify actions run exactly once and to the end, and every HTTP exchange and
command the plugin makes is bounded: what is retried, signals during the rollback, the failures
file, backgrounded commands, answers too large or too slow, and ``start:`` readiness."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from test_gates_rollback import environments, failing_suite
from test_start_processes import listening, running

from conftest import Project, free_port, runpytest
from servers import LoopbackServer, SlowLoris


@pytest.fixture
def loris() -> Iterator[SlowLoris]:
    srv = SlowLoris()
    yield srv
    srv.close()


def audit_events(project: Project) -> list[dict[str, object]]:
    lines = (project.path / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def gate_report(project: Project) -> dict[str, object]:
    report: dict[str, object] = json.loads((project.path / "gate.json").read_text())
    return report


def keys_sent(server: LoopbackServer, path: str) -> list[str | None]:
    return [headers.get("Idempotency-Key") for _, p, headers in server.requests if p == path]


# --- case 1: what is retried ----------------------------------------------------------------

@pytest.mark.parametrize(("path", "extra", "message"), [
    ("/hang/ID", "timeout: 1s", "timed out after 1s*"),
    ("/webhook/503/ID", "", "answered 503"),
])
def test_a_webhook_that_may_have_reached_the_server_is_sent_once(
        project: Project, server: LoopbackServer, path: str, extra: str, message: str) -> None:
    path = path.replace("ID", uuid.uuid4().hex)
    environments(project, server, f"""\
            rollback:
              - webhook: {{url: "{server.url}{path}", retries: 2, {extra}}}
    """)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod")
    result.stdout.fnmatch_lines(["prod: rollback_failed *", f"    webhook *: failed *({message})"])
    assert server.hits[path] == 1


def test_a_webhook_that_cannot_connect_is_retried(project: Project,
                                                  server: LoopbackServer) -> None:
    environments(project, server, f"""\
            rollback:
              - webhook: {{url: "http://127.0.0.1:{free_port()}/", retries: 2, timeout: 1s}}
    """)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod")
    result.stdout.fnmatch_lines(["    webhook *: failed in *s (cannot connect*(after 3 attempts))"])


def test_retries_on_timeout_allows_resending_and_the_key_stays_the_same(
        project: Project, server: LoopbackServer) -> None:
    path, other = f"/webhook/503/{uuid.uuid4().hex}", f"/webhook/200/{uuid.uuid4().hex}"
    environments(project, server, f"""\
            rollback:
              - webhook: {{url: "{server.url}{other}"}}
              - webhook: {{url: "{server.url}{path}", retries: 2, retries_on_timeout: true}}
    """)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod")
    result.stdout.fnmatch_lines(["    webhook *: failed in *s (answered 503 (after 3 attempts))"])
    assert server.hits[path] == 3
    keys = keys_sent(server, path)
    assert len(set(keys)) == 1 and keys[0]
    assert keys_sent(server, other)[0] not in (None, keys[0])
    runpytest(project.pytester, "--env=prod")   # another run: another key
    assert keys_sent(server, path)[-1] != keys[0]


def test_a_notify_webhook_is_sent_once_with_an_idempotency_key(
        project: Project, server: LoopbackServer) -> None:
    path = f"/webhook/503/{uuid.uuid4().hex}"
    environments(project, server, f"""\
            notify:
              - webhook: {{url: "{server.url}{path}", retries: 2}}
    """)
    failing_suite(project, 0)
    result = runpytest(project.pytester, "--env=prod")
    result.stdout.fnmatch_lines(["  NOTIFY *: failed (answered 503)"])
    assert server.hits[path] == 1
    assert keys_sent(server, path)[0]


# --- cases 6 and 7: answers too large or too slow -------------------------------------------

def test_an_endless_webhook_answer_is_cut_at_its_cap(project: Project, server: LoopbackServer,
                                                     loris: SlowLoris) -> None:
    environments(project, server, f"""\
            rollback:
              - webhook: {{url: "{loris.url}/big", timeout: 30s}}
            notify:
              - webhook: {{url: "{loris.url}/big", timeout: 30s}}
    """)
    failing_suite(project, 1)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert time.monotonic() - started < 15    # the body is endless: only the cap ends it
    result.stdout.fnmatch_lines(["prod: rolled_back *", "  NOTIFY *: succeeded"])
    report = gate_report(project)
    assert len(report["rollback"]["actions"][0]["output"]) <= 4001  # type: ignore[index]


@pytest.mark.parametrize("kind", ["rollback", "notify"])
def test_a_webhook_answering_one_byte_at_a_time_is_cut_at_its_timeout(
        project: Project, server: LoopbackServer, loris: SlowLoris, kind: str) -> None:
    environments(project, server, f"""\
            {kind}:
              - webhook: {{url: "{loris.url}/drip", timeout: 1s, retries: 0}}
    """)
    failing_suite(project, 1)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod")
    assert time.monotonic() - started < 1 + 4
    result.stdout.fnmatch_lines(["*: failed*(timed out after 1s*"])


def test_a_check_answered_one_byte_at_a_time_fails_at_its_timeout(
        project: Project, loris: SlowLoris) -> None:
    project.simple(loris.url, """\
        service: api
        checks:
          - {name: drip, kind: health, timeout: 1s, request: {path: /drip}}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    assert time.monotonic() - started < 1 + 4
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after *(ReadTimeout)*"])


def test_a_metric_source_answering_one_byte_at_a_time_fails_at_its_timeout(
        project: Project, loris: SlowLoris) -> None:
    project.metric_source(f"{{type: http, url: '{loris.url}/drip', timeout: 1s}}")
    project.suite("m.yaml", """\
        checks:
          - {name: drip, kind: metric, query: value, threshold: "< 1"}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    assert time.monotonic() - started < 1 + 4
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after 1s*"])


def test_a_python_check_answered_one_byte_at_a_time_fails_at_the_service_timeout(
        project: Project, loris: SlowLoris) -> None:
    project.environments(f"""\
        environments:
          test:
            services:
              api: {{url: "{loris.url}", timeout: 1s}}
        """)
    project.pytester.makepyfile(test_drip="""
        import httpx
        import pytest

        @pytest.mark.deploycheck(kind="smoke")
        def test_drip(service):
            with pytest.raises(httpx.TimeoutException):
                service("api").get("/drip")
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=test")
    assert time.monotonic() - started < 1 + 4
    result.assert_outcomes(passed=1)


LORIS_SCRIPT = """\
import socket, sys, threading, time

sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(16)

def drip(conn):
    conn.recv(65536)
    for byte in b"HTTP/1.1 200 OK\\r\\n" + b"X-Drip: 1\\r\\n" * 100000:
        time.sleep(0.2)
        conn.sendall(bytes([byte]))

while True:
    conn, _ = sock.accept()
    threading.Thread(target=drip, args=(conn,), daemon=True).start()
"""


def test_a_ready_url_answering_one_byte_at_a_time_is_not_ready_at_the_start_timeout(
        project: Project) -> None:
    port = free_port()
    (project.path / "loris.py").write_text(LORIS_SCRIPT)
    project.environments(f"""\
        environments:
          local:
            start:
              - name: loris
                command: [python, loris.py, "{port}"]
                ready: http://127.0.0.1:{port}/health
                timeout: 2s
        """)
    project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, manual: x}\n")
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=local")
    assert time.monotonic() - started < 2 + 4
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'loris' was not ready after 2s*"])


# --- case 9: readiness from the process we started ------------------------------------------

def test_a_ready_port_already_in_use_is_refused_before_starting(
        project: Project, server: LoopbackServer) -> None:
    marker = f"m-{uuid.uuid4().hex[:10]}"
    project.environments(f"""\
        environments:
          local:
            start:
              - {{command: "sleep 30 # {marker}", ready: "{server.url}/ok", timeout: 5s}}
        """)
    project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, manual: x}\n")
    result = runpytest(project.pytester, "--env=local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*environments.yaml:4: start: *not started: port "
                                 f"{server.server_port} of its ready URL {server.url}/ok is "
                                 f"already in use (held by pid {os.getpid()} (*)*"])
    assert running(marker) == []


DIES_AFTER_READY = """\
import http.server, sys, threading, time

class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Ok)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("serving", flush=True)
time.sleep(float(sys.argv[2]))
print("out of memory", flush=True)
sys.exit(7)
"""


def test_a_started_process_that_exits_after_ready_fails_the_run(project: Project) -> None:
    port = free_port()
    (project.path / "server.py").write_text(DIES_AFTER_READY)
    project.environments(f"""\
        environments:
          local:
            start:
              - {{name: api, command: [python, server.py, "{port}", "0.5"],
                 ready: "http://127.0.0.1:{port}/", timeout: 10s}}
        """)
    project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, command: 'sleep 2'}\n")
    result = runpytest(project.pytester, "--env=local", "--gate-report=gate.json")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["local: blocked *", "  ERROR local: environments.yaml:4: start: "
                                 "'api' exited with status 7 after it was ready; its output:",
                                 "serving", "out of memory"])
    assert gate_report(project)["verdict"] == "blocked"


def test_a_killed_run_leaves_no_started_process(project: Project) -> None:
    port, marker = free_port(), f"m-{uuid.uuid4().hex[:10]}"
    project.environments(f"""\
        environments:
          local:
            start:
              - command: "python -m pytest_deploycheck.demo --port {port} --version {marker} & wait"
                ready: http://127.0.0.1:{port}/health
                timeout: 20s
        """)
    project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, command: 'sleep 60', "
                            "timeout: 90s}\n")
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--env=local"], cwd=project.path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not listening(port):
            time.sleep(0.1)
        assert listening(port)
    finally:
        run.kill()
        run.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (listening(port) or running(marker)):
        time.sleep(0.1)
    assert not listening(port)
    assert running(marker) == []


# --- case 2: signals during the rollback ----------------------------------------------------

SLOW_ROLLBACK = """\
            rollback:
              - name: slow
                command: 'echo start >> rollbacks.log; sleep 2; echo end >> rollbacks.log'
              - name: after
                command: 'echo after >> rollbacks.log'
"""


@pytest.mark.parametrize("mode", [[], ["-p", "xdist", "-n", "2"], ["--rollback-fast"],
                                  ["-p", "xdist", "-n", "2", "--rollback-fast"]],
                         ids=["n0", "n2", "fast", "n2-fast"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
@pytest.mark.parametrize("times", [1, 2])
def test_a_signal_during_the_rollback_lets_it_end_and_the_reports_be_written(
        project: Project, server: LoopbackServer, mode: list[str], sig: signal.Signals,
        times: int) -> None:
    environments(project, server, SLOW_ROLLBACK)
    failing_suite(project, 1)
    log = project.path / "rollbacks.log"
    (project.path / "gate.json").write_text('{"verdict": "passed"}')  # an older run's
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--env=prod", "--gate-report=gate.json", "--audit-log=audit.jsonl",
                            *mode], cwd=project.path, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    for _ in range(times):
        time.sleep(0.3)
        run.send_signal(sig)
    output, _ = run.communicate(timeout=30)
    assert b"Traceback" not in output, output.decode()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output.decode()
    report = gate_report(project)
    events = audit_events(project)
    actions = report["rollback"]["actions"]  # type: ignore[index]
    assert report["rollback"]["signals"] == [sig.name] * times  # type: ignore[index]
    assert events[-1]["event"] == "verdict"
    signalled = [e for e in events if e["event"] == "rollback_signals"]
    assert signalled and signalled[0]["signals"] == [sig.name] * times
    if times == 1:
        assert log.read_text().split() == ["start", "end", "after"]
        assert report["verdict"] == "rolled_back"
        assert [a["outcome"] for a in actions] == ["succeeded", "succeeded"]
    else:
        assert log.read_text().split() == ["start"]
        assert report["verdict"] == "rollback_failed"
        assert [a["outcome"] for a in actions] == ["interrupted"]
        assert report["rollback"]["interrupted"] is True  # type: ignore[index]
        assert [e.get("outcome") for e in events if e["event"] == "rollback_action"] == \
            ["interrupted"]


# --- cases 3 and 4: the failures file -------------------------------------------------------

FAILURES_ROLLBACK = """\
            rollback:
              - name: copy
                command: 'cp "$DEPLOYCHECK_FAILURES" seen-failures.json'
              - name: after
                command: 'echo after >> rollbacks.log'
"""


def test_an_unwritable_state_dir_is_reported_and_the_rollback_still_runs(
        project: Project, server: LoopbackServer) -> None:
    (project.path / "blocker").write_text("a file, not a folder")
    project.pytester.makeini("[pytest]\ndeploycheck_state_dir = blocker/state\n")
    environments(project, server, FAILURES_ROLLBACK)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl")
    result.stdout.fnmatch_lines(["prod: rolled_back *",
                                 "  ERROR prod: cannot write the failures file *blocker/state/"
                                 "prod.rollback-failures.*.json: Not a directory; the rollback "
                                 "actions read */prod.rollback-failures.*.json instead"])
    seen = json.loads((project.path / "seen-failures.json").read_text())
    assert [f["id"] for f in seen] == ["post::broken[prod-0]"]
    assert (project.path / "rollbacks.log").read_text().split() == ["after"]
    report = gate_report(project)
    assert report["verdict"] == "rolled_back"
    assert "cannot write the failures file" in report["problems"][0]  # type: ignore[index]
    assert [e for e in audit_events(project) if e["event"] == "state_error"]


def test_concurrent_runs_read_their_own_failures(project: Project,
                                                 server: LoopbackServer) -> None:
    environments(project, server, """\
            rollback:
              - command: 'sleep 1; cp "$DEPLOYCHECK_FAILURES" "seen-$RUN.json"'
    """)
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: broken, kind: smoke, parametrize: {run: [one, two]}, request: {path: /status/503},
             expect: {status: 200}}
        """)
    runs = [subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                              "--env=prod", "-k", name], cwd=project.path,
                             env={**os.environ, "RUN": name}, stdout=subprocess.DEVNULL)
            for name in ("one", "two")]
    for run in runs:
        run.wait(timeout=60)
    for name in ("one", "two"):
        seen = json.loads((project.path / f"seen-{name}.json").read_text())
        assert [f["id"] for f in seen] == [f"post::broken[prod-{name}]"]
    assert list((project.path / ".deploycheck").glob("*failures*")) == []  # removed at the end


# --- case 5: commands that background their work --------------------------------------------

# A duration of this run's own, so that looking for what was left running finds no other test's
# (or other program's) sleep.
BACKGROUND_SLEEP = f"sleep 30.{uuid.uuid4().int % 10**6:06d}"
BACKGROUNDED = f"{BACKGROUND_SLEEP} & echo started"
KILLED = "left 1 process running in the background; it was killed with the command's group"


def test_a_rollback_command_that_backgrounds_its_work_is_not_reported_succeeded(
        project: Project, server: LoopbackServer) -> None:
    environments(project, server, f"""\
            rollback:
              - {{name: detach, command: "{BACKGROUNDED}"}}
            notify:
              - {{name: tell, command: "{BACKGROUNDED}"}}
    """)
    failing_suite(project, 1)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    result.stdout.fnmatch_lines(["prod: rollback_failed *",
                                 f"    command 'detach': failed in *s (exit code 0, but {KILLED}*",
                                 f"  NOTIFY tell: failed (exit code 0, but {KILLED}*"])
    assert running(BACKGROUND_SLEEP) == []


def test_a_checklist_command_that_backgrounds_its_work_fails(project: Project) -> None:
    project.environments("environments:\n  test: {}\n")
    project.suite("s.yaml", f'checks:\n  - {{name: bg, kind: checklist, command: "{BACKGROUNDED}"}}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*FAILED {KILLED}*"])


def test_a_metric_command_that_backgrounds_its_work_fails(project: Project) -> None:
    project.metric_source("{type: command, command: 'sleep 30 & echo 0.5'}")
    project.suite("m.yaml", 'checks:\n  - {name: bg, kind: metric, query: x, threshold: "< 1"}\n')
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{KILLED}*"])


# --- case 8: YAML alias bombs ---------------------------------------------------------------

def alias_bomb(levels: int) -> str:
    """The "billion laughs": each level a list of nine aliases of the one before (9**levels)."""
    names = "abcdefghijk"[:levels]
    lines = [f'{names[0]}: &{names[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for before, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{','.join(['*' + before] * 9)}]")
    return "\n".join(lines) + "\n"


MEMORY_BOUNDED_PYTEST = """\
import resource, sys
limit = 1024 ** 3  # 1 GiB of address space: the bomb, expanded, needs several
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import pytest
sys.exit(pytest.main(["-p", "no:cacheprovider", "--env=test", "--collect-only", "-q"]))
"""


@pytest.mark.parametrize("where", ["suite", "environments"])
@pytest.mark.parametrize("levels", [9, 10])
def test_an_alias_bomb_is_refused_with_its_file_and_line(project: Project, where: str,
                                                        levels: int) -> None:
    bomb = alias_bomb(levels)
    assert len(bomb) < 700
    if where == "suite":
        project.environments("environments:\n  test: {}\n")
        project.suite("bomb.yaml", bomb)
        file = "suites/bomb.yaml"
    else:
        project.environments("environments:\n  test: {}\n" + bomb)
        project.suite("s.yaml", "checks:\n  - {name: w, kind: checklist, manual: x}\n")
        file = "environments.yaml"
    script = project.path / "bounded.py"
    script.write_text(MEMORY_BOUNDED_PYTEST)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], cwd=project.path, capture_output=True,
                          text=True, timeout=60)
    assert time.monotonic() - started < 20
    output = done.stdout + done.stderr
    assert done.returncode in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.USAGE_ERROR), output
    assert "MemoryError" not in output and "Traceback" not in output, output
    offset = 2 if where == "environments" else 0
    assert re.search(rf"{re.escape(file)}:(\d+): .*alias", output), output
    line = int(re.search(rf"{re.escape(file)}:(\d+): .*alias", output).group(1))  # type: ignore[union-attr]
    assert 2 + offset <= line <= levels + offset
    assert "aliases expand to more than" in output


def test_merge_keys_merging_one_mapping_many_times_do_not_multiply_it(project: Project) -> None:
    """`<<: [*a, *a, ...]` nested: PyYAML 6.0.1 and 6.0.2 (which pyproject allows) kept every
    merged pair, duplicates too, so a 534-byte file grew tenfold per level (seven levels:
    1.6 GB in 28 s, eight ran out of memory) without one alias being counted."""
    lines = ["  a0: &a0 {" + ", ".join(f"k{i}: x" for i in range(10)) + "}"]
    lines += [f"  a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 10)}]}}" for i in range(1, 9)]
    project.environments("environments:\n  test: {}\n")
    project.suite("merges.yaml", "vars:\n" + "\n".join(lines) + "\n"
                  "checks:\n  - {name: w, kind: checklist, manual: x}\n")
    script = project.path / "bounded.py"
    script.write_text(MEMORY_BOUNDED_PYTEST)
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], cwd=project.path, capture_output=True,
                          text=True, timeout=60)
    assert time.monotonic() - started < 20
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 test collected" in done.stdout


def test_aliases_used_as_intended_still_load(project: Project, server: LoopbackServer) -> None:
    project.simple(server.url, """\
        service: api
        vars:
          request: &ok {path: /ok}
        checks:
          - {name: one, kind: health, request: *ok}
          - {name: two, kind: health, request: *ok}
          - name: three
            kind: health
            request: {<<: *ok, method: GET}
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=3)


def test_a_signal_during_the_notifications_lets_them_end_and_the_reports_be_written(
        project: Project, server: LoopbackServer) -> None:
    environments(project, server, """\
            notify:
              - command: 'echo start >> rollbacks.log; sleep 2; echo end >> rollbacks.log'
    """)
    failing_suite(project, 0)
    log = project.path / "rollbacks.log"
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--env=prod", "--gate-report=gate.json", "--audit-log=audit.jsonl"],
                           cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    time.sleep(0.3)
    run.send_signal(signal.SIGTERM)
    output, _ = run.communicate(timeout=30)
    assert b"Traceback" not in output, output.decode()
    assert run.returncode == pytest.ExitCode.INTERRUPTED
    assert log.read_text().split() == ["start", "end"]
    assert gate_report(project)["verdict"] == "passed"
    assert audit_events(project)[-1] == {**audit_events(project)[-1], "event": "signals",
                                         "signals": ["SIGTERM"]}
