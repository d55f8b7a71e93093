"""Readers of one value at file:line:key, and :class:`At`, where a parsed part of a file sits.

Every parser (suites, check types, checklist entries, the environments file, metric sources,
actions) reads durations, thresholds and regexes through these, so that a bad value is the same
error everywhere: its file, line and key path (``checks[2].expect.latency``), what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from ..errors import ConfigError
from ..units import Threshold, parse_duration, parse_threshold
from .yamlfile import YamlList, YamlMap


def error_at(message: str, node: YamlMap | YamlList, key: str | int | None,
             where: str) -> ConfigError:
    """A :class:`ConfigError` at ``node[key]`` (or at ``node`` when ``key`` is None), where
    ``where`` is the key path of ``node`` in its file (``checks[2]``)."""
    if key is None:
        return ConfigError(message, file=node.file, line=node.line, key=where or None)
    line = node.line_of(key)  # type: ignore[arg-type]
    path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key
    return ConfigError(message, file=node.file, line=line, key=path)


@dataclass(frozen=True)
class At:
    """Where a parsed part of a file sits: its key path (``checks[2]``,
    ``environments.prod.metrics.default``) and the folder its relative paths start from.

    The one shape every parser (check types, checklist entries, metric sources, actions) is
    handed; the file is the node's own (``node.file``). Parsers that need more (a check's
    suite, a source's default timeout) get a subclass.
    """

    where: str
    base_dir: Path

    def error(self, message: str, node: YamlMap | YamlList, key: str | int | None = None
              ) -> ConfigError:
        """A :class:`ConfigError` at ``node[key]``, ``node`` being at :attr:`where`."""
        return error_at(message, node, key, self.where)

    def inner(self, key: str | int) -> str:
        """The key path of ``key`` below :attr:`where`."""
        return f"{self.where}[{key}]" if isinstance(key, int) else \
            f"{self.where}.{key}" if self.where else key


@overload
def duration_at(node: YamlMap, key: str, where: str, default: float, *,
                positive: bool = False) -> float: ...


@overload
def duration_at(node: YamlMap, key: str, where: str, default: None = None, *,
                positive: bool = False) -> float | None: ...


def duration_at(node: YamlMap, key: str, where: str, default: float | None = None, *,
                positive: bool = False) -> float | None:
    """``node[key]`` as seconds (``default`` when absent); a bad value, or with ``positive``
    one that is not above 0, is an error at its file, line and key (see :func:`error_at`)."""
    if key not in node:
        return default
    try:
        value = parse_duration(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None
    if positive and value <= 0:
        raise error_at(f"{key} must be longer than 0", node, key, where)
    return value


def threshold_at(node: YamlMap, key: str, where: str, *, duration: bool = False) -> Threshold:
    """``node[key]`` as a threshold (``< 500ms``, ``>= 0.99``); with ``duration`` it must
    limit a time (a ``%`` limit is an error)."""
    try:
        threshold = parse_threshold(node[key])
    except ValueError as exc:
        raise error_at(str(exc), node, key, where) from None
    if duration and threshold.text.rstrip()[-1:] == "%":
        raise error_at(f"{threshold.text!r}: a time needs a time unit, not %", node, key, where)
    return threshold


def matches_any_text(pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern``, searched, matches every text: one that matches the empty text
    unanchored (``""``, ``.*``, ``(ok)?``, ``^``) asks nothing, as ``contains: ""`` would.
    Tried on the empty text and on one no answer has; ``\\A\\Z`` and ``^ok$`` are kept."""
    return pattern.search("") is not None and pattern.search("\x00\x01") is not None


def any_text_error(pattern: str) -> str:
    return (f"regex {pattern!r} matches any text (it matches an empty one anywhere), so it "
            f"asks nothing; say what must be there")


def regex_at(node: YamlMap, key: str, where: str, *, pattern: str | None = None,
             flags: int = 0, hint: str = "") -> str:
    """The regex at ``node[key]`` (or ``pattern``, found under that key), checked now unless
    it has templates (compiled once rendered): it compiles, and it does not match any text
    (a pattern that does asks nothing); ``hint`` follows the latter error."""
    text = str(node[key]) if pattern is None else pattern
    if "{{" not in text:
        try:
            compiled = re.compile(text, flags)
        except re.error as exc:
            raise error_at(f"bad regex {text!r}: {exc}", node, key, where) from None
        if matches_any_text(compiled):
            raise error_at(any_text_error(text) + hint, node, key, where)
    return text
