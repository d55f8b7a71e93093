"""What the xdist controller and its workers tell each other beyond xdist's own events: live
progress of long checks (worker to controller) and that the run is stopping (controller to
workers). Without xdist, progress goes straight to the terminal.

xdist forwards only the events it knows, and a worker has no terminal. The controller makes a
folder and names it in each worker's ``workerinput``: each worker appends its progress lines
to a file of its own there, which a controller thread follows and shows as the lines come
(the controller's main thread sits in xdist's loop, which runs no hook while a worker is busy
with one long observation). When the run stops (``-x``, ``--maxfail``, ``--rollback-fast``)
or is interrupted (Ctrl-C, SIGTERM), the controller writes a ``stop`` file there; each
worker's thread sees it and wakes the checks sleeping between retries or measurements, which
give up at once, inconclusive.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..deployrun import DeployRun
from ..runtime.engine import Engine
from ..secrets import Redactor
from ..units import one_line
from . import xdist

# The key of ``workerinput`` naming the folder.
FOLDER_KEY = "deploycheck_channel"
STOP_FILE = "stop"
POLL = 0.25  # seconds between looks at the folder

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
            terminal.write_line(f"    {one_line(line)}")

    return write


class ControllerChannel:
    """On the controller: gives each xdist worker the folder, shows the progress lines the
    workers write there (when ``show`` is given), and tells them when the run stops."""

    def __init__(self, config: pytest.Config, show: Callable[[str], None] | None,
                 redactor: Redactor) -> None:
        self.config, self.show, self.redactor = config, show, redactor
        self.folder: Path | None = None
        self._offsets: dict[Path, int] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one reader at a time: the thread, or a hook

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="deploycheck-channel-"))
            # Removed at unconfigure: also when a session-finish hook before this one fails.
            self.config.add_cleanup(functools.partial(shutil.rmtree, self.folder,
                                                      ignore_errors=True))
            self._thread = threading.Thread(target=self._follow, daemon=True,
                                            name="deploycheck-channel")
            self._thread.start()
        node.workerinput[FOLDER_KEY] = str(self.folder)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self) -> None:
        """An item's lines before its outcome: its worker wrote them before reporting it."""
        self.drain()

    @pytest.hookimpl
    def pytest_keyboard_interrupt(self) -> None:
        """Ctrl-C, or SIGTERM (a cancelled CI job) sent to this process alone: the workers
        would watch on until xdist ends them."""
        self._tell_stop()

    def _follow(self) -> None:
        while not self._done.wait(POLL):
            self.drain()
            if xdist.stopping(self.config):
                self._tell_stop()

    def _tell_stop(self) -> None:
        if self.folder is not None:
            with contextlib.suppress(OSError):
                (self.folder / STOP_FILE).touch()

    def drain(self) -> None:
        """Show the lines written since the last look."""
        if self.folder is None or self.show is None:
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
        """Stop following, and show what is left."""
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.drain()


class WorkerChannel:
    """On an xdist worker of a controller with a channel: writes this worker's progress lines,
    and cancels the engine's waits once the controller says the run stops."""

    def __init__(self, folder: Path, workerid: str, redactor: Redactor, engine: Engine) -> None:
        self.folder, self.redactor, self.engine = folder, redactor, engine
        self.path = folder / f"{workerid}.log"
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True,
                                        name="deploycheck-channel")
        self._thread.start()

    @classmethod
    def of(cls, config: pytest.Config, redactor: Redactor,
           engine: Engine) -> WorkerChannel | None:
        """The channel of this worker (None outside xdist, or with a controller without one)."""
        workerinput = getattr(config, "workerinput", {})
        folder = workerinput.get(FOLDER_KEY)
        if not folder:
            return None
        return cls(Path(folder), str(workerinput["workerid"]), redactor, engine)

    def write(self, line: str) -> None:
        """Append a progress line. Masked here: only this worker may know the secrets its
        checks saved."""
        text = one_line(self.redactor.redact(line))
        # Progress is never worth failing a check: a line that cannot be written is lost.
        with self._lock, contextlib.suppress(OSError), \
                self.path.open("a", encoding="utf-8") as out:
            out.write(text + "\n")

    def _watch(self) -> None:
        while not self._done.wait(POLL):
            if (self.folder / STOP_FILE).exists():
                self.engine.cancel()
                return

    def close(self) -> None:
        self._done.set()


def connect(config: pytest.Config, run: DeployRun, worker: bool) -> None:
    """Where the run's progress lines go, and, under xdist, the channel of this process.
    Progress also under -q (a quiet run still watches for minutes); -qq silences it."""
    progress = config.get_verbosity() >= -1
    if not worker:
        if progress:
            run.context.progress = run.engine.relay(terminal_writer(config))
        config.pluginmanager.register(ControllerChannel(
            config, terminal_writer(config, captured=False) if progress else None,
            run.redactor), "deploycheck-channel")
        return
    channel = WorkerChannel.of(config, run.redactor, run.engine)
    if channel is not None:
        config.add_cleanup(channel.close)
        if progress:
            run.context.progress = channel.write
