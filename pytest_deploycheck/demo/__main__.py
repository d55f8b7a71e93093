"""Command line of the demo service.

    python -m pytest_deploycheck.demo --port 8765             # serve (the default command)
    python -m pytest_deploycheck.demo fault --port 8765 --unhealthy database
    python -m pytest_deploycheck.demo fault --port 8765 --backup-age-hours 30 --incident "DB slow"
    python -m pytest_deploycheck.demo fault --port 8765 --page-error   # /app throws in the browser
    python -m pytest_deploycheck.demo deploy --port 8765 --version 2.0.0 --error-rate 0.5
    python -m pytest_deploycheck.demo rollback --port 8765
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import urllib.error
import urllib.request
from typing import Any

COMMANDS = ("serve", "fault", "deploy", "rollback", "state")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_deploycheck.demo",
                                     description="demo control-plane service")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the service (default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--version", default="1.2.3", help="version reported at start")
    for name, text in (("fault", "switch faults on (or --clear them)"),
                       ("deploy", "deploy a version, optionally with faults"),
                       ("rollback", "go back to the previous version"),
                       ("state", "print version and faults")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--host", default="127.0.0.1")
        cmd.add_argument("--port", type=int, default=8765)
        if name in ("fault", "deploy"):
            cmd.add_argument("--unhealthy", action="append", default=None,
                             help="component to report unhealthy (database, queue, scheduler)")
            cmd.add_argument("--error-rate", type=float, default=None,
                             help="fraction of API requests answered with 500")
            cmd.add_argument("--latency-ms", type=int, default=None,
                             help="delay added to every API and health response")
            cmd.add_argument("--backup-age-hours", type=float, default=None,
                             help="make the latest backup this many hours old")
            cmd.add_argument("--incident", action="append", default=None,
                             help="open an incident with this title on /v1/incidents")
            cmd.add_argument("--page-error", action="store_true", default=None,
                             help="make the /app page throw in the browser")
        if name == "fault":
            cmd.add_argument("--clear", action="store_true", help="remove every fault")
        if name == "deploy":
            cmd.add_argument("--version", required=True)
    return parser


def _call(host: str, port: int, method: str, path: str, payload: dict[str, Any] | None) -> int:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"http://{host}:{port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            print(answer.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(f"demo answered {exc.code}: {exc.read().decode()}", file=sys.stderr)
    except OSError as exc:
        print(f"cannot reach the demo at {host}:{port}: {exc}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in COMMANDS and args_list[0] not in ("-h", "--help")):
        args_list.insert(0, "serve")
    args = _parser().parse_args(args_list)
    if args.command == "serve":
        from .server import DemoServer

        try:
            server = DemoServer(args.host, args.port, args.version)
        except OSError as exc:  # most often a demo started earlier still runs there
            print(f"demo: cannot listen on {args.host}:{args.port}: {exc.strerror or exc} "
                  f"(a demo still running? stop it, or pick another --port)", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        print(f"demo service {args.version} on http://{args.host}:{server.server_port}",
              flush=True)
        try:
            server.serve_forever()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.server_close()
        return 0
    if args.command == "rollback":
        return _call(args.host, args.port, "POST", "/admin/rollback", {})
    if args.command == "state":
        return _call(args.host, args.port, "GET", "/admin/state", None)
    if args.command == "fault" and args.clear:
        return _call(args.host, args.port, "DELETE", "/admin/faults", None)
    payload: dict[str, Any] = {}
    if args.unhealthy is not None:
        payload["unhealthy"] = args.unhealthy
    if args.error_rate is not None:
        payload["error_rate"] = args.error_rate
    if args.latency_ms is not None:
        payload["latency_ms"] = args.latency_ms
    if args.backup_age_hours is not None:
        payload["backup_age_hours"] = args.backup_age_hours
    if args.incident is not None:
        payload["incidents"] = args.incident
    if args.page_error:
        payload["page_error"] = True
    if args.command == "deploy":
        payload["version"] = args.version
        return _call(args.host, args.port, "POST", "/admin/deploy", payload)
    return _call(args.host, args.port, "POST", "/admin/faults", payload)


if __name__ == "__main__":
    sys.exit(main())
