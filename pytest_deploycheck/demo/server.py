"""The demo control plane: health, a versioned API with login, stats, metrics and fault switches.

Faults and versions change at run time through ``/admin/...`` (or the ``fault``, ``deploy`` and
``rollback`` commands), so a gate can be shown passing, failing and being rolled back.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPONENTS = ("database", "queue", "scheduler")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
WORKFLOWS = [
    {"id": "wf-nightly-backup", "name": "nightly backup", "enabled": True},
    {"id": "wf-invoice-run", "name": "invoice run", "enabled": True},
    {"id": "wf-report-digest", "name": "report digest", "enabled": False},
]
AGENTS = [{"id": "agent-1", "pool": "default", "online": True},
          {"id": "agent-2", "pool": "default", "online": True}]
RUN_DURATION = 0.3  # a workflow run reports "running" this long, then "succeeded"


@dataclass
class Faults:
    unhealthy: set[str] = field(default_factory=set)
    error_rate: float = 0.0
    latency_ms: int = 0
    backup_age_hours: float = 0.0  # how old the latest backup is (0: taken at start)
    incidents: list[str] = field(default_factory=list)  # open incidents on the status API
    page_error: bool = False  # the /app page throws in the browser after it renders

    def to_json(self) -> dict[str, Any]:
        return {"unhealthy": sorted(self.unhealthy), "error_rate": self.error_rate,
                "latency_ms": self.latency_ms, "backup_age_hours": self.backup_age_hours,
                "incidents": list(self.incidents), "page_error": self.page_error}


@dataclass
class State:
    version: str
    history: list[tuple[str, Faults]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    errors: int = 0
    by_status: dict[tuple[str, int], int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    duration_sum: float = 0.0
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    tokens: dict[str, str] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    error_credit: float = 0.0
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests += 1
            self.errors += status >= 500
            self.by_status[(route, status)] = self.by_status.get((route, status), 0) + 1
            index = next((i for i, bound in enumerate(BUCKETS) if seconds <= bound), len(BUCKETS))
            self.buckets[index] += 1
            self.duration_sum += seconds
            self.recent.append(seconds)

    def inject_error(self) -> bool:
        # Deterministic: with error_rate 0.25 exactly every fourth API request fails.
        with self.lock:
            self.error_credit += self.faults.error_rate
            if self.error_credit >= 1.0:
                self.error_credit -= 1.0
                return True
            return False

    def stats(self) -> dict[str, Any]:
        with self.lock:
            recent = sorted(self.recent)
            p99 = recent[min(len(recent) - 1, int(len(recent) * 0.99))] if recent else 0.0
            return {"version": self.version, "requests": self.requests, "errors": self.errors,
                    "error_rate": self.errors / self.requests if self.requests else 0.0,
                    "p99_ms": round(p99 * 1000, 3), "faults": self.faults.to_json()}

    def metrics(self) -> str:
        with self.lock:
            lines = ["# HELP http_requests_total Requests served, by route and status.",
                     "# TYPE http_requests_total counter"]
            for (route, status), count in sorted(self.by_status.items()):
                lines.append(f'http_requests_total{{route="{route}",status="{status}"}} {count}')
            lines += ["# HELP http_request_duration_seconds Request latency.",
                      "# TYPE http_request_duration_seconds histogram"]
            cumulative = 0
            for bound, count in zip(BUCKETS, self.buckets, strict=False):
                cumulative += count
                lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {cumulative}')
            lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {self.requests}')
            lines.append(f"http_request_duration_seconds_sum {self.duration_sum}")
            lines.append(f"http_request_duration_seconds_count {self.requests}")
            lines += ["# HELP demo_version_info The deployed version.",
                      "# TYPE demo_version_info gauge",
                      f'demo_version_info{{version="{self.version}"}} 1',
                      "# HELP demo_component_up Whether a component is healthy.",
                      "# TYPE demo_component_up gauge"]
            for name in COMPONENTS:
                up = 0 if name in self.faults.unhealthy else 1
                lines.append(f'demo_component_up{{component="{name}"}} {up}')
            return "\n".join(lines) + "\n"


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><title>{title} - Demo Console</title></head>"
            f"<body><nav><a href='/'>Home</a> <a href='/console/workflows'>Workflows</a> "
            f"<a href='/console/settings'>Settings</a></nav><h1>{title}</h1>{body}</body></html>")


# The browser front end: /app lists the workflows it fetches from the API (so a broken API
# shows as a failed request), with a sign-in form that posts to /app/login. With the
# ``page_error`` fault its script throws once it has rendered, as a bad front-end release does.
_APP = """<!doctype html><html><head><title>Workflows - Demo App</title>
<link rel="icon" href="data:,"></head><body>
<h1>Workflows</h1><p id="user">USER</p><ul id="workflows"></ul>
<form id="login" method="post" action="/app/login">
<input name="user" id="user-name" placeholder="user"><button type="submit">Sign in</button>
</form>
<script>
fetch("/v1/workflows").then(r => r.json()).then(data => {
  for (const w of data.items) {
    const li = document.createElement("li"); li.textContent = w.name;
    document.getElementById("workflows").appendChild(li);
  }
  document.body.dataset.ready = "yes";
  if (THROW) { throw new TypeError("workflows.map is not a function"); }
});
if (THROW) { undefinedRenderer.render(); }
</script></body></html>"""


def _app(user: str, throw: bool) -> str:
    shown = f"Signed in as {html.escape(user)}" if user else "Not signed in"
    return _APP.replace("USER", shown).replace("THROW", "true" if throw else "false")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services do
    server: DemoServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        state = self.server.state
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path == "/app/login" and method == "POST":  # a form, not JSON
            user = urllib.parse.parse_qs(raw.decode(errors="replace")).get("user", [""])[0]
            self.send_response(303)
            self.send_header("Location", "/app?" + urllib.parse.urlencode({"user": user}))
            self.send_header("Content-Length", "0")
            self.end_headers()
            state.record("/app", 303, time.perf_counter() - started)
            return
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = None
        route, status, body, ctype = self._route(method, path, payload)
        if route.startswith("/v1") or route in ("/health", "/console", "/app"):
            if state.faults.latency_ms:
                time.sleep(state.faults.latency_ms / 1000)
            if route.startswith("/v1") and state.inject_error():
                status, body, ctype = 500, {"error": "injected fault"}, "json"
        data = (json.dumps(body) if ctype == "json" else str(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if ctype == "json" else
                         "text/html; charset=utf-8" if ctype == "html" else
                         "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Demo-Version", state.version)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)
        if route not in ("/metrics", "/stats", "/admin"):
            state.record(route, status, time.perf_counter() - started)

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        return self.server.state.tokens.get(token)

    def _route(self, method: str, path: str, payload: Any) -> tuple[str, int, Any, str]:
        state = self.server.state
        if payload is None:
            return "/v1", 400, {"error": "body is not JSON"}, "json"
        if path == "/health" and method in ("GET", "HEAD"):
            checks = {c: "unhealthy" if c in state.faults.unhealthy else "healthy"
                      for c in COMPONENTS}
            ok = not state.faults.unhealthy
            return "/health", 200 if ok else 503, {
                "status": "healthy" if ok else "unhealthy", "version": state.version,
                "checks": checks}, "json"
        if path == "/stats":
            return "/stats", 200, state.stats(), "json"
        if path == "/metrics":
            return "/metrics", 200, state.metrics(), "text"
        if path.startswith("/admin/"):
            return self._admin(method, path, payload)
        if path == "/app" and method == "GET":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            return "/app", 200, _app(query.get("user", [""])[0], state.faults.page_error), "html"
        if path in ("/", "/console", "/console/workflows", "/console/settings") and method == "GET":
            title = {"/": "Dashboard", "/console": "Dashboard", "/console/workflows": "Workflows",
                     "/console/settings": "Settings"}[path]
            items = "".join(f"<li>{w['name']}</li>" for w in WORKFLOWS)
            return "/console", 200, _page(title, f"<ul>{items}</ul>"), "html"
        return self._api(method, path, payload)

    def _api(self, method: str, path: str, payload: Any) -> tuple[str, int, Any, str]:
        state = self.server.state
        if path == "/v1/backups/latest" and method == "GET":
            return "/v1/backups", 200, _backup(state), "json"
        if path == "/v1/incidents" and method == "GET":
            incidents = [{"id": f"inc-{n + 1}", "name": name, "status": "investigating"}
                         for n, name in enumerate(state.faults.incidents)]
            return "/v1/incidents", 200, {"incidents": incidents}, "json"
        if path == "/v1/workflows" and method == "GET":
            return "/v1/workflows", 200, {"items": WORKFLOWS, "total": len(WORKFLOWS)}, "json"
        if path == "/v1/agents" and method == "GET":
            return "/v1/agents", 200, {"items": AGENTS, "total": len(AGENTS)}, "json"
        if path == "/v1/auth/login" and method == "POST":
            user = payload.get("user") if isinstance(payload, dict) else None
            if not isinstance(user, str) or not user:
                return "/v1/auth", 400, {"error": "user is required"}, "json"
            token = secrets.token_hex(16)
            with state.lock:
                state.tokens[token] = user
            return "/v1/auth", 200, {"token": token, "user": user, "expires_in": 3600}, "json"
        if path == "/v1/auth/me" and method == "GET":
            user = self._user()
            if user is None:
                return "/v1/auth", 401, {"error": "missing or invalid token"}, "json"
            return "/v1/auth", 200, {"user": user}, "json"
        match = re.fullmatch(r"/v1/workflows/([\w-]+)(/runs)?", path)
        if match:
            workflow = next((w for w in WORKFLOWS if w["id"] == match.group(1)), None)
            if workflow is None:
                return "/v1/workflows", 404, {"error": "no such workflow"}, "json"
            if not match.group(2) and method == "GET":
                return "/v1/workflows", 200, workflow, "json"
            if match.group(2) and method == "POST":
                if self._user() is None:
                    return "/v1/runs", 401, {"error": "missing or invalid token"}, "json"
                run_id = f"run-{secrets.token_hex(4)}"
                with state.lock:
                    state.runs[run_id] = {"id": run_id, "workflow": workflow["id"],
                                          "started": time.time()}
                return "/v1/runs", 201, {"id": run_id, "status": "queued"}, "json"
        match = re.fullmatch(r"/v1/runs/([\w-]+)", path)
        if match and method == "GET":
            run = state.runs.get(match.group(1))
            if run is None:
                return "/v1/runs", 404, {"error": "no such run"}, "json"
            done = time.time() - run["started"] >= RUN_DURATION
            return "/v1/runs", 200, {"id": run["id"], "workflow": run["workflow"],
                                     "status": "succeeded" if done else "running"}, "json"
        return "/v1", 404, {"error": f"no route for {method} {path}"}, "json"

    def _admin(self, method: str, path: str, payload: Any) -> tuple[str, int, Any, str]:
        state = self.server.state
        with state.lock:
            if path == "/admin/faults" and method == "POST":
                state.faults = _faults(payload, state.faults)
            elif path == "/admin/faults" and method == "DELETE":
                state.faults = Faults()
            elif path == "/admin/deploy" and method == "POST":
                version = payload.get("version")
                if not isinstance(version, str) or not version:
                    return "/admin", 400, {"error": "version is required"}, "json"
                state.history.append((state.version, state.faults))
                state.version, state.faults = version, _faults(payload, Faults())
            elif path == "/admin/rollback" and method == "POST":
                # Back to the previous release; with none, redeploy the current version as it
                # was released (a fault switched on by hand is a bad change to undo).
                state.version, state.faults = state.history.pop() if state.history \
                    else (state.version, Faults())
            elif not (path == "/admin/state" and method == "GET"):
                return "/admin", 404, {"error": f"no route for {method} {path}"}, "json"
            return "/admin", 200, {"version": state.version, "faults": state.faults.to_json(),
                                   "history": [v for v, _ in state.history]}, "json"


def _backup(state: State) -> dict[str, Any]:
    """The latest database backup: taken when the service started, unless a fault ages it."""
    finished = state.started - state.faults.backup_age_hours * 3600
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(finished))
    return {"id": f"backup-{stamp}", "status": "completed", "databases": ["workflows", "runs"],
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(finished)),
            "size_bytes": 48_213_504, "restore_tested": True}


def _faults(payload: Any, base: Faults) -> Faults:
    data = payload if isinstance(payload, dict) else {}
    unhealthy = data.get("unhealthy", sorted(base.unhealthy))
    if isinstance(unhealthy, str):
        unhealthy = [unhealthy]
    incidents = data.get("incidents", base.incidents)
    return Faults(unhealthy={u for u in unhealthy if u in COMPONENTS},
                  error_rate=float(data.get("error_rate", base.error_rate)),
                  latency_ms=int(data.get("latency_ms", base.latency_ms)),
                  backup_age_hours=float(data.get("backup_age_hours", base.backup_age_hours)),
                  page_error=bool(data.get("page_error", base.page_error)),
                  incidents=[str(i) for i in (incidents if isinstance(incidents, list)
                                              else [incidents])])


class DemoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, version: str) -> None:
        super().__init__((host, port), Handler)
        self.state = State(version=version)
