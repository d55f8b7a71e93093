"""Metric backends for the tests: a real Prometheus (Debian's package) and a Datadog look-alike.

Prometheus gets exact data by backfilling: OpenMetrics samples written to a file, turned into
TSDB blocks with ``promtool tsdb create-blocks-from openmetrics`` and queryable as soon as the
server is ready. Samples run from 30 minutes before the session to 30 minutes after it, so an
instant query at any moment of the test run finds a current sample.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from servers import free_port

STEP = 15
SPAN = 1800
DD_API_KEY = "dd-api-0f3b8c2e9a71"
DD_APP_KEY = "dd-app-7c1e4a9b2d58"


def backfill_series(start: float) -> dict[str, Callable[[float], float]]:
    """Series (OpenMetrics name with labels) → value at time ``t``; ``start`` is the session's
    start, so that events like a spike sit at known offsets from it."""
    base = int(start) - SPAN

    def counter(per_second: float) -> Callable[[float], float]:
        return lambda t: per_second * (t - base)

    return {
        # What the demo service exports, as a steady 50 requests/s with 0.04% errors and
        # a p99 of about 240 ms (written as gauges: PromQL does not mind).
        'http_requests_total{route="/v1/workflows",status="200"}': counter(50.0),
        'http_requests_total{route="/v1/workflows",status="500"}': counter(0.02),
        'http_request_duration_seconds_bucket{le="0.1"}': counter(45.0),
        'http_request_duration_seconds_bucket{le="0.25"}': counter(49.95),
        'http_request_duration_seconds_bucket{le="0.5"}': counter(50.02),
        'http_request_duration_seconds_bucket{le="+Inf"}': counter(50.02),
        'dc_error_ratio{service="api"}': lambda t: 0.002,
        'dc_error_ratio{service="web"}': lambda t: 0.02,
        "dc_latency_seconds": lambda t: 0.25,
        # 0.001, with a spike to 0.05 from 150 s to 120 s before the session started.
        "dc_spiky_ratio": lambda t: 0.05 if start - 150 <= t < start - 120 else 0.001,
        # Alternates 0.001 / 0.03 every sample: avg ≈ 0.0155, min 0.001, max 0.03.
        "dc_sawtooth": lambda t: 0.03 if int(t // STEP) % 2 else 0.001,
        "dc_nan_ratio": lambda t: math.nan,
    }


def openmetrics(start: float) -> str:
    lines = []
    base = int(start) - SPAN
    for family in sorted({name.split("{")[0] for name in backfill_series(start)}):
        lines.append(f"# TYPE {family} gauge")
        for name, value_at in backfill_series(start).items():
            if name.split("{")[0] != family:
                continue
            for t in range(base, int(start) + SPAN, STEP):
                value = value_at(t)
                lines.append(f"{name} {'NaN' if math.isnan(value) else repr(value)} {t}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    folder: Path
    started: float


def start_prometheus(folder: Path, *, backfill: str | None = None,
                     scrape: str | None = None, scrape_interval: str = "1s",
                     rules: dict[str, Any] | None = None) -> Prometheus:
    """Start ``prometheus`` on 127.0.0.1 with its data in ``folder``; optionally backfilled
    with OpenMetrics text, scraping ``scrape`` (``host:port``) and/or evaluating alerting
    ``rules`` (a rules file's document) every ``scrape_interval``."""
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        raise RuntimeError("prometheus is not installed: apt-get install -y prometheus "
                           "(./dev test installs it)")
    data = folder / "data"
    data.mkdir(parents=True)
    if backfill is not None:
        source = folder / "backfill.om"
        source.write_text(backfill)
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                        str(source), str(data)], check=True, capture_output=True, timeout=60)
    config = {"global": {"scrape_interval": scrape_interval,
                         "evaluation_interval": scrape_interval}}
    if scrape is not None:
        config["scrape_configs"] = [{"job_name": "demo",  # type: ignore[list-item]
                                     "static_configs": [{"targets": [scrape]}]}]
    if rules is not None:
        (folder / "rules.yml").write_text(json.dumps(rules))
        config["rule_files"] = [str(folder / "rules.yml")]  # type: ignore[assignment]
    (folder / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    log = open(folder / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        ["prometheus", f"--config.file={folder / 'prometheus.yml'}",
         f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=1d"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, folder / "prometheus.log")
    return Prometheus(url=url, process=process, folder=folder, started=time.time())


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``url``/-/ready answers 200 (Prometheus and Alertmanager both have it)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"{process.args[0]} did not start:\n" + log.read_text()[-2000:])
        time.sleep(0.1)


def stop_prometheus(prometheus: Prometheus) -> None:
    stop_process(prometheus.process)


class DatadogServer(ThreadingHTTPServer):
    """``GET /api/v1/query`` as Datadog documents it: keys in headers, ``from``/``to`` in
    seconds, ``series[].pointlist`` of ``[milliseconds, value]``; 403 for bad keys, 400 for a
    bad query, 429 with rate-limit headers for the query ``rate.limited``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _DatadogHandler)
        self.monitors: list[dict[str, Any]] = []  # what GET /api/v1/monitor lists
        # query -> series, each (scope, value) with one point every 10 s over [from, to]
        self.series: dict[str, list[tuple[str, float | None]]] = {}
        self.requests: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _DatadogHandler(BaseHTTPRequestHandler):
    server: DatadogServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        args = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.server.requests.append(args)
        if parts.path not in ("/api/v1/query", "/api/v1/monitor"):
            self._send(404, {"errors": ["Not Found"]})
            return
        if self.headers.get("DD-API-KEY") != DD_API_KEY or \
                self.headers.get("DD-APPLICATION-KEY") != DD_APP_KEY:
            self._send(403, {"errors": ["Forbidden"]})
            return
        if parts.path == "/api/v1/monitor":  # paged as Datadog pages it: page from 0
            page, size = int(args.get("page", 0)), int(args.get("page_size", 100))
            self._send(200, self.server.monitors[page * size:(page + 1) * size])
            return
        if not {"from", "to", "query"} <= set(args):
            self._send(400, {"errors": ["The parameters 'from', 'to' and 'query' are required"]})
            return
        query = args["query"]
        if query == "rate.limited":
            self._send(429, {"errors": ["Rate limit of 300 requests in 3600 seconds reached."]},
                       headers={"X-RateLimit-Limit": "300", "X-RateLimit-Period": "3600",
                                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1234",
                                "X-RateLimit-Name": "metrics_query"})
            return
        if query not in self.server.series:
            self._send(400, {"errors": [f"Error parsing query: unable to parse {query}: Rule "
                                        f"'scope_expr' didn't match"]})
            return
        start, end = int(args["from"]), int(args["to"])
        out = []
        for scope, value in self.server.series[query]:
            points = [[t * 1000.0, value] for t in range(start - start % 10 + 10, end + 1, 10)]
            out.append({"metric": query.split("{")[0].split(":")[-1], "scope": scope,
                        "expression": query, "pointlist": points, "interval": 10,
                        "length": len(points), "aggr": "avg"})
        self._send(200, {"status": "ok", "res_type": "time_series", "query": query,
                         "from_date": start * 1000, "to_date": end * 1000, "series": out,
                         "message": "", "group_by": []})


def start_datadog() -> DatadogServer:
    server = DatadogServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    folder: Path

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def states(self) -> dict[str, str]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as answer:
            return {a["labels"]["alertname"]: a["status"]["state"]
                    for a in json.loads(answer.read())}


def start_alertmanager(folder: Path) -> Alertmanager:
    """Debian's ``prometheus-alertmanager`` on 127.0.0.1, alone (no cluster), routing every
    alert to a receiver that sends nothing."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        raise RuntimeError("Alertmanager is not installed: apt-get install -y "
                           "prometheus-alertmanager (./dev test installs it)")
    config = {"route": {"receiver": "nobody", "group_wait": "0s"},
              "receivers": [{"name": "nobody"}]}
    (folder / "alertmanager.yml").write_text(json.dumps(config))
    port = free_port()
    log = open(folder / "alertmanager.log", "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [binary, f"--config.file={folder / 'alertmanager.yml'}",
         f"--storage.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, folder / "alertmanager.log")
    return Alertmanager(url=url, process=process, folder=folder)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
