"""The metric core without pytest in the loop: units, series combination, answers, commands."""

from __future__ import annotations

import math
import time

import pytest

from pytest_deploycheck.checks.metric import Observe, combine
from pytest_deploycheck.metrics import Fetched, MetricQueryError, Sample, Series
from pytest_deploycheck.metrics.prometheus import parse_answer
from pytest_deploycheck.runtime.commands import run_command
from pytest_deploycheck.units import parse_quantity, parse_relative, parse_threshold


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), (2, 2.0), ("500ms", 0.5),
                                             ("99%", 0.99), ("1e-3", 0.001), ("5m", 300.0)])
def test_quantities_are_in_base_units(text: object, value: float) -> None:
    assert parse_quantity(text) == pytest.approx(value)


def test_threshold_unit_scales_the_limit_not_the_value() -> None:
    threshold = parse_threshold("< 500ms")
    assert threshold.limit == 0.5 and threshold.check(0.499) and not threshold.check(0.5)


@pytest.mark.parametrize(("text", "baseline", "limit"), [
    ("<= +10%", 0.2, 0.22), (">= -5%", 100.0, 95.0), ("<= +100", 1.5, 101.5), ("< +0", 0.0, 0.0)])
def test_relative_limits_scale_or_shift_the_baseline(text: str, baseline: float,
                                                     limit: float) -> None:
    assert parse_relative(text).limit(baseline) == pytest.approx(limit)


@pytest.mark.parametrize("text", ["+10%", "<= 10%", "== +1", "<= +ten"])
def test_bad_relative_limits_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a baseline limit"):
        parse_relative(text)


def test_observe_measures_at_the_start_and_every_interval() -> None:
    assert Observe(300, 30, 0, 4).count == 11
    assert Observe(1, 0.3, 0, 4).count == 4
    assert Observe(2, 2, 0, 4).count == 2


def series(labels: str, *points: tuple[float, float]) -> Series:
    return Series(labels, tuple(Sample(t, v) for t, v in points))


def test_combine_by_timestamp_in_a_window() -> None:
    combined = combine([series("a", (1, 1.0), (2, 2.0)), series("b", (1, 3.0), (2, 5.0))],
                       "sum", windowed=True)
    assert [(s.timestamp, s.value) for s in combined[0].samples] == [(1, 4.0), (2, 7.0)]


def test_combine_latest_values_for_instant_queries() -> None:
    combined = combine([series("a", (1, 1.0)), series("b", (3, 5.0))], "max", windowed=False)
    assert [(s.timestamp, s.value) for s in combined[0].samples] == [(3, 5.0)]


def test_several_series_without_a_rule_name_the_first_five() -> None:
    many = [series(f"{{pod=\"{n}\"}}", (1, 0.0)) for n in range(7)]
    with pytest.raises(MetricQueryError, match=r"returned 7 series \(\{pod=\"0\"\}.*\{pod=\"4\"\}"
                                               r" and 2 more\)"):
        combine(many, None, windowed=False)


def test_prometheus_values_keep_nan_and_infinity() -> None:
    body = (b'{"status":"success","data":{"resultType":"vector","result":['
            b'{"metric":{"a":"1"},"value":[10,"NaN"]},{"metric":{"a":"2"},"value":[10,"+Inf"]}]}}')
    found = parse_answer(Fetched(200, {}, body))
    assert math.isnan(found[0].samples[0].value) and found[1].samples[0].value == math.inf
    assert found[0].labels == '{a="1"}'


def test_prometheus_string_results_are_refused() -> None:
    body = b'{"status":"success","data":{"resultType":"string","result":[1,"x"]}}'
    with pytest.raises(MetricQueryError, match="'string' result"):
        parse_answer(Fetched(200, {}, body))


def test_run_command_caps_output_and_keeps_draining() -> None:
    result = run_command("head -c 3000000 /dev/zero; echo done >&2", timeout=10,
                         max_output=1000)
    assert result.exit_code == 0 and result.truncated
    assert len(result.stdout) == 1000 and result.stderr == "done\n"


def test_run_command_kills_the_group_at_the_timeout() -> None:
    started = time.monotonic()
    result = run_command("sleep 20 & sleep 20; echo never", timeout=0.5)
    assert result.timed_out and result.exit_code is None and "never" not in result.stdout
    assert time.monotonic() - started < 4
