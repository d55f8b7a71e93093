"""``python -m pytest_deploycheck.webhook``: the gate behind HTTP, asked as Flagger's webhooks
and Argo Rollouts' web provider ask, by real HTTP requests to a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import free_port
from servers import LoopbackServer

TOKEN = "gate-token-8d1f2c"


def write_project(folder: Path, server: LoopbackServer) -> None:
    (folder / "environments.yaml").write_text(textwrap.dedent(f"""\
        environments:
          staging:
            services: {{api: {{url: "{server.url}"}}}}
          production:
            services: {{api: {{url: "{server.url}"}}}}
        """))
    (folder / "suites").mkdir()
    (folder / "suites" / "gate.yaml").write_text(textwrap.dedent("""\
        service: api
        checks:
          - {name: up, kind: health, request: {path: /ok}}
          - {name: slow, kind: health, marks: [slow], request: {path: /slow, params: {ms: 1500}}}
          - {name: checkout, kind: smoke, request: {path: /status/503}}
        """))


@pytest.fixture
def webhook(tmp_path: Path, server: LoopbackServer) -> Iterator[tuple[str, Path]]:
    write_project(tmp_path, server)
    port = free_port()
    audit = tmp_path / "webhook-audit.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_deploycheck.webhook", "--port", str(port),
         "--env", "staging", "--token-env", "GATE_TOKEN", "--allow-arg=--rollback=dry-run",
         "--queue", "0", "--audit-log", str(audit), "--", "suites", "--rollback=off"],
        cwd=tmp_path, env={**os.environ, "GATE_TOKEN": TOKEN},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None and time.monotonic() < deadline, process.stdout
        time.sleep(0.1)
    yield url, audit
    process.terminate()
    process.wait(timeout=10)


def flagger(metadata: dict[str, Any]) -> dict[str, Any]:
    """A payload as Flagger sends it to a pre-rollout or rollout webhook."""
    return {"name": "podinfo", "namespace": "test", "phase": "Progressing",
            "checksum": "85d557f47b", "metadata": metadata}


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_flagger_and_argo_ask_the_gate(webhook: tuple[str, Path]) -> None:
    url, audit = webhook
    answer = httpx.post(f"{url}/gate", json=flagger({"env": "staging", "markers": "health and not slow"}),
                        headers=AUTH, timeout=60)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["verdict"] == "passed" and [c["name"] for c in report["checks"]] == ["up"]
    assert report["deploy"]["actor"].startswith("webhook: flagger test/podinfo (Progressing)")

    answer = httpx.post(f"{url}/gate", json=flagger({"env": "staging", "markers": "smoke"}),
                        headers=AUTH, timeout=60)
    assert answer.status_code == 412  # Flagger halts the rollout on anything but 2xx
    assert answer.json()["verdict"] == "rollback_skipped"  # the server runs --rollback=off

    answer = httpx.get(f"{url}/gate", params={"env": "staging", "markers": "health and not slow"},
                       headers=AUTH, timeout=60)
    assert answer.status_code == 200
    assert answer.json() == {"verdict": "passed", "passed": True, "failed": 0}
    answer = httpx.get(f"{url}/gate", params={"env": "staging", "markers": "smoke"},
                       headers=AUTH, timeout=60)
    assert answer.json() == {"verdict": "rollback_skipped", "passed": False, "failed": 1}

    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["passed", "rollback_skipped", "passed",
                                               "rollback_skipped"]
    assert records[0]["caller"].startswith("webhook: flagger test/podinfo") and \
        records[2]["caller"].startswith("webhook: argo from 127.0.0.1")


@pytest.mark.parametrize(("payload", "status", "error"), [
    ({"env": "production"}, 400, "environment 'production' is not one this server gates"),
    ({"env": "staging", "markers": "smoke --lf"}, 400, "markers 'smoke --lf'"),
    ({"env": "staging", "markers": "health", "args": ["-p", "evil"]}, 400,
     "argument '-p' is not allowed here (the server allows: --rollback=dry-run)"),
    ({"env": "staging", "args": "--rollback=auto"}, 400, "argument '--rollback=auto'"),
])
def test_the_network_chooses_only_what_the_server_allows(webhook: tuple[str, Path],
                                                         payload: dict[str, Any], status: int,
                                                         error: str) -> None:
    url, _ = webhook
    answer = httpx.post(f"{url}/gate", json=flagger(payload), headers=AUTH, timeout=30)
    assert answer.status_code == status and error in answer.json()["error"]


def test_callers_need_the_token_and_wait_their_turn(webhook: tuple[str, Path]) -> None:
    url, audit = webhook
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
        answer = httpx.post(f"{url}/gate", json=flagger({"env": "staging"}), headers=headers,
                            timeout=30)
        assert answer.status_code == 401
    assert TOKEN not in audit.read_text()
    # One gate at a time per environment; with --queue 0 a second caller gets 409.
    answers: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{url}/gate", json=flagger({"env": "staging", "markers": "slow"}), headers=AUTH,
        timeout=60)))
    slow.start()
    time.sleep(0.8)
    second = httpx.post(f"{url}/gate", json=flagger({"env": "staging", "markers": "slow"}),
                        headers=AUTH, timeout=60)
    slow.join()
    assert second.status_code == 409 and "is running" in second.json()["error"]
    assert answers[0].status_code == 200


def test_a_hostile_body_is_refused_before_it_is_read(webhook: tuple[str, Path]) -> None:
    import socket

    url, _ = webhook
    port = int(url.rsplit(":", 1)[1])
    for length in ("-1", "abc", str(10**9)):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
            connection.sendall(f"POST /gate HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
                               f"Authorization: Bearer {TOKEN}\r\n\r\n".encode())
            answer = connection.recv(4096).decode()
        assert answer.split()[1] in ("400", "413"), answer
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
