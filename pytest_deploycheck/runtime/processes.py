"""``start:`` processes: launched in their own process group, polled until ready, always stopped.

Each process leads a new session so that stopping it also stops whatever it spawned (a shell, a
server's workers): SIGTERM to the group, then SIGKILL after a grace period. A small reaper
process per group does the same when pytest itself dies without stopping them (SIGKILL, OOM):
it waits for the end of a pipe only pytest holds.

Readiness must come from the process that was started: a ready URL on this machine whose port
already answers before the start is refused (a stale demo or another service would answer for
it), a process that exits before it is ready is an error, and one that exits after is reported
by :meth:`ProcessManager.exited` so that the run cannot pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigError
from ..secrets import Redactor
from .clients import new_client
from .commands import child_environ, group_members, output_redactor

STOP_GRACE = 5.0
POLL_INTERVAL = 0.1
# Run by the reaper: at the end of its standard input (pytest gone), stop the group.
_REAPER = ("import os, signal, sys, time\n"
           "sys.stdin.buffer.read()\n"
           "pgid, grace = int(sys.argv[1]), float(sys.argv[2])\n"
           "for sig in (signal.SIGTERM, signal.SIGKILL):\n"
           "    try:\n"
           "        os.killpg(pgid, sig)\n"
           "    except OSError:\n"
           "        break\n"
           "    time.sleep(grace)\n")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _port_of(url: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return (parts.hostname, port) if parts.hostname else None


def _is_local(host: str) -> bool:
    """Whether ``host`` is an address of this machine (only a local port can be the started
    process's): binding to an address succeeds only where it is assigned."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None,
                                                              type=socket.SOCK_STREAM)}
    except OSError:
        return False
    for address in addresses:
        family = socket.AF_INET6 if ":" in str(address) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((str(address), 0))
                return True
            except OSError:
                continue
    return False


def _answers(host: str, port: int) -> bool:
    """Whether something accepts connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _listeners(port: int) -> set[int]:
    """The PIDs holding a listening TCP socket on ``port`` (Linux ``/proc``; else empty)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and \
                    int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids: set[int] = set()
    if not inodes:
        return pids
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        pids.add(int(entry.name))
                        break
    return pids


def _describe_pid(pid: int) -> str:
    # The program's name only: another process's arguments may hold secrets no one told us.
    try:
        name = Path(f"/proc/{pid}/comm").read_text(errors="replace").strip()
    except OSError:
        return f"pid {pid}"
    return f"pid {pid} ({name})"



@dataclass(frozen=True)
class StartProcess:
    """A process started before the first check and stopped at session end."""

    name: str
    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    ready: str | None
    timeout: float
    file: str
    line: int


class Starting(Protocol):
    """An environment as the processes see it: its name and what it starts."""

    @property
    def name(self) -> str: ...

    @property
    def start(self) -> Sequence[StartProcess]: ...


class _Running:
    def __init__(self, env: str, spec: StartProcess, popen: subprocess.Popen[bytes], log: Path,
                 log_file: IO[bytes], reaper: subprocess.Popen[bytes] | None) -> None:
        self.env, self.spec, self.popen, self.log = env, spec, popen, log
        self.log_file, self.reaper = log_file, reaper


class ProcessManager:
    """Starts each environment's processes once and stops all of them at the end."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._running: list[_Running] = []
        self._started: set[str] = set()
        self._logdir: Path | None = None

    def start(self, env: Starting) -> None:
        """Start ``env``'s processes (once) and wait until each is ready.

        Raises :class:`ConfigError` naming the ``start`` entry when one exits or never gets ready;
        whatever was started is stopped first.
        """
        if env.name in self._started:
            return
        self._started.add(env.name)
        for spec in env.start:
            try:
                self._start_one(env.name, spec)
            except ConfigError:
                self.stop_all()
                raise

    def _start_one(self, env: str, spec: StartProcess) -> None:
        self._refuse_taken_port(spec)
        if self._logdir is None:
            self._logdir = Path(tempfile.mkdtemp(prefix="deploycheck-start-"))
        log = self._logdir / f"{len(self._running)}.log"
        log_file = log.open("wb")
        command: str | Sequence[str] = spec.command if isinstance(spec.command, str) \
            else list(spec.command)
        try:
            popen = subprocess.Popen(command, shell=isinstance(command, str), cwd=spec.cwd,
                                     env=child_environ(dict(spec.env)), stdin=subprocess.DEVNULL,
                                     stdout=log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        except OSError as exc:
            log_file.close()
            raise ConfigError(f"cannot start {spec.name!r}: {exc}", file=spec.file,
                              line=spec.line, key="start") from None
        running = _Running(env, spec, popen, log, log_file, _reaper(popen.pid))
        self._running.append(running)
        self._wait_ready(running)

    def _refuse_taken_port(self, spec: StartProcess) -> None:
        """Refuse to start ``spec`` when its ready URL already answers: whatever answers there
        would make a process that failed to bind look ready."""
        address = _port_of(spec.ready) if spec.ready else None
        if address is None or not _is_local(address[0]) or not _answers(*address):
            return
        holders = sorted(_listeners(address[1]))
        held = f" (held by {', '.join(_describe_pid(pid) for pid in holders)})" \
            if holders else ""
        raise ConfigError(
            f"{spec.name!r} not started: port {address[1]} of its ready URL {spec.ready} is "
            f"already in use{held}; stop what listens there (a leftover run?) or use another "
            f"port", file=spec.file, line=spec.line, key="start")

    def exited(self) -> list[tuple[str, str]]:
        """``(env, message)`` for each started process that has exited since it was ready:
        the checks after that did not test it."""
        out = []
        for proc in self._running:
            code = proc.popen.poll()
            if code is not None:
                out.append((proc.env, self._exited_message(proc, code)))
        return out

    def _exited_message(self, running: _Running, code: int) -> str:
        redactor = output_redactor(running.spec.env, self.redactor)
        return (f"{running.spec.file}:{running.spec.line}: start: {running.spec.name!r} exited "
                f"with status {code} after it was ready; its output:\n"
                f"{redactor.redact(_tail(running.log))}")

    def _wait_ready(self, running: _Running) -> None:
        spec = running.spec
        redactor = output_redactor(spec.env, self.redactor)
        deadline = time.monotonic() + spec.timeout
        last = "no answer yet"
        with new_client(verify=False) as client:
            while True:
                code = running.popen.poll()
                if code is not None:
                    raise ConfigError(
                        f"{spec.name!r} exited with status {code} before it was ready; its "
                        f"output:\n{redactor.redact(_tail(running.log))}", file=spec.file,
                        line=spec.line, key="start")
                if spec.ready is None:
                    return
                try:
                    # Each poll ends by the start timeout; only the status is read.
                    left = max(deadline - time.monotonic(), 0.01)
                    with client.stream("GET", spec.ready, timeout=min(1.0, left)) as answer:
                        status = answer.status_code
                    if 200 <= status < 300:
                        self._check_answered_by(running, redactor)
                        return
                    last = f"HTTP {status}"
                except httpx.HTTPError as exc:
                    last = f"{exc.__class__.__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"{spec.name!r} was not ready after {spec.timeout:g}s: {spec.ready} "
                        f"answered {redactor.redact(last)}; its output:\n"
                        f"{redactor.redact(_tail(running.log))}", file=spec.file,
                        line=spec.line, key="start")
                time.sleep(POLL_INTERVAL)

    @staticmethod
    def _check_answered_by(running: _Running, redactor: Redactor) -> None:
        """Raise when the started process died as the answer came: someone else answered."""
        spec = running.spec
        code = running.popen.poll()
        if code is not None:
            raise ConfigError(f"{spec.name!r} exited with status {code} as it got ready; its "
                              f"output:\n{redactor.redact(_tail(running.log))}",
                              file=spec.file, line=spec.line, key="start")

    def stop_all(self) -> None:
        """Stop every started process group: SIGTERM, then SIGKILL after a grace period.

        Returns once no process of the groups is alive, so that their ports are free when the
        session ends (bounded: a process stuck in the kernel does not hang the run).
        """
        running, self._running = self._running, []
        for proc in running:
            if proc.reaper is not None:  # stopping here: the reaper is not needed
                proc.reaper.kill()
                proc.reaper.wait()
                if proc.reaper.stdin is not None:
                    proc.reaper.stdin.close()
            _signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            # The group, not just the leader: a shell's children outlive it.
            _wait_group(proc.popen.pid, deadline)
            _signal_group(proc.popen, signal.SIGKILL)
            _wait_group(proc.popen.pid, time.monotonic() + STOP_GRACE)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=0.1)
            proc.log_file.close()
        # The logs only serve the error message of a process that never got ready, which
        # quotes their tail before stopping; left behind, every run would add a folder to /tmp.
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None


def _reaper(pgid: int) -> subprocess.Popen[bytes] | None:
    """A process that stops group ``pgid`` when the pipe to it closes, i.e. when this process
    ends however it ends; in a session of its own, so that the group's stop spares it."""
    try:
        return subprocess.Popen([sys.executable, "-c", _REAPER, str(pgid), str(STOP_GRACE)],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:  # the run goes on; only a killed pytest would leave the group behind
        return None


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def _group_alive(pgid: int) -> bool:
    return group_members(pgid) > 0


def _wait_group(pgid: int, deadline: float) -> None:
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
