"""Live progress of long checks (a line per measurement of an observation) on the terminal,
also under ``-q`` and from xdist workers.

A check's output is captured while it runs, so lines are written with capturing suspended.
An xdist worker has no terminal, and xdist forwards only the events it knows: each worker
appends its lines to a file of its own, in a folder the controller made and named in the
worker's ``workerinput``; the controller follows the files from a thread and writes their
lines as they come (the controller's main thread sits in xdist's loop, which runs no hook
while a worker is busy with one long observation).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..secrets import Redactor

# The key of ``workerinput`` naming the folder of the progress files.
FOLDER_KEY = "deploycheck_progress"
POLL = 0.25  # seconds between looks at the workers' files


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _one_line(text: str) -> str:
    """One line of plain text: a check's name may hold newlines or terminal escapes."""
    return _CONTROL.sub(" ", text)


def terminal_writer(config: pytest.Config, captured: bool = True) -> Callable[[str], None]:
    """A function that shows a line on the terminal; ``captured``: also while a check's output
    is captured (from the thread running the checks: the controller's follower runs none)."""

    def write(line: str) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        capture = config.pluginmanager.get_plugin("capturemanager") if captured else None
        if terminal is None:
            return
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            terminal.ensure_newline()
            terminal.write_line(f"    {_one_line(line)}")

    return write


def file_writer(config: pytest.Config, redactor: Redactor) -> Callable[[str], None] | None:
    """On an xdist worker of a controller that follows progress: a function appending a line
    to this worker's file (None otherwise). Masked here: only this worker may know the
    secrets its checks saved."""
    folder = getattr(config, "workerinput", {}).get(FOLDER_KEY)
    if not folder:
        return None
    path = Path(folder) / f"{config.workerinput['workerid']}.log"  # type: ignore[attr-defined]
    lock = threading.Lock()

    def write(line: str) -> None:
        text = _one_line(redactor.redact(line))
        # Progress is never worth failing a check: a line that cannot be written is lost.
        with lock, contextlib.suppress(OSError), path.open("a", encoding="utf-8") as out:
            out.write(text + "\n")

    return write


class ProgressFollower:
    """On the controller: gives each xdist worker the folder for its progress file, and shows
    the lines the workers write there, until the session ends."""

    def __init__(self, show: Callable[[str], None], redactor: Redactor) -> None:
        self.show, self.redactor = show, redactor
        self.folder: Path | None = None
        self._offsets: dict[Path, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one reader at a time: the thread, or the last drain

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="deploycheck-progress-"))
            self._thread = threading.Thread(target=self._follow, daemon=True,
                                            name="deploycheck-progress")
            self._thread.start()
        node.workerinput[FOLDER_KEY] = str(self.folder)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self) -> None:
        """An item's lines before its outcome: its worker wrote them before reporting it."""
        self.drain()

    def _follow(self) -> None:
        while not self._stop.wait(POLL):
            self.drain()

    def drain(self) -> None:
        """Show the lines written since the last look."""
        if self.folder is None:
            return
        with self._lock:
            for path in sorted(self.folder.glob("*.log")):
                offset = self._offsets.get(path, 0)
                try:
                    with path.open("rb") as source:
                        source.seek(offset)
                        data = source.read()
                except OSError:
                    continue
                complete = data[:data.rfind(b"\n") + 1]  # a line being written waits
                self._offsets[path] = offset + len(complete)
                for line in complete.decode("utf-8", "replace").splitlines():
                    self.show(self.redactor.redact(line))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """Stop following, show what is left, and remove the folder."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.drain()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
