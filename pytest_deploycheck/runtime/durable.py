"""Files that must survive a crash or an interrupted run: atomic rewrites and synced appends."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, document: Any) -> None:
    """Replace ``path`` with ``document``: readers see the old file or the new one, never half.

    The data is written to a temporary file in the same folder, synced, and renamed over
    ``path``.
    """
    write_text_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, as :func:`write_json_atomic` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def append_json_line(path: Path, record: Any) -> None:
    """Append one JSON line to ``path`` and sync it to disk before returning.

    The file is opened in append mode for each line, so earlier lines are never rewritten and
    concurrent writers do not interleave within a line.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
