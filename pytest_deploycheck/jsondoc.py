"""Reading a JSON answer that a verdict rests on: one reading only, and shallow enough to walk.

``json.loads`` keeps the last of two equal keys, so ``{"status": "unhealthy", "status":
"healthy"}`` would read as healthy; and it, the JMESPath interpreter, jsonschema and the
redactor all recurse once per level, so a few kilobytes of ``[[[[…]]]]`` end in a
``RecursionError`` far from the check. It also reads ``NaN``, ``Infinity`` and ``-Infinity``,
which JSON has no number for, and NaN compares false with everything, so ``{ne: 5}`` or a
threshold's ``not value > limit`` would pass on it. :func:`loads` refuses all three with a
one-line reason.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any API answer we know of, and shallow enough that every walker of the document
# (JMESPath, jsonschema with a recursive schema, json.dumps, the redactor) stays well inside
# Python's recursion limit from inside a pytest run.
MAX_DEPTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_INNERMOST = re.compile(rb"\[\]|\{\}")


class JsonBodyError(ValueError):
    """The body cannot be judged as JSON; the message is one line."""


class NotJsonError(JsonBodyError):
    """The body is not JSON at all."""


class _NotANumber(ValueError):
    """Raised from inside the parser for ``NaN``, ``Infinity`` or ``-Infinity``."""


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


def _finite_float(text: str) -> float:
    # `1e999` is a JSON number too large for a float: Python reads it as infinity.
    value = float(text)
    if not math.isfinite(value):
        raise _NotANumber(f"{text[:40]} (too large for a number)")
    return value


class _Duplicated(dict[str, Any]):
    """An object in which ``key`` came more than once (marked so that its path can be found)."""

    key: str = ""


def loads(body: bytes | str) -> Any:
    """The document in ``body``; raises :class:`JsonBodyError` when it is not JSON, repeats a
    key in one object, has ``NaN`` or ``Infinity``, or is nested deeper than
    :data:`MAX_DEPTH` levels."""
    duplicated = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal duplicated
        document = dict(items)
        if len(document) == len(items):
            return document
        duplicated = True
        marked, seen = _Duplicated(document), set()
        for key, _ in items:
            if key in seen:
                marked.key = key
                break
            seen.add(key)
        return marked

    try:
        document = json.loads(body, object_pairs_hook=pairs, parse_constant=_refuse_constant,
                              parse_float=_finite_float)
    except _NotANumber as exc:
        raise JsonBodyError(f"response JSON has {exc}, which is not a JSON number") from None
    except RecursionError:
        raise JsonBodyError(f"response JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise NotJsonError(f"body is not JSON ({exc.__class__.__name__}: {exc})") from None
    raw = body.encode() if isinstance(body, str) else body
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _too_deep(raw):
        raise JsonBodyError(f"response JSON nested deeper than {MAX_DEPTH} levels")
    if duplicated:
        _find_duplicate(document)
    return document


def readings(body: bytes | str) -> list[Any]:
    """The documents a lenient parser could make of ``body``: the last and the first of each
    repeated key; none when it is not JSON or too deep to read.

    For masking, not for judging: a value saved as a secret from a body that :func:`loads`
    refuses is still in the body the failure shows.
    """
    try:
        return [json.loads(body), json.loads(body, object_pairs_hook=_first_wins)]
    except (ValueError, RecursionError):
        return []


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(reversed(pairs))


def _too_deep(body: bytes) -> bool:
    """Whether the (valid) JSON text ``body`` nests more than :data:`MAX_DEPTH` levels.

    On the text rather than the document: the brackets outside strings, with the innermost
    pairs taken away once per level, is a few C-speed passes where a walk of the parsed
    document was five times the cost of parsing it.
    """
    # Escapes go first (left to right, so `\\\"` is a backslash then a quote); then every
    # other piece between quotes is outside the strings.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKET)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


def _find_duplicate(document: Any) -> None:
    """Raise for the first object, in document order, that had a key twice (a walk without
    recursion, over a document known to be shallow enough)."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _Duplicated):
            raise JsonBodyError(f"response JSON has the key {json.dumps(value.key)} twice at "
                                f"{json_path(path)}")
        if isinstance(value, (dict, list)):
            children = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((item, (*path, key)) for key, item in reversed(list(children)))


def json_path(path: tuple[str | int, ...]) -> str:
    """``items[1].name``, as the JMESPath a user would write to reach it; ``(root)`` for ()."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if _IDENTIFIER.fullmatch(part) else json.dumps(part)
            text += f".{name}" if text else name
    return text or "(root)"
