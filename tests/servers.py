"""A loopback HTTP server with the endpoints the tests need: answers, faults and counters."""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SECRET_SESSION_TOKEN = "sess-4f9a2c71e0b8d3a6"
OK_BODY = {"status": "ok", "version": "1.0", "count": 3, "name": "svc", "flag": True,
           "nothing": None, "items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}],
           "checks": {"db": "up", "cache": "up"}}
# /raw/<name>: bodies a JSON encoder would never write, sent as they are.
RAW_BODIES = {
    "null-component": b'{"checks": {"db": null, "cache": "healthy"}}',
    "item-without-status": b'{"items": [{"status": "ok"}, {"status": "ok"}, {"id": 3}]}',
    "null-number": b'{"items": [{"n": 1}, {"n": null}]}',
    "no-items": b'{"items": [], "checks": {}}',
    "empty-object": b"{}",
    "groups": b'{"groups": [[{"s": "ok"}], [{"s": "ok"}, {}]]}',
    "kinds": b'{"items": [{"kind": "web", "s": "up"}, {"kind": "db"}, {"kind": "db", "s": "up"}]}',
    "nested": b'{"data": {"items": [{"s": "up"}, {"t": 1}]}}',
    "all-null": b'{"items": [{"deleted": null}, {"deleted": null}]}',
    "dup-status": b'{"status": "unhealthy", "status": "healthy"}',
    "dup-nested": b'{"checks": {"db": "down", "db": "up"}, "count": 1}',
    "dup-in-list": b'{"count": 1, "items": [{"n": 1}, {"n": 5, "n": 0}]}',
    "dup-token": b'{"token": "sess-first-4f9a2c71", "token": "sess-last-0e8b3d6a"}',
    "deep": b"[" * 3000 + b"]" * 3000,
    "deep-object": b'{"count": 1, "a": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3001,
    "nan": b'{"count": 1, "errors": NaN}',
    "neg-infinity": b'{"items": [{"n": 1}, {"n": -Infinity}]}',
    "infinity": b'{"count": 1, "latency": Infinity}',
    "huge-number": b'{"count": 1, "errors": 1e999}',
    "nan-text": b'{"count": 1, "note": "NaN and Infinity are words here"}',
    "latencies": b'{"items": [{"latency": 120}, {"latency": 80}, {"id": 3}]}',
    "latency-null": b'{"data": {"items": [{"latency": 120}, {"latency": null}]}}',
    "list-null": b'{"latencies": [120, null]}',
    "somewhat-deep": b'{"count": 1, "a": ' + b"[" * 60 + b"]" * 60 + b"}",
}



def free_port() -> int:
    """A port nothing listens on now (tests never use fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a check's timeout, a reset) leaves a broken pipe behind: what
        # the fault tests provoke, not worth a traceback in the output of the run they check.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        # /track/<name>: (name, method, started, ended, requests in flight when it started)
        self.timeline: list[tuple[str, str, float, float, int]] = []
        self.in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def _send(self, status: int, body: Any, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if ctype == "application/json" else str(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.lock:
            server.hits[path] += 1
            hits = server.hits[path]
            server.requests.append((self.command, path, dict(self.headers.items())))
        if path == "/ok":
            self._send(200, OK_BODY, headers={"X-Service": "svc-1.0"})
        elif path.startswith("/status/"):
            # Also under a prefix (/status/503/api/v1/query), to stand in for a whole API.
            self._send(int(path.split("/")[2]), {"status": "error"})
        elif path.startswith("/raw/"):
            self._send(200, RAW_BODIES[path[len("/raw/"):]])
        elif path.startswith("/headers/"):
            # /headers/ok/down: one X-Status header line per value.
            self.send_response(200)
            for value in path.split("/")[2:]:
                self.send_header("X-Status", value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        elif path == "/slow":
            time.sleep(int(query.get("ms", "100")) / 1000)
            self._send(200, OK_BODY)
        elif path.startswith("/track/"):
            # Records when each request ran and how many ran at once; answers after ?ms=.
            with server.lock:
                server.in_flight += 1
                concurrent = server.in_flight
            started = time.monotonic()
            time.sleep(int(query.get("ms", "0")) / 1000)
            with server.lock:
                server.in_flight -= 1
                server.timeline.append((path[len("/track/"):], self.command, started,
                                        time.monotonic(), concurrent))
            self._send(int(query.get("status", "200")), {"status": "ok"})
        elif path == "/hang" or path.startswith("/hang/"):
            server.stopping.wait(60)
        elif path == "/reset":
            # SO_LINGER 0 makes close() send a TCP RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif path == "/text" or path.startswith("/text/"):
            self._send(200, "<html>not json</html>", ctype="text/html")
        elif path == "/huge":
            size = 50 * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b" " * (1024 * 1024)
            try:
                for _ in range(50):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif path == "/echo" or path.startswith("/echo/"):
            self._send(200, {"method": self.command, "path": self.path,
                             "headers": dict(self.headers.items()),
                             "body": body.decode(errors="replace")})
        elif path.startswith("/flaky/"):
            fail = int(query.get("fail", "2"))
            if hits <= fail:
                self._send(int(query.get("code", "503")), {"status": "starting", "hit": hits})
            else:
                self._send(200, {"status": "ready", "hit": hits})
        elif path.startswith("/webhook/"):
            # A webhook receiver: /webhook/<status>/<name> records the body and answers status.
            with server.lock:
                server.bodies.append((path, body.decode(errors="replace")))
            self._send(int(path.split("/")[2]), {"received": True})
        elif path.startswith("/statuspage/"):
            # A status page API (/statuspage/2/api/v2/incidents/unresolved.json: 2 open).
            count = int(path.split("/")[2])
            self._send(200, {"page": {"name": "status"}, "incidents": [
                {"name": f"incident {n}", "status": "investigating"} for n in range(count)]})
        elif path == "/redirect":
            self._send(302, {"to": query["to"]}, headers={"Location": query["to"]})
        elif path == "/login":
            self._send(200, {"token": SECRET_SESSION_TOKEN, "user": "smoke"})
        elif path.startswith("/token/"):
            # A login that issues the token of issued_token(<name>), kept out of the URL.
            self._send(200, {"token": issued_token(path[len("/token/"):]), "user": "smoke"})
        elif path.startswith("/cookie/"):
            # A login that sets a session cookie (named after the path) and says nothing else.
            self._send(200, {"user": "smoke"}, headers={
                "Set-Cookie": f"sid={issued_token(path[len('/cookie/'):])}; Path=/; HttpOnly"})
        elif path.startswith("/redirect/"):
            # A sign-in callback: the token travels in the Location of a redirect.
            self._send(302, {}, headers={"Location": "/cb?access_token="
                                                     + issued_token(path[len("/redirect/"):])})
        elif path.startswith("/presigned/"):
            # A download link signed for a while: whoever has it may read the object.
            self._send(200, {"download": "https://bucket.s3.example.com/report.csv?X-Amz-Expires="
                             f"300&X-Amz-Signature={issued_token(path[len('/presigned/'):])}"})
        elif path == "/me":
            ok = self.headers.get("Authorization") == f"Bearer {SECRET_SESSION_TOKEN}"
            self._send(200 if ok else 401, {"user": "smoke"} if ok else {"error": "no"})
        else:
            self._send(404, {"error": "not found", "path": path})


def issued_token(name: str) -> str:
    """The token ``/token/<name>`` issues: a secret whose origin the tests can tell apart."""
    return f"pl4nted-issued-{name}-9c2e"


def start_server() -> LoopbackServer:
    server = LoopbackServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_server(server: LoopbackServer) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()


class SlowLoris:
    """A server on 127.0.0.1 that answers every request one byte at a time, forever.

    ``/big`` answers with a valid header, then an endless body; every other path drips its
    status line and header lines, which defeats any timeout applied per socket read.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.stopping = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(65536)
                if request.split(b" ", 2)[1:2] == [b"/big"]:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                    chunk = b"x" * 65536
                    while not self.stopping.is_set():
                        conn.sendall(chunk)
                    return
                data = b"HTTP/1.1 200 OK\r\n" + b"X-Drip: 1\r\n" * 100000
                for byte in data:
                    if self.stopping.wait(self.interval):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
