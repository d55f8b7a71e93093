"""Deploy windows and blackouts at fixed instants: inside, outside, on the edges, across DST."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import textwrap

import pytest

from conftest import Project, runpytest
from pytest_deploycheck.errors import ConfigError
from pytest_deploycheck.inputs.windows import DeployWindows, describe_window, parse_windows
from pytest_deploycheck.inputs.yamlfile import load_text

# The runbooks' schedule: Mon-Thu 14:00-17:00 UTC, Friday emergency only, Dec 15 - Jan 5 freeze.
RUNBOOK = """\
    allow:
      - {days: [mon, tue, wed, thu], start: "14:00", end: "17:00", tz: UTC}
      - {days: [fri], emergency: true}
    blackout:
      - {from: 2026-12-15, to: 2027-01-05, reason: holiday freeze}
    """


def windows(text: str) -> DeployWindows:
    doc = load_text("windows:\n" + textwrap.indent(textwrap.dedent(text), "  "), "env.yaml")
    return parse_windows(doc["windows"], "environments.prod.windows")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize(("instant", "is_open"), [
    ("2026-11-23T14:00:00Z", True),      # Monday, the first second of the window
    ("2026-11-23T16:59:59Z", True),      # its last second
    ("2026-11-23T17:00:00Z", False),     # the end is exclusive
    ("2026-11-23T13:59:59Z", False),
    ("2026-11-26T15:00:00Z", True),      # Thursday
    ("2026-11-22T15:00:00Z", False),     # Sunday
    ("2026-12-14T16:59:59Z", True),      # the last second before the freeze
    ("2026-12-15T14:00:00Z", False),     # the freeze starts at midnight of its first day
    ("2027-01-05T15:00:00Z", False),     # ... and includes the whole of its last day
    ("2027-01-06T14:00:00Z", True),
])
def test_runbook_schedule_at_fixed_instants(instant: str, is_open: bool) -> None:
    assert windows(RUNBOOK).decide(at(instant)).open is is_open


def test_outside_names_the_next_window() -> None:
    decision = windows(RUNBOOK).decide(at("2026-11-23T17:00:00Z"))
    assert decision.reason == "outside the deploy windows (mon-thu 14:00-17:00 UTC)"
    assert describe_window(decision) == "Tue 2026-11-24 14:00 UTC until 17:00 (in 21h)"


def test_friday_is_for_emergencies_only() -> None:
    decision = windows(RUNBOOK).decide(at("2026-11-20T15:00:00Z"))
    assert not decision.open and decision.emergency
    assert decision.reason == "inside fri all day UTC, which is for emergency deploys only"
    assert describe_window(decision) == "Mon 2026-11-23 14:00 UTC until 17:00 (in 2d 23h)"


def test_the_next_window_after_a_freeze_skips_the_freeze() -> None:
    decision = windows(RUNBOOK).decide(at("2026-12-16T15:00:00Z"))
    assert decision.reason == "inside blackout 'holiday freeze' (2026-12-15 - 2027-01-05 UTC)"
    assert describe_window(decision) == "Wed 2027-01-06 14:00 UTC until 17:00 (in 20d 23h)"


BERLIN = """\
    allow: [{days: mon-thu, start: "14:00", end: "17:00", tz: Europe/Berlin}]
    """


@pytest.mark.parametrize(("instant", "is_open"), [
    # The same UTC time on the Mondays around the spring change (2026-03-29): 13:30 CET is
    # outside, 14:30 CEST is inside.
    ("2026-03-23T12:30:00Z", False),
    ("2026-03-30T12:30:00Z", True),
    ("2026-03-30T12:00:00Z", True),       # 14:00 CEST: the start
    ("2026-03-30T15:00:00Z", False),      # 17:00 CEST: the end
    # Around the autumn change (2026-10-25): 14:00 CEST = 12:00 UTC, 14:00 CET = 13:00 UTC.
    ("2026-10-22T12:00:00Z", True),
    ("2026-10-26T12:00:00Z", False),
    ("2026-10-26T13:00:00Z", True),
    ("2026-10-26T15:59:59Z", True),
    ("2026-10-26T16:00:00Z", False),
])
def test_windows_follow_daylight_saving_time(instant: str, is_open: bool) -> None:
    assert windows(BERLIN).decide(at(instant)).open is is_open


def test_next_window_is_shown_in_its_zone_across_the_dst_change() -> None:
    decision = windows(BERLIN).decide(at("2026-03-27T12:00:00Z"))   # Friday, 13:00 CET
    assert describe_window(decision) == "Mon 2026-03-30 14:00 Europe/Berlin until 17:00 (in 3d)"


def test_a_window_over_midnight_and_the_night_the_clocks_go_back() -> None:
    # 22:00-02:00 New York time starting on Saturday 2026-10-31; the night of Nov 1 has the
    # hour 01:00-02:00 twice, so Saturday's window lasts 5 hours instead of 4.
    night = windows('allow: [{days: [sat], start: "22:00", end: "02:00", '
                    'tz: America/New_York}]\n')
    assert not night.decide(at("2026-11-01T01:59:00Z")).open     # 21:59 EDT Saturday
    decision = night.decide(at("2026-11-01T01:00:00Z"))
    assert not decision.open
    assert describe_window(decision) == ("Sat 2026-10-31 22:00 America/New_York until "
                                         "Sun 2026-11-01 02:00 America/New_York (in 1h)")
    assert night.decide(at("2026-11-01T02:00:00Z")).open         # 22:00 EDT
    assert night.decide(at("2026-11-01T06:59:00Z")).open         # 01:59 EST, the second time
    assert not night.decide(at("2026-11-01T07:00:00Z")).open     # 02:00 EST


def test_a_window_in_the_hour_that_does_not_exist() -> None:
    # 2026-03-08 in New York: 02:00-03:00 is skipped, so that Sunday has no window at all.
    gap = windows('allow: [{days: [sun], start: "02:00", end: "03:00", '
                  'tz: America/New_York}]\n')
    decision = gap.decide(at("2026-03-08T06:00:00Z"))
    assert not decision.open
    assert describe_window(decision).startswith("Sun 2026-03-15 02:00 America/New_York")


@pytest.mark.parametrize(("instant", "is_open"), [
    ("2026-12-23T23:59:59Z", True),
    ("2026-12-24T00:00:00Z", False),
    ("2027-12-26T23:59:59Z", False),      # yearly: next year too
    ("2027-12-27T00:00:00Z", True),
    ("2027-01-02T10:00:00Z", False),      # a yearly freeze across new year
    ("2027-01-03T00:00:00Z", True),
])
def test_yearly_blackouts(instant: str, is_open: bool) -> None:
    yearly = windows("""\
        blackout:
          - {from: "12-24", to: "12-26", reason: christmas}
          - {from: "12-31", to: "01-02", reason: new year}
        """)
    assert yearly.decide(at(instant)).open is is_open


def test_blackouts_with_times_weekdays_and_zones() -> None:
    rules = windows("""\
        tz: Europe/London
        blackout:
          - {from: "2026-11-24T09:00", to: "2026-11-24T11:30", reason: database migration}
          - {days: [fri], start: "12:00", reason: no Friday afternoon deployments}
        """)
    assert rules.decide(at("2026-11-24T08:59:00Z")).open
    closed = rules.decide(at("2026-11-24T09:00:00Z"))
    assert closed.reason == ("inside blackout 'database migration' (2026-11-24T09:00 - "
                             "2026-11-24T11:30 Europe/London)")
    assert describe_window(closed) == ("Tue 2026-11-24 11:30 Europe/London until Fri "
                                       "2026-11-27 12:00 Europe/London (in 2h 30m)")
    assert rules.decide(at("2026-11-27T11:59:00Z")).open
    friday = rules.decide(at("2026-11-27T12:00:00Z"))
    assert friday.reason == ("inside blackout 'no Friday afternoon deployments' (fri "
                             "12:00-24:00 Europe/London)")
    assert describe_window(friday) == ("Sat 2026-11-28 00:00 Europe/London until Fri "
                                       "2026-12-04 12:00 Europe/London (in 12h)")


def test_no_windows_means_always_open() -> None:
    decision = windows("blackout: []\n").decide(at("2026-11-22T03:00:00Z"))
    assert decision.open
    assert describe_window(decision) == "Sun 2026-11-22 03:00 UTC onwards"


@pytest.mark.parametrize(("text", "message"), [
    ("allow: [{days: [mon, thur], start: '14:00', end: '17:00'}]",
     "env.yaml:2: environments.prod.windows.allow[0].days: unknown weekday 'thur' (did you "
     "mean 'thu'?)"),
    ("allow: [{days: [mon], start: '25:00', end: '17:00'}]",
     "env.yaml:2: environments.prod.windows.allow[0].start: '25:00' is not a time of day"),
    ("allow: [{days: [mon], start: 14:00, end: '17:00'}]",
     "env.yaml:2: environments.prod.windows.allow[0].start: 840 is not a time of day; quote it"),
    ("allow: [{days: [mon], start: '14:00', end: '14:00'}]",
     "env.yaml:2: environments.prod.windows.allow[0].end: start 14:00 and end 14:00 make an "
     "empty window"),
    ("allow: [{days: [mon], tz: Europe/Berlinn}]",
     "env.yaml:2: environments.prod.windows.allow[0].tz: unknown time zone 'Europe/Berlinn' "
     "(did you mean 'Europe/Berlin'?)"),
    ("blackout:\n    - from: 2027-01-05\n      to: 2026-12-15",
     "env.yaml:3: environments.prod.windows.blackout[0].from: 'from' (2027-01-05) is after "
     "'to' (2026-12-15)"),
    ("blackout: [{from: 2026-12-15, to: soon}]",
     "env.yaml:2: environments.prod.windows.blackout[0].to: 'soon' is not a date"),
    ("blackout: [{from: 2026-12-15}]",
     "env.yaml:2: environments.prod.windows.blackout[0].to: a dated blackout needs 'from' and "
     "'to'"),
])
def test_bad_windows_name_the_line_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        windows(text + "\n")
    assert str(caught.value).startswith(message)


WINDOW_ENVIRONMENTS = """\
    environments:
      prod:
        windows:
          allow:
            - {days: [mon, tue, wed, thu], start: "14:00", end: "17:00", tz: UTC}
            - {days: [fri], emergency: true}
          blackout:
            - {from: 2026-12-15, to: 2027-01-05, reason: holiday freeze}
      local: {}
    """
WINDOW_SUITE = """\
    checks:
      - {name: deploy window, kind: checklist, window: true}
    """


def test_window_check_passes_inside_and_notes_the_window(project: Project) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-11-23T15:00:00Z")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *deploy window[[]prod[]]: deploy window open at "
                                 "2026-11-23T15:00:00Z: inside mon-thu 14:00-17:00 UTC, Mon "
                                 "2026-11-23 15:00 UTC until 17:00"])


def test_window_check_fails_outside_naming_the_next_window(project: Project) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-12-20T10:00:00+01:00")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "checklist check 'deploy window' failed in environment 'prod'",
        "  at suites/pre.yaml:2",
        "  evaluated at: 2026-12-20T09:00:00Z",
        "  FAILED inside blackout 'holiday freeze' (2026-12-15 - 2027-01-05 UTC)",
        "  next allowed window: Wed 2027-01-06 14:00 UTC until 17:00 (in 17d 5h)",
    ])


def test_an_emergency_window_needs_the_items_own_ack(project: Project) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    friday = "--deploy-time=2026-11-20T15:00:00Z"
    refused = runpytest(project.pytester, "--env=prod", friday, "--ack=all")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(["  an emergency deploy proceeds with --ack 'pre::deploy "
                                  "window'"])
    allowed = runpytest(project.pytester, "--env=prod", friday, "--ack=pre::deploy window")
    allowed.assert_outcomes(passed=1)
    allowed.stdout.fnmatch_lines(["  NOTE *: emergency deploy acknowledged (--ack pre::deploy "
                                  "window): inside fri all day UTC, which is for emergency "
                                  "deploys only"])


def test_an_environment_without_windows_is_always_open(project: Project) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=local")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["  NOTE *: environment 'local' defines no deploy windows: "
                                 "always open"])


def test_a_bad_deploy_time_is_a_usage_error(project: Project) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", "--deploy-time=next friday")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --deploy-time: 'next friday' is not an ISO 8601 date "
                                 "and time*"])


def test_bad_windows_in_the_environments_file_are_a_collection_error(project: Project) -> None:
    project.environments("""\
        environments:
          prod:
            windows:
              allow:
                - {days: [mon, funday], start: "14:00", end: "17:00"}
        """)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["environments.yaml:5: environments.prod.windows.allow[[]0[]]."
                                 "days: unknown weekday 'funday'*"])


@pytest.mark.parametrize(("instant", "outcome"), [
    ("2026-11-23T14:00:00Z", "passed"),        # the first second
    ("2026-11-23T16:59:59Z", "passed"),        # the last second
    ("2026-11-23T17:00:00Z", "failed"),        # the end is exclusive
    ("2026-11-23T15:00:00+01:00", "passed"),   # 14:00 UTC, written with an offset
    ("2026-11-23T13:59", "failed"),            # no offset: UTC
])
def test_window_check_on_the_edges(project: Project, instant: str, outcome: str) -> None:
    project.environments(WINDOW_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", f"--deploy-time={instant}")
    result.assert_outcomes(**{outcome: 1})


@pytest.mark.parametrize(("instant", "outcome"), [
    ("2026-03-23T12:30:00Z", "failed"),   # 13:30 CET, the Monday before the change
    ("2026-03-30T12:30:00Z", "passed"),   # 14:30 CEST, the Monday after
])
def test_window_check_across_a_dst_change(project: Project, instant: str, outcome: str) -> None:
    project.environments("""\
        environments:
          prod:
            windows:
              allow: [{days: mon-thu, start: "14:00", end: "17:00", tz: Europe/Berlin}]
        """)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", f"--deploy-time={instant}")
    result.assert_outcomes(**{outcome: 1})


# --- soft windows and emergencies (SPEC §10) --------------------------------------------------

SOFT = """\
    allow:
      - {days: [mon, tue, wed, thu], start: "09:00", end: "16:00", tz: UTC, preferred: true}
    blackout:
      - {from: 2026-12-15, to: 2027-01-05, reason: holiday freeze, emergency: allowed}
      - {days: [sun], reason: no staff on Sundays}
    """


@pytest.mark.parametrize(("instant", "is_open", "warning", "emergency"), [
    ("2026-11-23T10:00:00Z", True, "", False),  # inside the preferred window
    ("2026-11-23T20:00:00Z", True, "outside the preferred deploy windows "
                                   "(mon-thu 09:00-16:00 UTC)", False),
    ("2026-11-21T10:00:00Z", True, "outside the preferred deploy windows "
                                   "(mon-thu 09:00-16:00 UTC)", False),  # Saturday
    ("2026-11-22T10:00:00Z", False, "", False),  # a Sunday blackout: no emergency lifts it
    ("2026-12-16T10:00:00Z", False, "", True),  # the freeze allows emergencies
    ("2026-12-20T10:00:00Z", False, "", False),  # Sunday in the freeze: both must allow it
])
def test_preferred_windows_warn_and_blackouts_may_allow_emergencies(
        instant: str, is_open: bool, warning: str, emergency: bool) -> None:
    decision = windows(SOFT).decide(at(instant))
    assert (decision.open, decision.warning, decision.emergency) == (is_open, warning, emergency)


def test_an_emergency_in_an_allowing_blackout_still_needs_a_window() -> None:
    decision = windows("""\
        allow:
          - {days: [mon, tue, wed, thu], start: "14:00", end: "17:00", tz: UTC}
        blackout:
          - {from: 2026-12-15, to: 2027-01-05, reason: holiday freeze, emergency: allowed}
        """).decide(at("2026-12-16T20:00:00Z"))
    assert not decision.open and not decision.emergency
    inside = windows("""\
        allow:
          - {days: [mon, tue, wed, thu], start: "14:00", end: "17:00", tz: UTC}
        blackout:
          - {from: 2026-12-15, to: 2027-01-05, reason: holiday freeze, emergency: allowed}
        """).decide(at("2026-12-16T15:00:00Z"))
    assert not inside.open and inside.emergency
    assert inside.reason == ("inside blackout 'holiday freeze' (2026-12-15 - 2027-01-05 UTC), "
                             "which allows emergency deploys")


SOFT_ENVIRONMENTS = "environments:\n  prod:\n    windows:\n" + textwrap.indent(
    textwrap.dedent(SOFT), "      ")


def test_outside_a_preferred_window_the_gate_passes_with_a_warning(project: Project) -> None:
    project.environments(SOFT_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    result = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-11-23T20:00:00Z",
                       "--gate-report=gate.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "prod: passed_with_warnings*",
        "  WARNING suites/pre.yaml::pre::deploy window[[]prod[]]  (suites/pre.yaml:2)",
        "         deploy at 2026-11-23T20:00:00Z is outside the preferred deploy windows "
        "(mon-thu 09:00-16:00 UTC)"])
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "passed_with_warnings"


def test_an_emergency_ack_lifts_only_a_blackout_that_allows_it(project: Project) -> None:
    project.environments(SOFT_ENVIRONMENTS)
    project.suite("pre.yaml", WINDOW_SUITE)
    ack = "--ack=pre::deploy window"
    freeze = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-12-16T10:00:00Z", ack)
    freeze.assert_outcomes(passed=1)
    freeze.stdout.fnmatch_lines(["  NOTE *: emergency deploy acknowledged (--ack pre::deploy "
                                 "window): inside blackout 'holiday freeze' (2026-12-15 - "
                                 "2027-01-05 UTC), which allows emergency deploys"])
    unacked = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-12-16T10:00:00Z")
    unacked.assert_outcomes(failed=1)
    sunday = runpytest(project.pytester, "--env=prod", "--deploy-time=2026-11-22T10:00:00Z", ack)
    sunday.assert_outcomes(failed=1)
    sunday.stdout.fnmatch_lines(["  FAILED inside blackout 'no staff on Sundays' (sun all day "
                                 "UTC)"])


@pytest.mark.parametrize(("entry", "message"), [
    ("allow:\n  - {days: [mon], emergency: true, preferred: true}\n",
     "env.yaml:3: environments.prod.windows.allow[[]0[]].preferred: a window is either for "
     "emergencies or preferred, not both"),
])
def test_bad_soft_windows_name_the_line_and_key(entry: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        windows(entry)
    assert fnmatch.fnmatch(str(caught.value), message), str(caught.value)


def test_preferred_and_emergency_windows_together() -> None:
    """Preferred windows and no regular one: open at any time but in the emergency window
    (which takes an acknowledgement) and in blackouts."""
    mixed = windows("""\
        allow:
          - {days: [mon, tue, wed, thu], start: "14:00", end: "17:00", preferred: true}
          - {days: [fri], emergency: true}
        blackout:
          - {from: 2026-12-24, to: 2026-12-26, reason: xmas, emergency: allowed}
        """)
    inside = mixed.decide(at("2026-11-23T15:00:00Z"))
    assert (inside.open, inside.warning) == (True, "")
    assert inside.reason == "inside mon-thu 14:00-17:00 UTC (preferred)"
    outside = mixed.decide(at("2026-11-23T20:00:00Z"))
    assert outside.open and outside.warning.startswith("outside the preferred deploy windows")
    friday = mixed.decide(at("2026-11-20T15:00:00Z"))
    assert (friday.open, friday.emergency) == (False, True)
    xmas = mixed.decide(at("2026-12-24T15:00:00Z"))
    assert (xmas.open, xmas.emergency) == (False, True)
