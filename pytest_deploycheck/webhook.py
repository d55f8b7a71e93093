"""``python -m pytest_deploycheck.webhook``: the gate behind an HTTP endpoint, for Flagger's
webhooks and Argo Rollouts' web metric provider.

    python -m pytest_deploycheck.webhook --port 8080 --token-env GATE_TOKEN \\
        --env staging --env production -- suites --rollback=off

- ``POST /gate`` takes Flagger's webhook payload (``name``, ``namespace``, ``phase``,
  ``metadata: {env, markers, args}``), runs the gate and answers 200 when the verdict is
  ``passed`` or ``passed_with_warnings``, 412 otherwise, with the gate report as the body.
- ``GET /gate?env=...&markers=...`` runs it too and answers ``{"verdict", "passed", "failed"}``
  (Argo's web provider: ``jsonPath: "{$.passed}"``).
- ``GET /healthz`` answers 200 while the server runs.

What the network may choose is bounded: an environment among ``--env`` (any of the
environments file without it), a marker expression
of names, ``and``, ``or``, ``not`` and parentheses, and only the extra arguments listed with
``--allow-arg``; everything else of the pytest command line is the server's (after ``--``). A
caller needs ``Authorization: Bearer <token>`` when ``--token-env`` names the variable holding
the token. One gate runs at a time per environment; up to ``--queue`` more wait their turn, and
beyond that a request gets 409. Each request is recorded in ``--audit-log`` (who asked, from
where, what, the verdict), and the run gets ``DEPLOY_ACTOR`` saying who asked.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import re
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .gate import OK_VERDICTS, overall_verdict
from .runtime.commands import run_command
from .runtime.durable import append_json_line
from .units import utc_iso

MAX_BODY = 64 * 1024


@dataclass
class Server:
    """What the server allows, and who is running or waiting."""

    pytest_args: list[str]
    envs: list[str]
    allowed_args: frozenset[str]
    token: str | None
    queue: int
    timeout: float
    audit_log: Path | None
    cwd: Path
    locks: dict[str, threading.Lock] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)
    guard: threading.Lock = field(default_factory=threading.Lock)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def markers_ok(text: str) -> bool:
    """A -m expression of names, ``and``, ``or``, ``not`` and parentheses only (no pytest
    option smuggled in)."""
    tokens = re.findall(r"\(|\)|[A-Za-z_][A-Za-z0-9_]*|\S+", text)
    return bool(tokens) and all(token in "()" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token)
                                for token in tokens)


def command(server: Server, env: str, markers: str, args: list[str], report: Path) -> list[str]:
    """The pytest command line of one request, after checking what the request chose."""
    if server.envs and env not in server.envs:
        raise Refused(400, f"environment {env!r} is not one this server gates "
                           f"({', '.join(server.envs)})")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", env):
        raise Refused(400, f"environment {env!r}: a name of the environments file is needed")
    if markers and not markers_ok(markers):
        raise Refused(400, f"markers {markers!r}: names, and, or, not and parentheses only")
    refused = [arg for arg in args if arg not in server.allowed_args]
    if refused:
        raise Refused(400, f"argument {refused[0]!r} is not allowed here (the server allows: "
                           f"{', '.join(sorted(server.allowed_args)) or 'none'})")
    return [sys.executable, "-m", "pytest", *server.pytest_args, f"--env={env}",
            *(["-m", markers] if markers else []), *args, f"--gate-report={report}",
            "-p", "no:cacheprovider"]


def run_gate(server: Server, env: str, markers: str, args: list[str], caller: str,
             still_there: Callable[[], bool] = lambda: True) -> dict[str, Any]:
    """Run the gate of one request (in its turn for ``env``); its gate report."""
    with tempfile.TemporaryDirectory(prefix="deploycheck-webhook-") as folder:
        report_path = Path(folder) / "gate.json"
        argv = command(server, env, markers, args, report_path)  # refused before queueing
        with server.guard:
            lock = server.locks.setdefault(env, threading.Lock())
            if lock.locked() and server.waiting.get(env, 0) >= server.queue:
                raise Refused(409, f"a gate of {env} is running and {server.queue} more "
                                   f"wait: try again later")
            server.waiting[env] = server.waiting.get(env, 0) + 1
        with lock:
            with server.guard:
                server.waiting[env] -= 1
            if not still_there():
                raise Refused(499, "the caller hung up while its request waited")
            # Killed at the timeout with everything it started (xdist workers, browsers).
            done = run_command(argv, timeout=server.timeout, cwd=server.cwd,
                               env={"DEPLOY_ACTOR": caller})
            if done.timed_out:
                return {"env": env, "verdict": "blocked",
                        "errors": [f"the gate did not end within {server.timeout:g}s"]}
            try:
                report: dict[str, Any] = json.loads(report_path.read_text())
            except (OSError, ValueError) as exc:
                return {"env": env, "verdict": "blocked",
                        "errors": [f"the gate wrote no report: {exc}"]}
            return report


def verdict_of(report: dict[str, Any]) -> str:
    objects = report.get("environments", [report])
    return overall_verdict(str(one.get("verdict", "blocked")) for one in objects)


class Handler(BaseHTTPRequestHandler):
    server_version = "pytest-deploycheck-webhook"
    gate: Server  # set on the class made for one server
    timeout = 30  # seconds a client may take to send its request (a slow one holds a thread)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        token = self.gate.token
        if token is None:
            return True
        given = self.headers.get("Authorization", "")
        return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(),
                                                                   token.encode())

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/healthz":
            self._send(200, {"status": "ok"})
            return
        if parts.path != "/gate":
            self._send(404, {"error": f"no {parts.path}: POST /gate, GET /gate, GET /healthz"})
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._gate(query.get("env", ""), query.get("markers", ""), [], "argo", flagger=False)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != "/gate":
            self._send(404, {"error": "POST /gate"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._send(400, {"error": "Content-Length is not a number"})
            return
        if not 0 <= length <= MAX_BODY:
            self._send(413, {"error": f"a payload is 0 to {MAX_BODY} bytes"})
            return
        try:
            payload = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._send(400, {"error": "the body is not JSON"})
            return
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        metadata = metadata if isinstance(metadata, dict) else {}
        args = metadata.get("args", [])
        args = args.split() if isinstance(args, str) else args
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            self._send(400, {"error": "metadata.args: a list of strings"})
            return
        who = "flagger " + "/".join(str(payload.get(k, "?")) for k in ("namespace", "name")) + \
            f" ({payload.get('phase', '?')})" if isinstance(payload, dict) else "flagger"
        self._gate(str(metadata.get("env", "")), str(metadata.get("markers", "")), args, who,
                   flagger=True)

    def _gate(self, env: str, markers: str, args: list[str], who: str, *, flagger: bool) -> None:
        caller = f"webhook: {who} from {self.client_address[0]}"
        if not self._authorized():
            self._audit(caller, env, markers, "refused: no or a wrong bearer token")
            self._send(401, {"error": "Authorization: Bearer <token> is required"})
            return
        try:
            report = run_gate(self.gate, env, markers, args, caller, self._still_there)
        except Refused as exc:
            self._audit(caller, env, markers, f"refused: {exc}")
            self._send(exc.status, {"error": str(exc)})
            return
        verdict = verdict_of(report)
        self._audit(caller, env, markers, verdict)
        passed = verdict in OK_VERDICTS
        if flagger:
            self._send(200 if passed else 412, report)
            return
        failed = sum(1 for one in report.get("environments", [report])
                     for check in one.get("checks", []) if check.get("outcome") == "failed")
        self._send(200, {"verdict": verdict, "passed": passed, "failed": failed})

    def _still_there(self) -> bool:
        """Whether the caller still waits for the answer (one that hung up while its request
        waited for its turn gets no gate run for nobody)."""
        try:
            self.connection.setblocking(False)
            try:
                return bool(self.connection.recv(1, socket.MSG_PEEK) != b"")
            finally:
                self.connection.setblocking(True)
        except BlockingIOError:
            return True
        except OSError:
            return False

    def _audit(self, caller: str, env: str, markers: str, outcome: str) -> None:
        if self.gate.audit_log is None:
            return
        try:
            append_json_line(self.gate.audit_log, {
                "time": utc_iso(), "event": "webhook_request", "caller": caller, "env": env,
                "markers": markers, "outcome": outcome})
        except OSError as exc:
            print(f"webhook: cannot append to {self.gate.audit_log}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    pytest_args: list[str] = []
    if "--" in args_list:
        index = args_list.index("--")
        args_list, pytest_args = args_list[:index], args_list[index + 1:]
    parser = argparse.ArgumentParser(
        prog="python -m pytest_deploycheck.webhook",
        usage="%(prog)s [options] -- PYTEST_ARGS",
        description="The deploy gate behind HTTP: POST /gate (Flagger's webhooks), GET /gate "
                    "(Argo Rollouts' web provider), GET /healthz. Everything after -- is the "
                    "pytest command line of every gate (the suites, --rollback=off, ...).")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to listen on (0.0.0.0 to serve a cluster's network)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--env", action="append", default=[], dest="envs",
                        help="an environment callers may gate (repeatable; default: any of the "
                             "environments file)")
    parser.add_argument("--token-env", help="the variable holding the callers' bearer token")
    parser.add_argument("--allow-arg", action="append", default=[], dest="allowed",
                        help="an extra pytest argument callers may add (repeatable)")
    parser.add_argument("--queue", type=int, default=4,
                        help="requests that may wait for a running gate of their environment")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a gate may run")
    parser.add_argument("--audit-log", type=Path, help="append one JSON line per request")
    args = parser.parse_args(args_list)
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            parser.error(f"--token-env {args.token_env}: the variable is not set")
    server = Server(pytest_args=pytest_args, envs=args.envs, allowed_args=frozenset(args.allowed),
                    token=token, queue=max(args.queue, 0), timeout=args.timeout,
                    audit_log=args.audit_log, cwd=Path.cwd())
    handler = type("GateHandler", (Handler,), {"gate": server})
    httpd = ThreadingHTTPServer((args.host, args.port), handler)
    httpd.daemon_threads = True
    print(f"deploycheck webhook on http://{args.host}:{httpd.server_port} gating "
          f"{', '.join(args.envs) or 'any environment'}: pytest {' '.join(pytest_args)}",
          flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
