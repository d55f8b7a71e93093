"""The bundled demo service: endpoints, fault switches, deploy and rollback, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from typing import Any

import httpx

from pytest_deploycheck.demo.server import DemoServer


def cli(demo: DemoServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_deploycheck.demo", args[0], "--port",
                           str(demo.server_port), *args[1:]], capture_output=True, text=True,
                          timeout=30)


def get(demo: DemoServer, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{demo.server_port}{path}")


def test_health_reports_version_and_components(demo: DemoServer) -> None:
    answer = get(demo, "/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "healthy", "version": "1.2.3", "checks": {
        "database": "healthy", "queue": "healthy", "scheduler": "healthy"}}


def test_fault_switches_from_the_command_line(demo: DemoServer) -> None:
    assert cli(demo, "fault", "--unhealthy", "database").returncode == 0
    answer = get(demo, "/health")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"] == "unhealthy"
    assert cli(demo, "fault", "--error-rate", "0.5").returncode == 0
    codes = [get(demo, "/v1/workflows").status_code for _ in range(4)]
    assert codes == [200, 500, 200, 500]
    assert cli(demo, "fault", "--latency-ms", "200").returncode == 0
    started = time.perf_counter()
    get(demo, "/v1/agents")
    assert time.perf_counter() - started >= 0.2
    assert cli(demo, "fault", "--clear").returncode == 0
    assert get(demo, "/health").status_code == 200


def test_deploy_and_rollback(demo: DemoServer) -> None:
    deployed = cli(demo, "deploy", "--version", "2.0.0", "--unhealthy", "queue")
    assert json.loads(deployed.stdout)["version"] == "2.0.0"
    assert get(demo, "/health").json()["version"] == "2.0.0"
    assert get(demo, "/health").status_code == 503
    assert cli(demo, "rollback").returncode == 0
    assert get(demo, "/health").json() == {"status": "healthy", "version": "1.2.3", "checks": {
        "database": "healthy", "queue": "healthy", "scheduler": "healthy"}}
    assert cli(demo, "fault", "--unhealthy", "database").returncode == 0
    # With no earlier release, a rollback redeploys the current one without the bad change.
    assert cli(demo, "rollback").returncode == 0
    assert get(demo, "/health").status_code == 200
    assert get(demo, "/health").json()["version"] == "1.2.3"


def test_login_token_profile_and_workflow_run(demo: DemoServer) -> None:
    base = f"http://127.0.0.1:{demo.server_port}"
    with httpx.Client(base_url=base) as client:
        assert client.get("/v1/auth/me").status_code == 401
        token = client.post("/v1/auth/login", json={"user": "ana"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/auth/me", headers=auth).json() == {"user": "ana"}
        run = client.post("/v1/workflows/wf-invoice-run/runs", headers=auth)
        assert run.status_code == 201
        run_id = run.json()["id"]
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "running"
        time.sleep(0.35)
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"


def test_stats_and_prometheus_metrics(demo: DemoServer) -> None:
    cli(demo, "fault", "--error-rate", "0.25")
    for _ in range(8):
        get(demo, "/v1/workflows")
    stats: dict[str, Any] = get(demo, "/stats").json()
    assert stats["requests"] == 8 and stats["errors"] == 2 and stats["error_rate"] == 0.25
    assert stats["p99_ms"] > 0
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{demo.server_port}/metrics").read().decode()
    assert 'http_requests_total{route="/v1/workflows",status="500"} 2' in metrics
    assert 'http_requests_total{route="/v1/workflows",status="200"} 6' in metrics
    assert 'http_request_duration_seconds_bucket{le="+Inf"} 8' in metrics
    assert "# TYPE http_request_duration_seconds histogram" in metrics
    assert 'demo_version_info{version="1.2.3"} 1' in metrics


def test_console_pages_are_html(demo: DemoServer) -> None:
    for path, title in (("/", "Dashboard"), ("/console/workflows", "Workflows")):
        answer = get(demo, path)
        assert answer.headers["content-type"].startswith("text/html")
        assert f"<h1>{title}</h1>" in answer.text


def test_a_second_demo_on_a_taken_port_says_so_in_one_line(demo: DemoServer) -> None:
    done = cli(demo, "serve")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"demo: cannot listen on 127.0.0.1:{demo.server_port}: "
                                   f"Address already in use (a demo still running? stop it, or "
                                   f"pick another --port)")
