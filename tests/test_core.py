"""The core without pytest: durations, thresholds, templates, YAML marks, redaction, clients."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pytest

from pytest_deploycheck.environments import Environment
from pytest_deploycheck.errors import CheckError, ConfigError
from pytest_deploycheck.inputs.endpoints import Service
from pytest_deploycheck.inputs.templating import names_in, render
from pytest_deploycheck.inputs.yamlfile import YamlMap, load_text, locate
from pytest_deploycheck.runtime.clients import ClientPool
from pytest_deploycheck.secrets import Redactor
from pytest_deploycheck.units import parse_duration, parse_threshold


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("10s", 10), ("5m", 300), ("1h", 3600), ("1h30m", 5400), (3, 3.0),
    ("2.5", 2.5), ("14d", 14 * 86400),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1", "10x", True, "5m10"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_threshold_units_say_what_the_written_number_means() -> None:
    # "< 500ms" compares a value in seconds; "> 99%" compares a fraction.
    assert parse_threshold("< 500ms").check(0.499)
    assert not parse_threshold("< 500ms").check(0.5)
    assert parse_threshold(">= 99%").check(0.99)
    assert parse_threshold("!= 0").check(1)
    with pytest.raises(ValueError, match="is not a threshold"):
        parse_threshold("under 5")


def test_templates_keep_types_and_report_unknown_names() -> None:
    scope = {"n": 3, "env": {"name": "prod"}, "env.name": "prod"}
    assert render("{{ n }}", scope) == 3
    assert render("/x/{{ n }}?e={{ env.name }}", scope) == "/x/3?e=prod"
    assert render({"a": ["{{ n }}"]}, scope) == {"a": [3]}
    assert names_in({"a": "{{ x }}", "b": ["{{ y.z }}"]}) == {"x", "y.z"}
    with pytest.raises(CheckError, match="template name 'missing' is not defined"):
        render("{{ missing }}", scope)


def test_yaml_keeps_lines_for_keys_and_items() -> None:
    doc = load_text("a: 1\nchecks:\n  - name: x\n    kind: health\n  - name: y\n", "f.yaml")
    assert isinstance(doc, YamlMap)
    assert doc.line_of("checks") == 2
    assert locate(doc, ["checks", 1, "name"]) == 5
    assert locate(doc, ["checks", 0, "kind"]) == 4


def test_yaml_merge_keys_and_plain_scalars() -> None:
    """`<<: *anchor` merges (also after other keys), and plain words keep their YAML types
    however often they recur in a file."""
    doc = load_text(textwrap.dedent("""\
        base: &base {timeout: 2s, method: GET}
        more: &more {retries: 3}
        one:
          path: /health
          <<: [*base, *more]
        two: {<<: *base, method: POST, status: 200, on: true, off: null, ratio: 0.5}
        three: {status: 200, on: true, off: null, ratio: 0.5, name: "200"}
        """), "f.yaml")
    assert doc["one"] == {"timeout": "2s", "method": "GET", "retries": 3, "path": "/health"}
    assert doc["one"].line_of("path") == 4
    assert doc["two"]["method"] == "POST"
    for key in ("two", "three"):
        assert doc[key]["status"] == 200 and doc[key]["on"] is True
        assert doc[key]["off"] is None and doc[key]["ratio"] == 0.5
    assert doc["three"]["name"] == "200"
    with pytest.raises(ConfigError, match=r"f\.yaml:3: path: duplicate key"):
        load_text("base: &base {path: /}\none: {<<: *base, path: /a,\n  path: /b}\n", "f.yaml")


def test_redactor_masks_longest_first_and_auth_scheme_values() -> None:
    redactor = Redactor()
    redactor.add("Bearer abc123token")
    redactor.add("abc")
    assert redactor.redact("got abc123token and Bearer abc123token") == "got *** and ***"
    assert redactor.redact_headers({"Authorization": "x", "X-Other": "abc"}) == [
        ("Authorization", "***"), ("X-Other", "***")]


def test_redacted_data_is_json_safe_in_one_pass() -> None:
    """Report details cross to the xdist controller and into JSON files as they come out."""
    redactor = Redactor()
    redactor.add("s3cr3t-value")
    data = {"url": "https://h/?k=s3cr3t-value", "pair": ("s3cr3t-value", 2), 3: None,
            "when": dt.date(2026, 1, 2), "nested": [{"ok": True, "ms": 1.5}]}
    redacted = redactor.redact_data(data)
    assert redacted == {"url": "https://h/?k=***", "pair": ["***", 2], "3": None,
                        "when": "2026-01-02", "nested": [{"ok": True, "ms": 1.5}]}
    assert json.loads(json.dumps(redacted)) == redacted
    assert data["pair"] == ("s3cr3t-value", 2)  # a copy: the input is left as it was


def test_client_pool_reuses_and_closes_clients() -> None:
    env = Environment(name="e", description="", services={}, vars={}, protected=False,
                      timeout=1.0, start=(), file="f", line=1)
    service = Service(name="api", url="http://127.0.0.1:9", headers={}, timeout=1.0,
                      verify_tls=True)
    pool = ClientPool()
    client = pool.client(env, service)
    assert pool.client(env, service) is client
    pool.close()
    assert client.is_closed
