"""JSON-Schema validation of YAML documents, with errors that point at file, line and key."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .errors import ConfigError
from .yamlfile import YamlMap, locate

_validators: dict[str, jsonschema.protocols.Validator] = {}
_TYPE_NAMES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


def _validator(name: str) -> jsonschema.protocols.Validator:
    # Schemas are package data, read on first use (nothing happens at import time).
    if name not in _validators:
        text = resources.files("pytest_deploycheck").joinpath("schemas", f"{name}.schema.json")
        schema = json.loads(text.read_text(encoding="utf-8"))
        cls = jsonschema.validators.validator_for(schema)
        _validators[name] = cls(schema)
    return _validators[name]


def _compiled(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    key = f"inline:{id(schema)}"
    if key not in _validators:
        _validators[key] = jsonschema.validators.validator_for(schema)(schema)
    return _validators[key]


def key_path(path: Iterable[str | int]) -> str:
    """``checks[2].expect.status`` for the schema path ``["checks", 2, "expect", "status"]``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def suggest(word: str, options: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" hint, or an empty string."""
    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def type_name(value: Any) -> str:
    for cls, name in _TYPE_NAMES.items():
        if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
            return name
    return type(value).__name__


def _describe(error: ValidationError, root: Any, file: str,
              prefix: Sequence[str | int]) -> ConfigError:
    inner: list[str | int] = list(error.absolute_path)
    line = locate(root, inner)
    path = [*prefix, *inner]
    instance = error.instance
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in instance if key not in allowed]
        if extra and allowed:
            key = extra[0]
            line = instance.line_of(key) if isinstance(instance, YamlMap) else line
            return ConfigError(f"unknown key '{key}'{suggest(key, allowed)}; allowed: "
                               f"{', '.join(sorted(allowed))}", file=file, line=line,
                               key=key_path([*path, key]))
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return ConfigError(f"missing required key '{missing}'", file=file, line=line,
                           key=key_path(path) or None)
    if error.validator == "enum":
        choices = [str(o) for o in error.validator_value]  # type: ignore[union-attr]
        options = ", ".join(choices)
        hint = suggest(str(instance), choices)
        return ConfigError(f"{instance!r} is not one of {options}{hint}", file=file, line=line,
                           key=key_path(path) or None)
    if error.validator == "type":
        expected = error.validator_value
        names = [str(n) for n in expected] if isinstance(expected, list) else [str(expected)]
        return ConfigError(f"expected {' or '.join(names)}, got {type_name(instance)} "
                           f"{json.dumps(instance, default=str)[:80]}", file=file, line=line,
                           key=key_path(path) or None)
    return ConfigError(error.message, file=file, line=line, key=key_path(path) or None)


def validate(document: Any, schema: str | Mapping[str, Any], file: str,
             prefix: Sequence[str | int] = ()) -> None:
    """Raise :class:`ConfigError` for the most relevant schema violation in ``document``.

    ``schema`` names a packaged schema, or is a schema of its own (the fragment a module uses to
    check its part of a file); ``prefix`` is where ``document`` sits in its file, for messages.
    """
    validator = _validator(schema) if isinstance(schema, str) else _compiled(schema)
    errors: Sequence[ValidationError] = list(validator.iter_errors(document))
    if errors:
        error = best_match(errors)
        raise _describe(error, document, file, prefix) from None
