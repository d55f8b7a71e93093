"""``start:`` processes: launched in their own process group, polled until ready, always stopped.

Each process leads a new session so that stopping it also stops whatever it spawned (a shell, a
server's workers): SIGTERM to the group, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from .commands import child_environ, output_redactor
from .environments import Environment, StartProcess
from .errors import ConfigError
from .secrets import Redactor

STOP_GRACE = 5.0
POLL_INTERVAL = 0.1


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class _Running:
    def __init__(self, spec: StartProcess, popen: subprocess.Popen[bytes], log: Path,
                 log_file: IO[bytes]) -> None:
        self.spec, self.popen, self.log, self.log_file = spec, popen, log, log_file


class ProcessManager:
    """Starts each environment's processes once and stops all of them at the end."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._running: list[_Running] = []
        self._started: set[str] = set()
        self._logdir: Path | None = None

    def start(self, env: Environment) -> None:
        """Start ``env``'s processes (once) and wait until each is ready.

        Raises :class:`ConfigError` naming the ``start`` entry when one exits or never gets ready;
        whatever was started is stopped first.
        """
        if env.name in self._started:
            return
        self._started.add(env.name)
        for spec in env.start:
            try:
                self._start_one(spec)
            except ConfigError:
                self.stop_all()
                raise

    def _start_one(self, spec: StartProcess) -> None:
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
        running = _Running(spec, popen, log, log_file)
        self._running.append(running)
        self._wait_ready(running)

    def _wait_ready(self, running: _Running) -> None:
        spec = running.spec
        redactor = output_redactor(spec.env, self.redactor)
        deadline = time.monotonic() + spec.timeout
        last = "no answer yet"
        with httpx.Client(timeout=1.0, verify=False) as client:
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
                    answer = client.get(spec.ready)
                    if answer.is_success:
                        return
                    last = f"HTTP {answer.status_code}"
                except httpx.HTTPError as exc:
                    last = f"{exc.__class__.__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"{spec.name!r} was not ready after {spec.timeout:g}s: {spec.ready} "
                        f"answered {redactor.redact(last)}; its output:\n"
                        f"{redactor.redact(_tail(running.log))}", file=spec.file,
                        line=spec.line, key="start")
                time.sleep(POLL_INTERVAL)

    def stop_all(self) -> None:
        """Stop every started process group: SIGTERM, then SIGKILL after a grace period.

        Returns once no process of the groups is alive, so that their ports are free when the
        session ends (bounded: a process stuck in the kernel does not hang the run).
        """
        running, self._running = self._running, []
        for proc in running:
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


def _signal_group(popen: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running.

    Zombies do not count: an orphaned child is reaped by init only some time after it died
    (seconds, on some machines), and by then it holds no port or file any more.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _wait_group(pgid: int, deadline: float) -> None:
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
