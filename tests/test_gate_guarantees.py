"""What the gate guarantees (docs/concepts/gates-and-rollback.md, "What the gate guarantees"):
any order in which concurrent checks finish is safe, an exception anywhere in a check or in the
run fails the gate, every failed or errored item counts, a reporter's failure is no check
failure, the exit status follows the verdict in every mode, and no stale report survives a run
that never started."""

from __future__ import annotations

import fnmatch
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import Project, runpytest
from servers import LoopbackServer, start_server, stop_server


@pytest.fixture
def tracker() -> Iterator[LoopbackServer]:
    srv = start_server()
    yield srv
    stop_server(srv)


def environment(project: Project, url: str, extra: str = "") -> None:
    project.environments(f'environments:\n  prod:\n    services: {{api: {{url: "{url}"}}}}\n'
                         + extra)


def read(name: str, ms: int) -> str:
    return f"  - {{name: {name}, kind: health, request: {{path: /track/{name}, params: {{ms: '{ms}'}}}}}}\n"


COMMAND_FENCE = "  - {name: fence, kind: checklist, command: 'true'}\n"
WRITE_FENCE = "  - {name: write, kind: smoke, request: {method: POST, path: /track/w, json: {a: 1}}}\n"

# A module-scoped fixture: pytest keeps it set up across the module's items only.
PYTHON_CHECKS = """\
import pytest


@pytest.fixture(scope="module")
def shared():
    with open("module-setups", "a") as out:
        out.write("set up\\n")


def test_one(shared, service):
    assert service("api").get("/track/py1").status_code == 200


def test_two(shared, service):
    assert service("api").get("/track/py2").status_code == 200
"""

# Suite files (name -> checks) whose concurrent stretches span several files and finish in an
# order other than the file order, with fences of each kind before, between and after them.
LAYOUTS = {
    "fence then reads of two files": {
        "a.yaml": COMMAND_FENCE + read("a_slow", 600),
        "b.yaml": read("b_fast", 0),
    },
    "many files and fences": {
        "a.yaml": read("a1", 300) + COMMAND_FENCE + read("a2", 700),
        "b.yaml": read("b1", 0),
        "c.yaml": read("c1", 250) + WRITE_FENCE,
        "d.yaml": read("d1", 400) + read("d2", 500),
        "e.yaml": read("e1", 0) + COMMAND_FENCE,
        "f.yaml": COMMAND_FENCE,
        "g.yaml": read("g1", 300),
        "h.yaml": read("h1", 0),
    },
    "a Python module between files": {
        "a.yaml": COMMAND_FENCE + read("a_slow", 500),
        "b.yaml": read("b_fast", 0),
        "test_m.py": PYTHON_CHECKS,
        "y.yaml": read("y_slow", 400),
        "z.yaml": read("z_fast", 0) + read("z_mid", 200),
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("args", [[], ["-p", "xdist", "-n", "1"],
                                  ["-p", "xdist", "-n", "1", "--dist", "loadfile"]],
                         ids=["n0", "load", "loadfile"])
def test_concurrent_checks_of_several_files_finish_in_any_order(
        project: Project, tracker: LoopbackServer, layout: str, args: list[str]) -> None:
    environment(project, tracker.url)
    for name, checks in LAYOUTS[layout].items():
        project.suite(name, checks if name.endswith(".py") else f"service: api\nchecks:\n{checks}")
    count = sum(text.count("- {name") + text.count("def test_")
                for text in LAYOUTS[layout].values())
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *args)
    result.assert_outcomes(passed=count)
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "passed"
    assert result.ret == 0
    if "test_m.py" in LAYOUTS[layout]:
        assert (project.path / "module-setups").read_text() == "set up\n"


# --- an exception anywhere fails the check, an internal error never passes ----------------

DEPTH = 3000  # 6 KB of [[[...]]]: deeper than Python's recursion limit


class _NestedHandler(BaseHTTPRequestHandler):
    """Answers every request with 503 and a body nested too deep for ``json.loads``."""

    def do_GET(self) -> None:
        body = b"[" * DEPTH + b"]" * DEPTH
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def nested() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _NestedHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    srv.server_close()


ROLLBACK = "    rollback:\n      - command: 'echo rolled back >> rollbacks.log'\n"
WORKERS = [[], ["-p", "xdist", "-n", "2"]]


def rollbacks(project: Project) -> list[str]:
    path = project.path / "rollbacks.log"
    return path.read_text().splitlines() if path.exists() else []


def audit_verdicts(project: Project) -> list[str]:
    lines = (project.path / "audit.jsonl").read_text().splitlines()
    return [json.loads(line)["verdict"] for line in lines if json.loads(line)["event"] == "verdict"]


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
@pytest.mark.parametrize("expect", ["{status: 200}", "{status: 503, json: {a: 1}}"])
def test_a_body_nested_too_deep_fails_its_check(project: Project, nested: str,
                                                args: list[str], expect: str) -> None:
    """Whether the check or the description of its result meets the body (it once raised
    RecursionError there, an INTERNALERROR that left a passed report), the check fails with
    one line and the deploy is rolled back; the run goes on."""
    environment(project, nested, ROLLBACK)
    project.suite("post.yaml", f"""\
        service: api
        checks:
          - {{name: deep, kind: health, request: {{path: /deep}}, expect: {expect}}}
          - {{name: after, kind: health, request: {{path: /after}}, expect: {{status: 503}}}}
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl", *args)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    outcomes = {check["name"]: check for check in report["checks"]}
    assert outcomes["deep"]["outcome"] == "failed"
    assert outcomes["deep"]["message"] and "\n" not in outcomes["deep"]["message"]
    assert rollbacks(project) == ["rolled back"]
    assert audit_verdicts(project) == ["rolled_back"]


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
def test_an_internal_error_never_ends_passed(project: Project, tracker: LoopbackServer,
                                             args: list[str]) -> None:
    """An INTERNALERROR, in this process or in a worker: the verdict is not passed, the exit
    status is 3, and the gate report and the audit log are written."""
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0) + read("boom", 0)
                  + read("c", 0))
    project.pytester.makeconftest("""
        def pytest_runtest_logfinish(nodeid):
            if "boom" in nodeid:
                raise RuntimeError("a plugin broke")
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "--audit-log=audit.jsonl", *args)
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"
    assert any("internal error" in error and "a plugin broke" in error
               for error in report["errors"]), report["errors"]
    assert rollbacks(project) == []
    assert audit_verdicts(project) == ["blocked"]


# --- whatever pytest reports as failed or error for a check counts ------------------------

PHASE_CONFTEST = """
    import os
    import signal

    import pytest

    def broken(item, phase):
        return item.name.startswith("broken") and os.environ["BREAK_IN"] == phase

    def pytest_runtest_setup(item):
        if broken(item, "setup"):
            raise RuntimeError("setup broke")
        if broken(item, "crash-setup") and not hasattr(item, "obj"):  # a YAML check
            os.kill(os.getpid(), signal.SIGKILL)

    def pytest_runtest_teardown(item):
        if broken(item, "teardown"):
            raise RuntimeError("teardown broke")

    def pytest_runtest_call(item):
        if broken(item, "call"):
            raise RuntimeError("call broke")
        if broken(item, "crash-call"):
            os.kill(os.getpid(), signal.SIGKILL)

    @pytest.fixture
    def dies(request):
        if broken(request.node, "crash-setup"):
            os.kill(os.getpid(), signal.SIGKILL)   # the worker dies in the fixture's setup
    """


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
@pytest.mark.parametrize("phase", ["setup", "call", "teardown"])
@pytest.mark.parametrize("kind", ["yaml", "python"])
def test_an_error_in_any_phase_counts(project: Project, tracker: LoopbackServer,
                                      monkeypatch: pytest.MonkeyPatch, args: list[str],
                                      phase: str, kind: str) -> None:
    environment(project, tracker.url, ROLLBACK)
    monkeypatch.setenv("BREAK_IN", phase)
    project.pytester.makeconftest(PHASE_CONFTEST)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("ok", 0)
                  + (read("broken", 0) if kind == "yaml" else ""))
    if kind == "python":
        (project.path / "suites" / "test_py.py").write_text(
            "def test_ok(service):\n    pass\n\n\ndef broken_check(service):\n    pass\n")
        project.pytester.makeini("[pytest]\npython_functions = test_* broken_*\n")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    failed = [check for check in report["checks"] if check["outcome"] == "failed"]
    assert [check["name"] for check in failed] == ["broken" if kind == "yaml" else "broken_check"]
    assert f"{phase} broke" in failed[0]["message"]
    assert rollbacks(project) == ["rolled back"]


@pytest.mark.parametrize("when", ["crash-setup", "crash-call"])
@pytest.mark.parametrize("kind", ["yaml", "python"])
def test_a_worker_killed_in_a_check_counts(project: Project, tracker: LoopbackServer,
                                           monkeypatch: pytest.MonkeyPatch, when: str,
                                           kind: str) -> None:
    """Killed before the check's setup report reached the controller, the worker leaves only
    the node id: the check still counts, with its YAML location and ``on_fail``. A Python
    check's marker cannot be read there: its crash blocks, never rolls back (it may have been
    a pre-deploy check)."""
    environment(project, tracker.url, ROLLBACK)
    monkeypatch.setenv("BREAK_IN", when)
    project.pytester.makeconftest(PHASE_CONFTEST)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("ok", 0)
                  + ("  - {name: broken, kind: checklist, on_fail: rollback, window: true}\n"
                     if kind == "yaml" else ""))
    if kind == "python":
        (project.path / "suites" / "test_py.py").write_text(
            "def test_ok(service):\n    pass\n\n\ndef broken_check(service, dies):\n    pass\n")
        project.pytester.makeini("[pytest]\npython_functions = test_* broken_*\n")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       "-p", "xdist", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    undescribed = kind == "python" and when == "crash-setup"
    assert report["verdict"] == ("blocked" if undescribed else "rolled_back")
    failed = [check for check in report["checks"] if check["outcome"] == "failed"]
    assert len(failed) == 1 and "crashed" in failed[0]["message"]
    if undescribed:
        assert failed[0]["on_fail"] == "block"
        assert rollbacks(project) == []
        return
    if kind == "yaml":
        assert failed[0]["id"] == "post::broken[prod]"
        assert (failed[0]["file"], failed[0]["line"], failed[0]["kind"]) == \
            ("suites/post.yaml", 4, "checklist")
    else:
        assert failed[0]["file"] == "suites/test_py.py"
    assert rollbacks(project) == ["rolled back"]


# --- a reporter's failure is no gate failure ----------------------------------------------

BROKEN_ALLURE = """
    import allure_commons

    class Broken:
        @allure_commons.hookimpl
        def add_label(self, label_type, labels):
            raise RuntimeError("allure is broken")

    def pytest_configure(config):
        allure_commons.plugin_manager.register(Broken(), "broken-allure")

    def pytest_unconfigure(config):
        allure_commons.plugin_manager.unregister(name="broken-allure")
    """


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
def test_a_failing_allure_reporter_warns_and_exits_non_zero(
        project: Project, tracker: LoopbackServer, args: list[str]) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0) + read("b", 0))
    project.pytester.makeconftest(BROKEN_ALLURE)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       f"--alluredir={project.path / 'allure'}", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "passed"
    assert rollbacks(project) == []
    result.stdout.fnmatch_lines(["  ERROR cannot write Allure results of suites/post.yaml::post::a[[]prod[]]: "
                                 "RuntimeError: allure is broken"])


def test_an_unwritable_github_summary_warns_and_exits_non_zero(
        project: Project, tracker: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project.path))  # a folder
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "passed"
    assert rollbacks(project) == []
    result.stdout.fnmatch_lines(["  ERROR cannot append to $GITHUB_STEP_SUMMARY *"])


def test_an_unusable_alluredir_rolls_nothing_back_and_replaces_the_report(
        project: Project, tracker: LoopbackServer) -> None:
    """Allure cannot make its folder (a file is in the way): the run never starts; the older
    report is replaced by one saying so, and nothing is rolled back."""
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    (project.path / "gate.json").write_text('{"env": "prod", "verdict": "passed"}')
    (project.path / "afile").write_text("")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json",
                       f"--alluredir={project.path / 'afile' / 'allure'}")
    assert result.ret != pytest.ExitCode.OK
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked" and report["checks"] == []
    assert rollbacks(project) == []


# --- the exit status follows the verdict in every mode ------------------------------------

# verdict -> (rollback actions of the environment, checks, extra options, exit status)
VERDICTS = {
    "passed": (ROLLBACK, read("ok", 0), [], 0),
    "passed_with_warnings": (ROLLBACK, "  - {name: soft, kind: smoke, on_fail: warn, request: "
                             "{path: /track/soft, params: {status: '503'}}}\n", [], 0),
    "inconclusive": (ROLLBACK, read("ok", 0), ["-k", "nothing_has_this_name"], 1),
    "blocked": (ROLLBACK, "  - {name: gate, kind: checklist, command: 'exit 1'}\n", [], 1),
    "rolled_back": (ROLLBACK, read("ok", 0) + "  - {name: down, kind: health, request: "
                    "{path: /track/down, params: {status: '503'}}}\n", [], 1),
    "rollback_failed": ("    rollback:\n      - command: 'exit 3'\n",
                        "  - {name: down, kind: health, request: {path: /track/down, params: "
                        "{status: '503'}}}\n", [], 1),
    "rollback_skipped": (ROLLBACK, "  - {name: down, kind: health, request: {path: /track/down, "
                         "params: {status: '503'}}}\n", ["--rollback=dry-run"], 1),
    "failed": ("", "  - {name: down, kind: health, request: {path: /track/down, params: "
               "{status: '503'}}}\n", [], 1),
}
MODES = {"n0": [], "n2": ["-p", "xdist", "-n", "2"], "fast": ["--rollback-fast"],
         "n2-fast": ["-p", "xdist", "-n", "2", "--rollback-fast"],
         "n2-maxfail": ["-p", "xdist", "-n", "2", "--maxfail=1"]}


# The modes that stop a run act only when something failed.
STOPPING = ("fast", "n2-fast", "n2-maxfail")


@pytest.mark.parametrize(("verdict", "mode"), [
    (verdict, mode) for verdict in sorted(VERDICTS) for mode in sorted(MODES)
    if mode not in STOPPING or verdict not in ("passed", "passed_with_warnings", "inconclusive")])
def test_the_exit_status_follows_the_verdict(project: Project, tracker: LoopbackServer,
                                             verdict: str, mode: str) -> None:
    rollback, checks, extra, status = VERDICTS[verdict]
    environment(project, tracker.url, rollback)
    project.suite("post.yaml", f"service: api\nchecks:\n{checks}")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *extra,
                       *MODES[mode])
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == verdict
    assert result.ret == status


def test_alluredir_with_a_space_outside_the_project_under_xdist(
        project: Project, tracker: LoopbackServer,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """``--alluredir DIR``: DIR, once Allure made it, was a test path in each worker's rootdir
    search; DIR outside the project moved the workers' rootdir away from it."""
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0) + read("b", 0))
    outside = tmp_path_factory.mktemp("outside") / "allure"
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=prod",
                          "-n", "2", "--alluredir", str(outside), "--gate-report=gate.json"],
                         cwd=project.path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "passed"
    assert len(list(outside.glob("*-result.json"))) == 2


# --- no stale report ----------------------------------------------------------------------

STALE = '{"env": "prod", "verdict": "passed", "checks": []}'


@pytest.mark.parametrize(("args", "error"), [
    (["--env=nope"], "usage error: --env: environments.yaml: unknown environment 'nope'*"),
    (["--env=prod", "--rollback=maybe"], "usage error: --rollback / deploycheck_rollback: *"),
    (["--env=nope", "-p", "xdist", "-n", "2"], "usage error: --env: *"),
    ([], "usage error: no environment selected, but suites were collected*"),
])
def test_a_usage_error_replaces_an_older_report(project: Project, tracker: LoopbackServer,
                                                args: list[str], error: str) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    (project.path / "gate.json").write_text(STALE)
    result = runpytest(project.pytester, "--gate-report=gate.json", "--audit-log=audit.jsonl",
                       *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked" and report["checks"] == []
    assert len(report["errors"]) == 1 and fnmatch.fnmatch(report["errors"][0], error)
    assert audit_verdicts(project) == ["blocked"]


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
def test_sigterm_before_the_first_check_replaces_an_older_report(
        project: Project, tracker: LoopbackServer, args: list[str]) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    project.pytester.makeconftest("""
        import pathlib
        import time

        def pytest_collection_modifyitems(config, items):
            pathlib.Path("collected").touch()  # on the xdist workers: the controller waits
            time.sleep(30)
        """)
    (project.path / "gate.json").write_text(STALE)
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                            "--env=prod", "--gate-report=gate.json", *args],
                           cwd=project.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (project.path / "collected").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        output, _ = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked", report
    assert rollbacks(project) == []


def test_a_stop_leaves_the_checks_that_did_not_run_unevaluated(
        project: Project, tracker: LoopbackServer) -> None:
    """-x stopping at a failure in one environment: the other, where nothing failed, is not
    passed, as some of its checks never ran."""
    project.environments(f"""\
        environments:
          prod: {{services: {{api: {{url: "{tracker.url}"}}}}}}
          staging: {{services: {{api: {{url: "{tracker.url}"}}}}}}
        """)
    project.suite("post.yaml", "service: api\nchecks:\n"
                  "  - {name: gate, kind: checklist, command: 'exit 1', envs: [prod]}\n"
                  + read("a", 0) + read("b", 0))
    result = runpytest(project.pytester, "--env=prod,staging", "--gate-report=gate.json", "-x",
                       "--deploycheck-concurrency=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    verdicts = {document["env"]: document for document in report["environments"]}
    assert verdicts["prod"]["verdict"] == "blocked"
    assert verdicts["staging"]["verdict"] == "blocked"
    assert verdicts["staging"]["errors"] == ["4 of 5 items never ran (stopping after 1 failures)"]


def test_workers_dying_before_any_check_block_the_gate(project: Project,
                                                       tracker: LoopbackServer) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    project.pytester.makeconftest("""
        import os

        def pytest_collection_modifyitems(config):
            if hasattr(config, "workerinput"):
                os._exit(1)
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", "-p", "xdist",
                       "-n", "2", "--max-worker-restart=0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"
    assert any(error.startswith("xdist worker gw") for error in report["errors"])


def test_a_run_killed_on_the_spot_leaves_no_older_pass(project: Project,
                                                        tracker: LoopbackServer) -> None:
    environment(project, tracker.url, ROLLBACK)
    project.suite("post.yaml", "service: api\nchecks:\n" + read("a", 0))
    (project.path / "suites" / "test_dies.py").write_text(
        "import os, signal\n\n\ndef test_dies(deploy_env):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n")
    (project.path / "gate.json").write_text(STALE)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=prod",
                          "--gate-report=gate.json"], cwd=project.path, capture_output=True,
                         timeout=60)
    assert run.returncode == -signal.SIGKILL
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "blocked"
    assert report["errors"] == ["the run has not finished: it is running, or it was killed"]


def test_an_unexpected_exception_in_a_runner_fails_its_check_with_one_line(
        project: Project, tracker: LoopbackServer) -> None:
    """A YAML date in a JSON body: serialising it raises TypeError, which no runner expects
    (it stands for any such exception: if dates become a collection error, pick another);
    the check fails with it as its reason, without a traceback through the plugin."""
    environment(project, tracker.url)
    project.suite("post.yaml", "service: api\nchecks:\n  - {name: dated, kind: smoke, request: "
                  "{method: POST, path: /track/dated, json: {when: 2024-01-01}}}\n")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["the check raised TypeError: Object of type date is not JSON "
                                 "serializable"])
    assert "Traceback" not in result.stdout.str() and "site-packages" not in result.stdout.str()
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "failed"
    assert report["checks"][0]["message"] == \
        "TypeError: Object of type date is not JSON serializable"


@pytest.mark.parametrize("args", WORKERS, ids=["n0", "n2"])
def test_a_failure_that_cannot_be_described_still_fails_its_check(
        project: Project, tracker: LoopbackServer, args: list[str]) -> None:
    """An exception whose text cannot be had (its ``__str__`` raises) broke the description
    of the report, an INTERNALERROR; the check fails, the deploy is rolled back."""
    environment(project, tracker.url, ROLLBACK)
    (project.path / "suites").mkdir()
    (project.path / "suites" / "test_weird.py").write_text(
        "class Weird(Exception):\n    def __str__(self):\n        raise RuntimeError('no text')"
        "\n\n\ndef test_weird(deploy_env):\n    raise Weird()\n")
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *args)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert report["checks"][0]["outcome"] == "failed"
    assert rollbacks(project) == ["rolled back"]
