"""``python: module:function`` actions: a function called as ``function(env, failures)``.

``env`` is the environment's name and ``failures`` a list of the failed checks as dictionaries.
The folder of the environments file is importable, as the rootdir is for ``conftest.py``.
The function runs in a thread so that ``timeout`` bounds the wait; a function still running at
its timeout is reported as failed and left to finish in the background (a thread cannot be
killed). Returning normally is success; raising is failure, with the exception as the message.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..inputs.located import At, duration_at
from ..inputs.yamlfile import YamlMap
from ..units import format_duration
from .base import ROLE_PROPERTIES, ActionContext, ActionResult, last_chars

DEFAULT_TIMEOUT = 300.0
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["python"],
    "properties": {
        "name": {"type": "string"},
        "python": {"type": "string"},
        "timeout": {"type": ["string", "number"]},
        **ROLE_PROPERTIES,
    },
}


@dataclass(frozen=True)
class PythonAction:
    name: str
    target: str
    timeout: float
    base_dir: Path
    type: str = "python"

    def describe(self) -> str:
        return f"python {self.target}(env, failures) (timeout {format_duration(self.timeout)})"

    def _function(self) -> Callable[..., Any]:
        module_name, _, attribute = self.target.partition(":")
        # Like conftest.py, a module next to the environments file is importable.
        if str(self.base_dir) not in sys.path:
            sys.path.insert(0, str(self.base_dir))
        module = importlib.import_module(module_name)
        function = getattr(module, attribute)
        if not callable(function):
            raise TypeError(f"{self.target} is not callable")
        return function  # type: ignore[no-any-return]

    def run(self, context: ActionContext) -> ActionResult:
        started = time.monotonic()
        try:
            function = self._function()
        except (Exception, SystemExit) as exc:  # an import runs arbitrary code: the user's
            return ActionResult(self.name, self.type, "failed",
                                f"cannot import {self.target}: {exc.__class__.__name__}: {exc}",
                                duration=time.monotonic() - started)
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["value"] = function(context.env, [dict(f) for f in context.failures])
            except BaseException as exc:  # reported, not raised: the gate must go on
                outcome["error"] = exc
                outcome["trace"] = traceback.format_exc()

        worker = threading.Thread(target=call, name=f"deploycheck {self.target}", daemon=True)
        # What the function prints goes to its result, masked, as a command's output does:
        # printed straight to the terminal, a secret it read would be shown as it is.
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            worker.start()
            worker.join(self.timeout)
        duration = time.monotonic() - started
        said = context.redactor.redact(printed.getvalue())
        if worker.is_alive():
            return ActionResult(self.name, self.type, "failed",
                                f"still running after {format_duration(self.timeout)} "
                                f"(timeout); left running in the background", duration=duration,
                                output=last_chars(said))
        error = outcome.get("error")
        if error is not None:
            return ActionResult(self.name, self.type, "failed",
                                context.redactor.redact(f"{error.__class__.__name__}: {error}"),
                                duration=duration,
                                output=last_chars(said + context.redactor.redact(
                                    outcome["trace"])))
        value = outcome.get("value")
        returned = context.redactor.redact(repr(value)) if value is not None else ""
        return ActionResult(self.name, self.type, "succeeded", duration=duration,
                            output=last_chars(said + returned))


def parse(node: YamlMap, context: At) -> PythonAction:
    target = str(node["python"])
    if not _TARGET.match(target):
        raise ConfigError(f"{target!r} is not 'module:function' (e.g. mypkg.deploy:rollback)",
                          file=node.file, line=node.line_of("python"),
                          key=f"{context.where}.python")
    return PythonAction(
        name=str(node.get("name") or target), target=target, base_dir=context.base_dir,
        timeout=duration_at(node, "timeout", context.where, DEFAULT_TIMEOUT))
