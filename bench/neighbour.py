"""Benchmark: what the plugin costs a pytest run that is no deploy gate (a virtualenv shared with
unit tests: no environment selected, no suites folder).

    .venv/bin/python bench/neighbour.py [--repeat 15]

Writes a folder with two unit tests (one marked ``smoke``), then runs ``pytest -q`` there with
the plugin and with ``-p no:deploycheck``, interleaved, and prints the median wall time of each
and their difference. Not part of the test suite: wall times on shared machines are noisy, so
compare figures from one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = """\
import pytest


@pytest.mark.smoke
def test_marked_smoke():
    assert True


def test_plain():
    assert True
"""


def timed(folder: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
                   cwd=folder, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_unit.py").write_text(TESTS)
        timed(folder)  # warm the file cache
        with_plugin, without = [], []
        for _ in range(args.repeat):
            with_plugin.append(timed(folder))
            without.append(timed(folder, "-p", "no:deploycheck"))
    a, b = statistics.median(with_plugin), statistics.median(without)
    print(f"pytest with the plugin:      {a:.3f} s (median of {args.repeat})")
    print(f"pytest -p no:deploycheck:    {b:.3f} s")
    print(f"the plugin's cost:           {a - b:+.3f} s ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
