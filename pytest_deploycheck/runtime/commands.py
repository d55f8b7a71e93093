"""Running a user's command with a timeout and bounded output, never leaving a process behind.

Used wherever the plugin runs a command to completion (metric ``command`` sources, and the
checklist and rollback commands built on it). The command leads its own process group so that a
timeout kills the shell *and* whatever it started; only the last ``max_output`` bytes of each
stream are kept, the rest is read and dropped, so a command printing megabytes neither fills
memory nor blocks on a full pipe.

A command that exits while processes it started still run in its group (``cmd &``,
``nohup … &``) has not finished its work: they are killed with the group, and the result says
so (:attr:`CommandResult.left_running`), so that no caller reports such a command as a plain
success. Work meant to outlive the command must leave the group (``setsid cmd >log 2>&1 &``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..inputs.located import duration_at
from ..inputs.yamlfile import YamlMap
from ..secrets import Redactor

MAX_OUTPUT = 64 * 1024
_KILL_WAIT = 2.0
# JSON Schema of the keys every configured command has (start processes, metric sources,
# rollback and notify actions), for the schemas of the modules that run one.
COMMAND_PROPERTIES: dict[str, object] = {
    "command": {"anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": {"type": ["string", "number"]}}]},
    "cwd": {"type": "string"},
    "env": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
    "timeout": {"type": ["string", "number"]},
}


def child_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for commands the plugin runs.

    The running interpreter's ``bin`` directory goes first on ``PATH`` so that ``python`` in a
    command is the Python that runs pytest (with this plugin installed), also when pytest was
    started as ``.venv/bin/pytest`` without activating the virtualenv.
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def output_redactor(extra: Mapping[str, str] | None = None, redactor: Redactor | None = None
                    ) -> Redactor:
    """What masks a command's output and errors: ``redactor``'s secrets and the values of the
    secret-named variables (SPEC §3) in the environment the command got, inherited or its own.

    One rule for every command the plugin runs (checklist, metric source, rollback, notify,
    start): any of them may print its environment.
    """
    return (redactor or Redactor()).with_variables(child_environ(dict(extra or {})))


@dataclass(frozen=True)
class CommandResult:
    """How a command ended; ``exit_code`` is ``None`` when it was killed at its timeout."""

    command: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float
    timed_out: bool
    truncated: bool
    # Processes still running in its group when it exited, killed then (0: none).
    left_running: int = 0

    def left_running_message(self) -> str:
        """What to say of the processes it left behind, or ``""``."""
        if not self.left_running:
            return ""
        count = f"{self.left_running} process" + ("es" if self.left_running > 1 else "")
        return (f"left {count} running in the background; "
                f"{'it was' if self.left_running == 1 else 'they were'} killed with the "
                f"command's group (wait for background work before exiting, or detach it with "
                f"setsid)")


def command_of(value: str | Sequence[object]) -> str | tuple[str, ...]:
    """A command as configured: a string (run by the shell) or a list (run without one)."""
    return value if isinstance(value, str) else tuple(str(part) for part in value)


def cwd_of(node: Mapping[str, object], base_dir: Path) -> Path:
    """A configured ``cwd``, relative to the folder of the file that configures it."""
    cwd = Path(str(node.get("cwd", ".")))
    return cwd if cwd.is_absolute() else base_dir / cwd


@dataclass(frozen=True)
class CommandSpec:
    """A configured command: what runs (a string through the shell, a list without one), in
    which folder, with which extra variables, and for how long at most."""

    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    timeout: float


def parse_command(node: YamlMap, base_dir: Path, default_timeout: float, file: str,
                  where: str) -> CommandSpec:
    """The ``command``, ``cwd``, ``env`` and ``timeout`` keys of ``node`` (schema-checked)."""
    return CommandSpec(
        command=command_of(node["command"]), cwd=cwd_of(node, base_dir),
        env={str(key): str(value) for key, value in node.get("env", {}).items()},
        timeout=duration_at(node, "timeout", where, default_timeout))


def describe(command: str | Sequence[str]) -> str:
    return command if isinstance(command, str) else " ".join(str(part) for part in command)


def _drain(stream: IO[bytes], keep: bytearray, limit: int, overflow: list[bool]) -> None:
    # The end of the output is kept: that is where a failing command says why, and where a
    # metric command prints its value.
    for chunk in iter(lambda: stream.read(65536), b""):
        keep += chunk
        if len(keep) > limit:
            del keep[:len(keep) - limit]
            overflow[0] = True
    stream.close()


def group_members(pgid: int) -> int:
    """How many processes of group ``pgid`` are still running (at least 1 when some are and
    ``/proc`` cannot tell how many).

    Zombies do not count: an orphaned child is reaped by init only some time after it died
    (seconds, on some machines), and by then it holds no port or file any more.
    """
    try:
        os.killpg(pgid, 0)  # the usual answer, without reading /proc: no process at all
    except (ProcessLookupError, PermissionError):
        return 0
    proc = Path("/proc")
    if not proc.is_dir():
        return 1
    count = 0
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
            count += 1
    return count


def _kill_group(popen: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)


def run_command(command: str | Sequence[str], *, timeout: float, cwd: Path | None = None,
                env: Mapping[str, str] | None = None, max_output: int = MAX_OUTPUT
                ) -> CommandResult:
    """Run ``command`` (a string goes through the shell, a list does not) to completion.

    Raises ``OSError`` when it cannot start (missing program, bad ``cwd``).
    """
    started = time.monotonic()
    popen = subprocess.Popen(
        command if isinstance(command, str) else [str(part) for part in command],
        shell=isinstance(command, str), cwd=cwd, env=child_environ(dict(env or {})),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    buffers = (bytearray(), bytearray())
    overflow = [False]
    readers = [threading.Thread(target=_drain, args=(stream, keep, max_output, overflow),
                                daemon=True)
               for stream, keep in zip((popen.stdout, popen.stderr), buffers, strict=True)]
    for reader in readers:
        reader.start()
    timed_out, left_running = False, 0
    try:
        popen.wait(timeout=timeout)
        left_running = group_members(popen.pid)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Whatever the command left running in its group (a backgrounded child holding the
        # pipes open) goes with it, also after a normal exit.
        _kill_group(popen)
        if popen.poll() is None:
            popen.wait(timeout=_KILL_WAIT)
    for reader in readers:
        reader.join(timeout=_KILL_WAIT)
    return CommandResult(
        command=describe(command), exit_code=None if timed_out else popen.returncode,
        stdout=buffers[0].decode(errors="replace"), stderr=buffers[1].decode(errors="replace"),
        duration=time.monotonic() - started, timed_out=timed_out, truncated=overflow[0],
        left_running=left_running)
