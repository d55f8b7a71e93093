"""Benchmark: this plugin against a hand-written pytest suite and Tavern, on one machine.

    .venv/bin/python bench/run.py [--repeat 3] [--skip-tavern]

Starts a loopback HTTP server (``/fast`` answers at once, ``/slow`` after 50 ms), writes the
same checks three ways into temporary folders, runs each with pytest serially and with ``-n 2``
(this plugin also with ``--deploycheck-concurrency=1``), the configurations of a figure in turn,
and prints the median wall time of each (and CPU time, of the process and its xdist workers),
its ratio to the hand-written suite run serially, and what it took beyond an empty pytest run
(pytest's own start-up, more with ``-n 2`` starting its workers), then collection time for 1000
checks against an empty pytest run, peak RSS, and how soon ``--rollback-fast`` starts the
rollback. The short runs (empty, collection) are repeated three times as often.
Tavern 3.7.1 needs pytest <= 9.1, so it runs from its own virtualenv (bench/.venv-tavern, made
on first use). Not part of the test suite: wall times on shared machines are noisy, so compare
ratios from one run.

Figures behind the engine's choices (``pytest_deploycheck/runtime/engine.py``), from this
benchmark's 1000 checks against ``/fast`` on the 2-core development machine: 8.3 s with 32
threads, 7.5 s with one (so the pool grows only while the process is idle); 5.0 s of CPU with
the checks run ahead on one thread, 4.2 s at their items (so fast checks run at their items);
handing a call to a pool thread and back cost 190 µs of CPU.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
TAVERN_VENV = ROOT / "bench" / ".venv-tavern"
BODY = json.dumps({"status": "ok", "version": "1.2.3"}).encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service would
    # Headers and body go out in two writes; with Nagle's algorithm the second waits for the
    # client's delayed ACK (40 ms), which would swamp every figure.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(0.05)
        status = 500 if self.path.startswith("/broken") else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


def serve() -> str:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


# --- the same checks, three ways --------------------------------------------------------------

def plugin_project(folder: Path, url: str, count: int, path: str,
                   rollback: bool = False) -> Path:
    folder.mkdir(parents=True)
    env = f'environments:\n  bench:\n    services:\n      api: {{url: "{url}"}}\n'
    if rollback:
        env += "    rollback:\n      - command: [python, -c, 'pass']\n"
    (folder / "environments.yaml").write_text(env)
    (folder / "suites").mkdir()
    checks = []
    if rollback:
        checks.append("  - {name: broken, kind: health, request: {path: /broken}, "
                      "expect: {status: 200}}")
    checks += [f"  - {{name: check {n}, kind: health, request: {{path: {path}}}, "
               f"expect: {{status: 200, json: {{status: ok}}}}}}" for n in range(count)]
    (folder / "suites" / "bench.yaml").write_text("service: api\nchecks:\n" + "\n".join(checks)
                                                  + "\n")
    return folder


def handwritten_project(folder: Path, url: str, count: int, path: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "test_bench.py").write_text(textwrap.dedent(f"""\
        import httpx
        import pytest

        CLIENT = httpx.Client(base_url="{url}", timeout=10)


        @pytest.mark.parametrize("n", range({count}))
        def test_check(n):
            answer = CLIENT.get("{path}")
            assert answer.status_code == 200
            assert answer.json()["status"] == "ok"
        """))
    return folder


def tavern_project(folder: Path, url: str, count: int, path: str) -> Path:
    folder.mkdir(parents=True)
    docs = [textwrap.dedent(f"""\
        test_name: check {n}
        stages:
          - name: get
            request: {{url: "{url}{path}", method: GET}}
            response:
              status_code: 200
              json: {{status: ok, version: "1.2.3"}}
        """) for n in range(count)]
    (folder / "test_bench.tavern.yaml").write_text("---\n" + "---\n".join(docs))
    return folder


# --- running ---------------------------------------------------------------------------------

class Timing(NamedTuple):
    wall: float  # seconds
    # CPU seconds of the process and its children (xdist workers): on a shared machine, time
    # waiting for a CPU another guest holds lengthens the wall time but not this.
    cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(python: Path, folder: Path, args: list[str], expect: str | None = None
        ) -> tuple[Timing, int]:
    """Wall and CPU time and peak RSS (KB) of one pytest run in ``folder``."""
    wrapper = ("import resource, sys, pytest\n"
               "code = pytest.main(sys.argv[1:])\n"
               "print('BENCH_MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
               "sys.exit(code)")
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([str(python), "-c", wrapper, "-p", "no:cacheprovider", "-q", *args],
                          cwd=folder, capture_output=True, text=True, timeout=900)
    timing = Timing(time.perf_counter() - started, _children_cpu() - cpu)
    if expect is not None and expect not in done.stdout:
        raise SystemExit(f"unexpected outcome in {folder} {args}: expected {expect!r}\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    rss = next((int(line.split()[1]) for line in done.stdout.splitlines()
                if line.startswith("BENCH_MAXRSS")), 0)
    return timing, rss


Config = tuple[Path, Path, list[str], str | None]  # python, folder, arguments, expected output


def interleaved(repeat: int, configs: dict[str, Config]) -> dict[str, Timing]:
    """The median wall and CPU time of each configuration, running them in turn ``repeat``
    times: this machine's speed drifts over minutes, and running one configuration's runs back
    to back let a slow minute land on one figure alone."""
    timings: dict[str, list[Timing]] = {key: [] for key in configs}
    for _ in range(repeat):
        for key, (python, folder, args, expect) in configs.items():
            timings[key].append(run(python, folder, args, expect)[0])
    return {key: Timing(statistics.median(t.wall for t in values),
                        statistics.median(t.cpu for t in values))
            for key, values in timings.items()}


def tavern_python() -> Path:
    python = TAVERN_VENV / "bin" / "python"
    if not python.exists():
        print("making bench/.venv-tavern (tavern 3.7.1, pytest<=9.1, pytest-xdist) ...",
              flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(TAVERN_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "tavern==3.7.1", "pytest<=9.1",
                        "pytest-xdist"], check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--skip-tavern", action="store_true")
    args = parser.parse_args()
    url = serve()
    tools: list[tuple[str, Path, Callable[[Path, str, int, str], Path], list[str]]] = [
        ("deploycheck", PYTHON, plugin_project, ["--env=bench"]),
        ("hand-written pytest + httpx.Client", PYTHON, handwritten_project,
         ["-p", "no:deploycheck"]),
    ]
    if not args.skip_tavern:
        tools.append(("tavern 3.7.1", tavern_python(), tavern_project, []))
    # This checkout is an editable install and the machine may set PYTHONDONTWRITEBYTECODE:
    # compile the plugin's bytecode as pip does for a regular install, so that its import is
    # not timed as compiling from source while the other tools' packages load compiled.
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(ROOT / "pytest_deploycheck")],
                   check=True)
    print(f"machine: {os.cpu_count()} cores; median of {args.repeat} runs; server {url}\n")
    with tempfile.TemporaryDirectory(prefix="deploycheck-bench-") as tmp:
        base = Path(tmp)
        empty = base / "empty"
        empty.mkdir()
        (empty / "environments.yaml").write_text("environments: {}\n")
        # What pytest itself costs on this machine: start-up, plugins, xdist's workers; and
        # without this plugin: what importing and configuring it costs every run. These runs
        # are short and their differences small: three times as many of them.
        empties = interleaved(3 * args.repeat, {
            "0": (PYTHON, empty, ["-n", "0"], None), "2": (PYTHON, empty, ["-n", "2"], None),
            "bare": (PYTHON, empty, ["-p", "no:deploycheck"], None)})
        nothing = {workers: empties[workers] for workers in ("0", "2")}
        print(f"empty pytest run: {nothing['0'].wall:.2f} s (cpu {nothing['0'].cpu:.2f} s), "
              f"with -n 2 {nothing['2'].wall:.2f} s (cpu {nothing['2'].cpu:.2f} s); without this "
              f"plugin {empties['bare'].wall:.2f} s (cpu {empties['bare'].cpu:.2f} s)\n")
        for count, path, label in ((200, "/slow", "200 checks, endpoint answering in 50 ms"),
                                   (1000, "/fast", "1000 checks, fast endpoint")):
            print(f"{label}:")
            configs: dict[str, Config] = {}
            for name, python, make, extra in tools:
                folder = make(base / f"{name.split()[0]}-{count}", url, count, path)
                for workers in ("0", "2"):
                    configs[f"{name}, -n {workers}"] = (python, folder, [*extra, "-n", workers],
                                                        f"{count} passed")
                if name == "deploycheck":
                    configs["deploycheck --deploycheck-concurrency=1, -n 0"] = (
                        python, folder, [*extra, "--deploycheck-concurrency=1"],
                        f"{count} passed")
            figures = interleaved(args.repeat, configs)
            reference = figures["hand-written pytest + httpx.Client, -n 0"]
            for key, timing in figures.items():
                beyond = timing.wall - nothing["2" if key.endswith("-n 2") else "0"].wall
                print(f"  {key:48s} {timing.wall:6.2f} s  {timing.wall / reference.wall:5.2f}x "
                      f"hand-written serial  {beyond:6.2f} s beyond an empty run  "
                      f"cpu {timing.cpu:6.2f} s")
            print()

        folder = plugin_project(base / "collect-1000", url, 1000, "/fast")
        collection = interleaved(3 * args.repeat, {
            "collect": (PYTHON, folder, ["--env=bench", "--collect-only"],
                        "1000 tests collected"),
            "nothing": (PYTHON, empty, ["--collect-only"], None),
            # What pytest itself takes to collect 1000 items: the hand-written parametrized test.
            "plain": (PYTHON, base / "hand-written-1000",
                      ["-p", "no:deploycheck", "--collect-only"], "1000 tests collected"),
            "plain nothing": (PYTHON, empty, ["-p", "no:deploycheck", "--collect-only"], None)})
        collect, collected_nothing = collection["collect"], collection["nothing"]
        plain, plain_nothing = collection["plain"], collection["plain nothing"]
        print(f"collection of 1000 checks: {collect.wall:.2f} s; empty pytest run "
              f"{collected_nothing.wall:.2f} s; ratio {collect.wall / collected_nothing.wall:.2f} "
              f"(cpu {collect.cpu:.2f} s against {collected_nothing.cpu:.2f} s, "
              f"{collect.cpu / collected_nothing.cpu:.2f})")
        print(f"collection of the hand-written suite's 1000 tests: {plain.wall:.2f} s; empty "
              f"pytest run without this plugin {plain_nothing.wall:.2f} s; ratio "
              f"{plain.wall / plain_nothing.wall:.2f} (cpu {plain.cpu:.2f} s against "
              f"{plain_nothing.cpu:.2f} s, {plain.cpu / plain_nothing.cpu:.2f})")
        _, rss = run(PYTHON, base / "deploycheck-1000", ["--env=bench"], expect="1000 passed")
        print(f"peak RSS, 1000 checks, serial: {rss / 1024:.0f} MB")

        folder = plugin_project(base / "fast-rollback", url, 40, "/slow", rollback=True)
        for workers in ("0", "2"):
            reactions = []
            for _ in range(args.repeat):
                run(PYTHON, folder, ["--env=bench", "--rollback-fast", "-n", workers,
                                     "--gate-report=gate.json"])
                report = json.loads((folder / "gate.json").read_text())
                reactions.append(report["rollback"]["reaction_seconds"])
            print(f"--rollback-fast, -n {workers}: rollback started "
                  f"{statistics.median(reactions) * 1000:.0f} ms after the failing report "
                  f"(median; runs {', '.join(f'{r * 1000:.0f}' for r in reactions)} ms)")


if __name__ == "__main__":
    main()
