"""A check passes only on evidence: gaps, projections under functions, and other ways a
verdict could rest on less than it says (real Prometheus, real HTTP servers)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conftest import Project, runpytest
from metric_servers import Prometheus, start_prometheus, stop_prometheus
from servers import LoopbackServer

GAP_STEP = 15


def gap_series(start: float) -> str:
    """``dc_errors`` for two pods over the last 30 minutes: both 0, but pod b reports nothing
    from 15 to 8 minutes ago (longer than Prometheus' 5-minute lookback, so a real gap); and
    ``dc_pods`` for pod c, which starts reporting only 10 minutes ago (a new pod, no gap)."""
    base = int(start) - 1800
    lines = ["# TYPE dc_errors gauge"]
    for t in range(base, int(start) + 600, GAP_STEP):
        lines.append(f'dc_errors{{pod="a"}} 0 {t}')
        if not start - 900 <= t < start - 480:
            lines.append(f'dc_errors{{pod="b"}} 0 {t}')
    lines.append("# TYPE dc_pods gauge")
    for t in range(base, int(start) + 600, GAP_STEP):
        lines.append(f'dc_pods{{pod="a"}} 1 {t}')
        if t >= start - 600:
            lines.append(f'dc_pods{{pod="c"}} 1 {t}')
    return "\n".join([*lines, "# EOF"]) + "\n"


@pytest.fixture(scope="module")
def gappy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    srv = start_prometheus(tmp_path_factory.mktemp("gappy"), backfill=gap_series(time.time()))
    yield srv
    stop_prometheus(srv)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return runpytest(pytester, "--env=test", *args)


# --- combining series over a window -----------------------------------------------------------

@pytest.mark.parametrize("how", ["sum", "max", "avg", "min"])
def test_a_series_with_a_gap_inside_the_window_is_not_combined_over_fewer_series(
        project: Project, gappy: Prometheus, pytester: pytest.Pytester, how: str) -> None:
    # Pod b reported nothing for 7 minutes: the sum there is pod a's alone, and pod b's
    # errors in those minutes are unknown, not 0.
    project.metric_source(f'{{type: prometheus, url: "{gappy.url}"}}')
    project.suite("m.yaml", f"""\
        checks:
          - {{name: errors, kind: metric, query: dc_errors, series: {how}, threshold: "< 1",
             window: 20m, step: 60s}}
        """)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        f'  FAILED series {{*pod="b"}} has no sample at *Z (a gap inside the window): '
        f"'series: {how}' would judge fewer series there"])


def test_a_series_that_starts_inside_the_window_is_no_gap(
        project: Project, gappy: Prometheus, pytester: pytest.Pytester) -> None:
    # A pod that started 10 minutes ago has no samples before: it did not exist, as PromQL's
    # own sum() sees it.
    project.metric_source(f'{{type: prometheus, url: "{gappy.url}"}}')
    project.suite("m.yaml", """\
        checks:
          - {name: pods, kind: metric, query: dc_pods, series: sum, threshold: ">= 1",
             window: 20m, step: 60s}
        """)
    run(pytester).assert_outcomes(passed=1)
