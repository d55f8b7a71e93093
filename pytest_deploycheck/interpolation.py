"""``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` in environment files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .secrets import Redactor
from .yamlfile import YamlList, YamlMap

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def interpolate_string(text: str, environ: Mapping[str, str], redactor: Redactor, *,
                       file: str, line: int, key: str) -> str:
    """Substitute variable references in ``text``; ``$$`` stands for a literal ``$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, form, arg = match.group(1), match.group(2), match.group(3)
        value = environ.get(name)
        if form == ":-" and not value:
            value = arg
        elif value is None or (form == ":?" and not value):
            hint = f": {arg}" if form == ":?" and arg else ""
            raise ConfigError(f"environment variable {name} is not set{hint}", file=file,
                              line=line, key=key)
        redactor.add_variable(name, value)
        return value

    return _REFERENCE.sub(substitute, text)


def interpolate_tree(node: Any, environ: Mapping[str, str], redactor: Redactor, *, file: str,
                     line: int, key: str) -> Any:
    """A copy of ``node`` with every string interpolated; YAML marks are kept."""
    if isinstance(node, YamlMap):
        out = YamlMap()
        out.file, out.line, out.key_lines = node.file, node.line, dict(node.key_lines)
        for k, v in node.items():
            out[k] = interpolate_tree(v, environ, redactor, file=file, line=node.line_of(k),
                                      key=f"{key}.{k}" if key else k)
        return out
    if isinstance(node, YamlList):
        seq = YamlList()
        seq.file, seq.line, seq.item_lines = node.file, node.line, list(node.item_lines)
        for i, v in enumerate(node):
            seq.append(interpolate_tree(v, environ, redactor, file=file, line=node.line_of(i),
                                        key=f"{key}[{i}]"))
        return seq
    if isinstance(node, str):
        return interpolate_string(node, environ, redactor, file=file, line=line, key=key)
    return node
