"""What the gate guarantees (README "What the gate guarantees"): any order in which concurrent
checks finish is safe, an exception anywhere in a check or in the run fails the gate, every
failed or errored item counts, a reporter's failure is no check failure, the exit status
follows the verdict in every mode, and no stale report survives a run that never started."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

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
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("args", [[], ["-p", "xdist", "-n", "1"],
                                  ["-p", "xdist", "-n", "1", "--dist", "loadfile"]],
                         ids=["n0", "load", "loadfile"])
def test_concurrent_checks_of_several_files_finish_in_any_order(
        project: Project, tracker: LoopbackServer, layout: str, args: list[str]) -> None:
    environment(project, tracker.url)
    for name, checks in LAYOUTS[layout].items():
        project.suite(name, f"service: api\nchecks:\n{checks}")
    count = sum(text.count("- {name") for text in LAYOUTS[layout].values())
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json", *args)
    result.assert_outcomes(passed=count)
    assert json.loads((project.path / "gate.json").read_text())["verdict"] == "passed"
    assert result.ret == 0
