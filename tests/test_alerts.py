"""``alerts`` checks against a real Prometheus evaluating alerting rules, a real Alertmanager
(Debian's ``prometheus-alertmanager``) with a silence, and the Datadog look-alike's monitors."""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
from collections.abc import Iterator

import pytest

from conftest import Project, assert_bad_input, free_port, runpytest
from metric_servers import (
    DD_API_KEY,
    DD_APP_KEY,
    Alertmanager,
    DatadogServer,
    Prometheus,
    start_alertmanager,
    start_prometheus,
    stop_process,
)
from servers import LoopbackServer

RULES = {"groups": [{"name": "deploy", "interval": "1s", "rules": [
    {"alert": "HighErrorRate", "expr": "vector(1)",
     "labels": {"severity": "page", "service": "api"},
     "annotations": {"summary": "5% of requests fail"}},
    {"alert": "Watchdog", "expr": "vector(1)", "labels": {"severity": "none"}},
    {"alert": "SlowBurn", "expr": "vector(1)", "for": "1h", "labels": {"severity": "ticket"}},
]}]}


def _firing(url: str) -> set[str]:
    with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=5) as answer:
        alerts = json.loads(answer.read())["data"]["alerts"]
    return {a["labels"]["alertname"] for a in alerts if a["state"] == "firing"}


@pytest.fixture(scope="module")
def alerting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus whose rules have fired: HighErrorRate and Watchdog firing, SlowBurn
    pending (its ``for`` is an hour)."""
    server = start_prometheus(tmp_path_factory.mktemp("alerting"), rules=RULES)
    deadline = time.monotonic() + 30
    while _firing(server.url) != {"HighErrorRate", "Watchdog"}:
        assert time.monotonic() < deadline, _firing(server.url)
        time.sleep(0.2)
    yield server
    stop_process(server.process)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """A real Alertmanager holding DiskFull (active) and KnownFlaky (silenced)."""
    server = start_alertmanager(tmp_path_factory.mktemp("alertmanager"))
    now = dt.datetime.now(dt.UTC)
    server.post("/api/v2/silences", {
        "matchers": [{"name": "alertname", "value": "KnownFlaky", "isRegex": False,
                      "isEqual": True}],
        "startsAt": now.isoformat(), "endsAt": (now + dt.timedelta(hours=1)).isoformat(),
        "createdBy": "on-call", "comment": "known flaky probe"})
    ends = (now + dt.timedelta(hours=1)).isoformat()
    server.post("/api/v2/alerts", [
        {"labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-1"},
         "annotations": {"summary": "disk 97% full"}, "endsAt": ends},
        {"labels": {"alertname": "KnownFlaky", "severity": "critical"}, "endsAt": ends}])
    deadline = time.monotonic() + 30
    while server.states() != {"DiskFull": "active", "KnownFlaky": "suppressed"}:
        assert time.monotonic() < deadline, server.states()
        time.sleep(0.2)
    yield server
    stop_process(server.process)


def environments(project: Project, sources: str, extra: str = "") -> None:
    """One environment ``prod`` whose metric sources are the lines of ``sources``."""
    lines = "".join(f"      {line.strip()}\n" for line in sources.splitlines() if line.strip())
    (project.path / "environments.yaml").write_text(
        f"environments:\n  prod:\n    metrics:\n{lines}{extra}")


@pytest.mark.parametrize("workers", ["0", "2"])
def test_alerts_from_prometheus(project: Project, alerting: Prometheus, workers: str) -> None:
    environments(project, f'      prom: {{type: prometheus, url: "{alerting.url}"}}', """\
    rollback:
      - {name: undo, command: "echo rolled back >> rollbacks.log"}
""")
    project.suite("alerts.yaml", """\
        checks:
          - name: no alerts firing
            kind: health
            alerts: {source: prom, ignore: [Watchdog]}
          - name: nothing for billing
            kind: health
            alerts: {source: prom, match: {service: billing}}
          - name: no tickets, even pending
            kind: health
            on_fail: warn
            alerts: {source: prom, match: {severity: ticket|page}, states: [pending]}
          - name: quiet apart from known ones
            kind: health
            alerts: {source: prom, ignore: [Watchdog, {severity: page, service: "a.*"}]}
        """)
    result = runpytest(project.pytester, "--env=prod", "-p", "xdist", "-n", workers,
                       "--gate-report=gate.json", "-rA")
    out = result.stdout.str()
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "  firing HighErrorRate {service=\"api\", severity=\"page\"} since 20*: 5% of requests fail",
        "  FAILED 1 alert(s) firing: HighErrorRate"])
    assert "1 alert(s) pending: SlowBurn" in out
    assert "2 firing alert(s) left out by 'match': HighErrorRate, Watchdog" in out
    assert "ignored: HighErrorRate, Watchdog" in out
    report = json.loads((project.path / "gate.json").read_text())
    assert report["verdict"] == "rolled_back"
    assert (project.path / "rollbacks.log").read_text() == "rolled back\n"


def test_alerts_from_alertmanager_honour_silences(project: Project,
                                                  alertmanager: Alertmanager) -> None:
    environments(project, f'      am: {{type: alertmanager, url: "{alertmanager.url}"}}')
    project.suite("alerts.yaml", """\
        checks:
          - {name: no critical alerts, kind: health, alerts: {source: am, match: {severity: critical}}}
          - {name: nothing on db-2, kind: health, alerts: {source: am, match: {instance: db-2}}}
          - {name: silenced ones too, kind: health, on_fail: warn,
             alerts: {source: am, states: [suppressed]}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)
    assert "FAILED 1 alert(s) active/unprocessed: DiskFull" in out
    assert "KnownFlaky" not in out.split("short test summary")[0].split("no critical alerts")[1] \
        .split("nothing on db-2")[0]
    assert "1 alert(s) suppressed: KnownFlaky" in out


def test_alerts_from_datadog_monitors(project: Project, datadog: DatadogServer) -> None:
    datadog.monitors = [
        {"id": 1, "name": "API error rate", "overall_state": "Alert",
         "tags": ["service:api", "env:prod"], "message": "Error rate above 1%\n@pagerduty"},
        {"id": 2, "name": "Checkout latency", "overall_state": "OK", "tags": ["service:shop"]},
        {"id": 3, "name": "Queue depth", "overall_state": "Alert", "tags": ["service:jobs"],
         "options": {"silenced": {"*": None}}},
        *({"id": 10 + n, "name": f"filler {n}", "overall_state": "OK", "tags": []}
          for n in range(1500)),
    ]
    environments(project, f"""\
              dd: {{type: datadog, url: "{datadog.url}", api_key: {DD_API_KEY}, app_key: {DD_APP_KEY}}}
              bad: {{type: datadog, url: "{datadog.url}", api_key: wrong-key-1234, app_key: {DD_APP_KEY}}}""")
    project.suite("alerts.yaml", """\
        checks:
          - {name: monitors, kind: health, alerts: {source: dd}}
          - {name: shop monitors, kind: health, alerts: {source: dd, match: {service: shop}}}
          - {name: api ignored, kind: health, alerts: {source: dd, ignore: ["API error rate"]}}
          - {name: bad keys, kind: health, alerts: {source: bad}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(['  Alert API error rate {env="prod", id="1", service="api"}: Error rate above 1%'])
    assert "Queue depth" not in out  # muted
    assert "Datadog answered 403: Forbidden (check api_key and app_key)" in out
    assert "wrong-key-1234" not in out
    pages = [r for r in datadog.requests if "page_size" in r]
    assert [r["page"] for r in pages[:2]] == ["0", "1"]


def test_a_source_that_cannot_answer_fails_the_check(project: Project,
                                                     server: LoopbackServer) -> None:
    closed = free_port()
    environments(project, f"""\
              down: {{type: prometheus, url: "http://127.0.0.1:{closed}"}}
              html: {{type: alertmanager, url: "{server.url}/ok"}}""")
    project.suite("alerts.yaml", """\
        checks:
          - {name: down, kind: health, timeout: 2s, alerts: {source: down}}
          - {name: not alertmanager, kind: health, alerts: {source: html}}
        """)
    result = runpytest(project.pytester, "--env=prod")
    out = result.stdout.str()
    result.assert_outcomes(failed=2)
    assert "cannot list alerts: cannot connect" in out
    assert "cannot list alerts: Alertmanager answered" in out


@pytest.mark.parametrize(("alerts", "message"), [
    ("{source: nope}", "suites/s.yaml:2: checks[0].alerts.source: unknown metric source 'nope'*"),
    ("{source: stats}", "checks[0].alerts.source: source 'stats' in environment 'prod' is http http://127.0.0.1:9, which lists no alerts*"),
    ("{source: prom, states: [active]}", "checks[0].alerts.states: state 'active' is not one of prometheus http://127.0.0.1:9's: firing, pending"),
    ("{source: prom, match: {severity: '(page'}}", "checks[0].alerts.match: bad regex '(page' for label 'severity'*"),
    ("{source: prom, ignore: ['.*']}", "checks[0].alerts.ignore[0]: this entry ignores every alert, so the check could never fail*"),
    ("{source: prom, states: []}", "checks[0].alerts.states: *"),
    ("{match: {a: b}}", "checks[0].alerts: missing required key 'source'"),
])
def test_bad_alerts_checks(project: Project, alerts: str, message: str) -> None:
    environments(project, """\
              prom: {type: prometheus, url: "http://127.0.0.1:9"}
              stats: {type: http, url: "http://127.0.0.1:9"}""")
    project.suite("s.yaml", f"checks:\n  - {{name: a, kind: health, alerts: {alerts}}}\n")
    assert_bad_input(project, message.replace("[", "[[]"), "--env=prod")


def test_a_metric_check_on_alertmanager_is_refused(project: Project) -> None:
    environments(project, '      am: {type: alertmanager, url: "http://127.0.0.1:9"}')
    project.suite("s.yaml", 'checks:\n  - {name: a, kind: metric, source: am, query: up, threshold: "> 0"}\n')
    assert_bad_input(project, "checks[[]0].query: an alertmanager source lists alerts (for 'alerts' "
                              "checks) and has no metrics*", "--env=prod")


def test_an_alerts_check_retries_until_the_alert_resolves(project: Project,
                                                          datadog: DatadogServer) -> None:
    import threading

    datadog.monitors = [{"id": 1, "name": "API error rate", "overall_state": "Alert",
                         "tags": ["service:api"]}]
    environments(project, f'dd: {{type: datadog, url: "{datadog.url}", api_key: {DD_API_KEY}, '
                          f'app_key: {DD_APP_KEY}}}')
    project.suite("alerts.yaml", """\
        checks:
          - {name: settles, kind: health, alerts: {source: dd}, retry: {until: 20s, interval: 0.2s}}
        """)

    def resolve() -> None:
        datadog.monitors = [{**datadog.monitors[0], "overall_state": "OK"}]

    timer = threading.Timer(1.5, resolve)
    timer.start()
    try:
        result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    finally:
        timer.cancel()
    result.assert_outcomes(passed=1)
    (check,) = json.loads((project.path / "gate.json").read_text())["checks"]
    assert check["duration"] >= 0.5  # it waited for the monitor to recover


def test_partial_mutes_misspelt_matches_and_unknown_states(project: Project,
                                                           datadog: DatadogServer,
                                                           server: LoopbackServer) -> None:
    """A monitor muted for one scope still alerts; a `match` naming a label no alert has warns
    instead of passing quietly; a state the source does not have fails the check."""
    datadog.monitors = [
        {"id": 1, "name": "API error rate", "overall_state": "Alert", "tags": ["service:api"],
         "options": {"silenced": {"host:canary-1": None}}},
        {"id": 2, "name": "Disk", "overall_state": "alert", "tags": ["service:db"]},
    ]
    environments(project, f'dd: {{type: datadog, url: "{datadog.url}", api_key: {DD_API_KEY}, '
                          f'app_key: {DD_APP_KEY}}}')
    project.suite("alerts.yaml", """\
        checks:
          - {name: api, kind: health, alerts: {source: dd, match: {service: api}}}
          - {name: misspelt, kind: health, alerts: {source: dd, match: {servce: api}, ignore: [Disk]}}
          - {name: strange state, kind: health, alerts: {source: dd, match: {service: db}}}
        """)
    result = runpytest(project.pytester, "--env=prod", "--gate-report=gate.json")
    out = result.stdout.str()
    result.assert_outcomes(passed=1, failed=2)
    assert "FAILED 1 alert(s) Alert: API error rate" in out
    assert "no alert has the label 'servce' that 'match' names (misspelt?)" in out
    assert "alert Disk is in state 'alert', which datadog" in out


def test_an_ignore_entry_that_matches_any_name_is_refused(project: Project) -> None:
    environments(project, 'prom: {type: prometheus, url: "http://127.0.0.1:9"}')
    project.suite("s.yaml", "checks:\n  - {name: a, kind: health, alerts: {source: prom, ignore: [{alertname: '.+', severity: '.+'}]}}\n")
    assert_bad_input(project, "checks[[]0].alerts.ignore[[]0]: this entry ignores every alert*",
                     "--env=prod")
