"""The concurrent engine against a real server that records when each request ran: read-only
checks run together within the bound, anything with a side effect runs alone and in order, the
outcomes are those of ``--deploycheck-concurrency 1``, and stopping the run is prompt."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from conftest import Project, runpytest
from metric_servers import Prometheus
from pytest_deploycheck.runtime.engine import PROBES, Engine
from servers import LoopbackServer, start_server, stop_server


@pytest.fixture
def tracker() -> Iterator[LoopbackServer]:
    """A server of this test's own, so that its timeline holds only this test's requests."""
    srv = start_server()
    yield srv
    stop_server(srv)


def environment(project: Project, url: str, extra: str = "") -> None:
    project.environments(f'environments:\n  prod:\n    services: {{api: {{url: "{url}"}}}}\n'
                         + textwrap.indent(textwrap.dedent(extra), "    "))


def reads(name: str, count: int, ms: int = 300) -> str:
    return (f"  - {{name: {name}, kind: health, parametrize: {{n: {list(range(count))}}}, "
            f"request: {{path: /track/{name}, params: {{ms: '{ms}'}}}}}}\n")


@pytest.mark.parametrize(("option", "bound"), [("1", 1), ("4", 4), (None, 12)])
def test_read_only_checks_run_together_within_the_bound(
        project: Project, tracker: LoopbackServer, option: str | None, bound: int) -> None:
    environment(project, tracker.url)
    project.suite("reads.yaml", "service: api\nchecks:\n" + reads("r", 12))
    args = [f"--deploycheck-concurrency={option}"] if option else []
    result = runpytest(project.pytester, "--env=prod", *args)
    result.assert_outcomes(passed=12)
    peak = max(entry[4] for entry in tracker.timeline)
    assert len(tracker.timeline) == 12
    # The default bound (32) is above the 12 checks: all may start at once.
    assert peak == bound if option else peak >= 6


def _drain(engine: Engine, keys: list[str]) -> None:
    """Take every key as the run loop does: whichever finishes first."""
    pending = dict.fromkeys(keys)
    while pending:
        key = engine.first_done(pending)
        del pending[key]
        engine.take(key, lambda: None)


def test_checks_answered_at_once_run_at_their_items() -> None:
    """After a few in the pool (a first check that hangs must not hold the run), calls that
    keep the process busy run on the calling thread: no handing over, no lock contention."""
    engine = Engine(32)
    ran: dict[str, str] = {}
    keys = [f"k{i}" for i in range(20)]
    for key in keys:
        engine.submit(key, lambda key=key: ran.setdefault(key, threading.current_thread().name))
    try:
        _drain(engine, keys)
    finally:
        engine.close()
    assert list(ran) == keys  # one at a time, in order
    assert all(ran[key] == "deploycheck-0" for key in keys[:PROBES])
    assert all(ran[key] == threading.main_thread().name for key in keys[PROBES:])


@pytest.mark.parametrize("fast_first", [0, 12])
def test_waiting_checks_make_the_run_go_ahead(fast_first: int) -> None:
    """Calls that wait (on the network, here a sleep) start together once one has kept the run
    waiting, also after fast ones ran at their items."""
    engine = Engine(32)
    running, peak = [0], [0]
    lock = threading.Lock()

    def wait() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.1)
        with lock:
            running[0] -= 1

    keys = [f"fast{i}" for i in range(fast_first)] + [f"slow{i}" for i in range(20)]
    for key in keys:
        engine.submit(key, (lambda: None) if key.startswith("fast") else wait)
    started = time.monotonic()
    try:
        _drain(engine, keys)
    finally:
        engine.close()
    assert peak[0] >= 8
    assert time.monotonic() - started < 1.5  # 20 × 0.1 s one after another would be 2 s


def test_checks_of_several_files_report_as_they_finish(
        project: Project, tracker: LoopbackServer) -> None:
    """Reported in the order checks finish, items of different suite files interleave: each
    item is torn down for whichever runs next, not for the next one in file order."""
    environment(project, tracker.url)
    project.suite("a.yaml", "service: api\nchecks:\n" + reads("quick", 1, ms=0)
                  + reads("slow", 1, ms=800))
    project.suite("b.yaml", "service: api\nchecks:\n" + reads("middle", 1, ms=200))
    result = runpytest(project.pytester, "--env=prod", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*a.yaml::*quick*PASSED*", "*b.yaml::*middle*PASSED*",
                                 "*a.yaml::*slow*PASSED*"])


# One xdist worker runs the items in order, starting each stretch ahead from its queue: with
# `load` the controller keeps adding to that queue, with `loadfile` it sends a file at once.
@pytest.mark.parametrize("args", [[], ["-p", "xdist", "-n", "1"],
                                  ["-p", "xdist", "-n", "1", "--dist", "loadfile"]])
def test_side_effects_run_alone_and_in_order(project: Project, tracker: LoopbackServer,
                                             args: list[str]) -> None:
    environment(project, tracker.url)
    fetch = f"import urllib.request; urllib.request.urlopen('{tracker.url}/track/cmd?ms=200')"
    project.suite("a.yaml", "service: api\nchecks:\n"
                  + reads("r1", 4)
                  + "  - {name: w1, kind: smoke, request: {method: POST, path: /track/w1, "
                    "params: {ms: '200'}, json: {a: 1}}}\n"
                  + reads("r2", 4)
                  + "  - name: w2\n    kind: smoke\n    steps:\n"
                    "      - {request: {path: /track/w2-read, params: {ms: '100'}}}\n"
                    "      - {request: {method: PUT, path: /track/w2, params: {ms: '100'}}}\n"
                  + reads("r3", 4)
                  + f"  - {{name: cmd, kind: checklist, command: [{sys.executable}, -c, "
                    f"{json.dumps(fetch)}]}}\n"
                  + reads("r4", 4))
    (project.path / "suites" / "test_b.py").write_text(textwrap.dedent("""\
        def test_python_check(service):
            service("api").get("/track/py", params={"ms": "200"})
        """))
    project.suite("z.yaml", "service: api\nchecks:\n" + reads("r5", 4))
    result = runpytest(project.pytester, "--env=prod", "-v", *args)
    result.assert_outcomes(passed=4 * 5 + 4)
    timeline = sorted(tracker.timeline, key=lambda entry: entry[2])
    labels = [name for name, *_ in timeline]
    # Collapse each run of one label: the order of effects is the order of the items.
    order = [label for index, label in enumerate(labels) if index == 0 or labels[index - 1] != label]
    expected = ["r1", "w1", "r2", "w2-read", "w2", "r3", "cmd", "r4", "py", "r5"]
    if "loadfile" in args:  # which file comes next is xdist's choice
        assert order[:8] == expected[:8] and sorted(order[8:]) == ["py", "r5"]
    else:
        assert order == expected
    for name, _method, started, ended, in_flight in timeline:
        if not name.startswith("r"):
            others = [e for e in timeline if e[0] != name]
            assert in_flight == 1, name
            assert all(e[3] <= started or e[2] >= ended for e in others), name
    for group in ("r1", "r2", "r3", "r4", "r5"):
        assert max(e[4] for e in timeline if e[0] == group) > 1, group


SUITE = """\
    service: api
    checks:
      - {name: ok, kind: health, parametrize: {n: [1, 2, 3]}, request: {path: /ok}}
      - {name: down, kind: health, request: {path: /status/503}, expect: {status: 200}}
      - name: starting up
        kind: health
        parametrize: {key: [a, b]}
        request: {path: "/flaky/{{ key }}", params: {fail: "2"}}
        retry: {until: 10s, interval: 50ms}
      - name: gives up
        kind: health
        request: {path: /flaky/never, params: {fail: "1000"}}
        retry: {attempts: 3, interval: 50ms}
      - {name: warns, kind: smoke, on_fail: warn, request: {path: /status/500}}
      - {name: only staging, kind: smoke, envs: [staging], request: {path: /ok}}
      - name: saved token
        kind: smoke
        steps:
          - {request: {path: /login}, save: {token: token}}
          - request: {path: /me, headers: {Authorization: "Bearer {{ token }}"}}
      - {name: not json, kind: smoke, request: {path: /text}, expect: {json: {a: 1}}}
      - {name: skipped, kind: smoke, marks: [skip], request: {path: /ok}}
      - {name: written, kind: smoke, request: {method: POST, path: /echo, json: {a: 1}}}
      - {name: clock, kind: checklist, window: true}
    """


@pytest.mark.parametrize("args", [["-p", "xdist", "-n", "2"],
                                  ["-p", "xdist", "-n", "2", "--deploycheck-concurrency=1"],
                                  ["--deploycheck-concurrency=3"], []])
def test_concurrency_changes_no_outcome(project: Project, args: list[str]) -> None:
    outcomes = []
    for extra in (["--deploycheck-concurrency=1"], args):
        # A fresh server per run: the flaky endpoints count their hits.
        srv = start_server()
        try:
            environment(project, srv.url)
            with (project.path / "environments.yaml").open("a") as file:
                file.write("  staging: {}\n")  # the one `only staging` runs in
            project.suite("post.yaml", SUITE)
            (project.path / "suites" / "test_python.py").write_text(textwrap.dedent("""\
                import pytest

                @pytest.mark.parametrize("path", ["/ok", "/status/502"])
                def test_python_check(service, path):
                    assert service("api").get(path).status_code == 200
                """))
            result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *extra)
        finally:
            stop_server(srv)
        report = json.loads((project.path / "gate.json").read_text())
        outcomes.append((result.ret, report["verdict"],
                         [(check["nodeid"], check["outcome"]) for check in report["checks"]]))
    serial, concurrent = outcomes
    assert concurrent == serial
    assert serial[1] == "failed"  # rollback needed, and the environment has no actions
    assert dict(serial[2]) == {
        **{f"suites/post.yaml::post::ok[prod-{n}]": "passed" for n in (1, 2, 3)},
        "suites/post.yaml::post::down[prod]": "failed",
        "suites/post.yaml::post::starting up[prod-a]": "passed",
        "suites/post.yaml::post::starting up[prod-b]": "passed",
        "suites/post.yaml::post::gives up[prod]": "failed",
        "suites/post.yaml::post::warns[prod]": "warned",
        "suites/post.yaml::post::saved token[prod]": "passed",
        "suites/post.yaml::post::not json[prod]": "failed",
        "suites/post.yaml::post::skipped[prod]": "skipped",
        "suites/post.yaml::post::written[prod]": "passed",
        "suites/post.yaml::post::clock[prod]": "passed",
        "suites/test_python.py::test_python_check[prod-/ok]": "passed",
        "suites/test_python.py::test_python_check[prod-/status/502]": "failed",
    }


def test_exitfirst_stops_outstanding_checks(project: Project, tracker: LoopbackServer) -> None:
    """``-x``: the checks still retrying when the first failure is reported give up at once
    instead of retrying for their minute each, and send nothing more."""
    environment(project, tracker.url)
    project.suite("post.yaml", """\
        service: api
        checks:
          - name: waits for readiness
            kind: health
            parametrize: {n: [1, 2, 3, 4, 5, 6, 7, 8]}
            request: {path: /track/never-ready, params: {status: "503"}}
            retry: {until: 60s, interval: 100ms}
          - {name: broken, kind: health, request: {path: /track/broken, params: {status: "500",
             ms: "300"}}}
        """)
    started = time.monotonic()
    result = runpytest(project.pytester, "--env=prod", "-x")
    elapsed = time.monotonic() - started
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    sent = len(tracker.timeline)
    time.sleep(1.0)
    assert len(tracker.timeline) == sent  # nothing retries after the run
    assert elapsed < 20  # each retrying check alone would take 60 s


def test_rollback_fast_reacts_to_the_first_failure_to_finish(
        project: Project, tracker: LoopbackServer) -> None:
    """A failing check behind a long one in file order still starts the rollback as soon as
    it fails; the long check's request is abandoned, not waited for."""
    environment(project, tracker.url, """\
        rollback:
          - command: 'echo rolled back >> rollbacks.log'
        """)
    project.suite("post.yaml", """\
        service: api
        checks:
          - {name: a long one, kind: health, timeout: 60s, request: {path: /track/long,
             params: {ms: "30000"}, timeout: 60s}}
          - {name: b broken, kind: health, request: {path: /track/broken, params: {status: "503",
             ms: "200"}}}
        """)
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--env=prod",
                          "--rollback-fast", "--gate-report=gate.json"], cwd=project.path,
                         capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout  # rolled_back
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert report["rollback"]["triggered_by"] == ["post::b broken[prod]"]
    assert (project.path / "rollbacks.log").read_text() == "rolled back\n"
    assert elapsed < 15, run.stdout  # the long request alone would hold the run for 30 s


def test_observations_of_several_metrics_overlap(project: Project, prometheus: Prometheus) -> None:
    """Four metrics watched for 2 s each take about 2 s, not 8; each measurement's progress
    line still reaches the terminal from the thread that runs the check."""
    project.metric_source(f'{{type: prometheus, url: "{prometheus.url}", timeout: 1s}}')
    project.suite("watch.yaml", """\
        checks:
          - name: watch
            kind: metric
            parametrize: {n: [1, 2, 3, 4]}
            query: dc_latency_seconds
            threshold: "< 500ms"
            observe: {duration: 2s, interval: 1s}
        """)
    project.pytester.makeconftest("""
        import json

        def pytest_runtest_logreport(report):
            info = getattr(report, "deploycheck", None)
            if info and report.when == "call":
                with open("windows.jsonl", "a") as out:
                    at = [m["at"] for m in info["details"]["measurements"]]
                    out.write(json.dumps([min(at), max(at)]) + "\\n")
        """)
    result = runpytest(project.pytester, "--env=test")
    result.assert_outcomes(passed=4)
    windows = [json.loads(line) for line in
               (project.path / "windows.jsonl").read_text().splitlines()]
    assert len(windows) == 4
    # Every window started before every other one ended: all four were watched at once.
    assert max(start for start, _ in windows) < min(end for _, end in windows)
    for n in (1, 2, 3, 4):
        result.stdout.fnmatch_lines([f"    watch[[]test-{n}[]]: measurement 3/3 ok*"])
