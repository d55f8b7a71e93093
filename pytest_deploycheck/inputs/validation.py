"""JSON-Schema validation of YAML documents, with errors that point at file, line and key.

Two validators per schema: fastjsonschema's compiled one answers whether a document is valid
(collecting 1000 checks spent 0.45 s in jsonschema, ~20 ms in compiled code), and only for an
invalid document does jsonschema find the most relevant error to explain. The schemas use only
keywords that draft 7, which fastjsonschema implements, reads as draft 2020-12 does
(``tests/test_bad_input.py`` holds them to that). The packaged schemas' code is generated ahead
(``compiled_schemas/``, by ``scripts/compile_schemas.py``): compiling it took every run 32 ms.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

from ..errors import ConfigError
from .yamlfile import YamlMap, locate

if TYPE_CHECKING:
    # jsonschema is imported when a document is invalid: a valid run never needs it (0.1 s).
    import jsonschema
    from jsonschema.exceptions import ValidationError

# What both drafts read alike: the keywords the schemas may use. Not ``const`` (a one-value
# ``enum`` says the same): fastjsonschema 2.22 fails to compile it without detailed exceptions.
SHARED_KEYWORDS = frozenset({
    "$defs", "$ref", "$schema", "$id", "title", "description", "type", "enum", "properties",
    "additionalProperties", "required", "propertyNames", "minProperties", "maxProperties",
    "items", "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf", "oneOf", "allOf",
    "not"})
_TYPE_NAMES = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "integer",
               float: "number", type(None): "null"}


PACKAGED_SCHEMAS = ("suite", "environments")


def schema_text(name: str) -> str:
    path = resources.files("pytest_deploycheck.inputs").joinpath("schemas", f"{name}.schema.json")
    return path.read_text(encoding="utf-8")


def packaged_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text(name))
    return schema


def schema_digest(text: str) -> str:
    """What a generated validator records of the schema text it was generated from."""
    return hashlib.sha256(text.encode()).hexdigest()


def fastjsonschema_options(document: Mapping[str, Any]) -> dict[str, Any]:
    """How a schema is compiled, at run time and by ``scripts/compile_schemas.py`` alike."""
    return {"definition": {**document, "$schema": "http://json-schema.org/draft-07/schema#"},
            "use_default": False, "use_formats": False,
            # Its exceptions are never shown (jsonschema explains): without the schema copied
            # into every raise, the suite schema's code is a third the size and compiles in
            # 29 ms instead of 92 ms.
            "detailed_exceptions": False}


def _generated(name: str, text: str) -> Callable[[Any], Any] | None:
    """The validator ``scripts/compile_schemas.py`` generated for packaged schema ``name``,
    if it was generated from this very text (an edited schema is compiled at run time)."""
    try:
        module = importlib.import_module(f"{__package__}.compiled_schemas.{name}")
    except ImportError:  # not generated, or a fastjsonschema without the names it imports
        return None
    if getattr(module, "SCHEMA_SHA256", None) != schema_digest(text):
        return None
    check: Callable[[Any], Any] = module.validate
    return check


class _Schema:
    """One schema's two validators: fastjsonschema's compiled check, and jsonschema's, which
    explains an invalid document (built the first time one is)."""

    def __init__(self, document: dict[str, Any], check: Callable[[Any], Any] | None = None
                 ) -> None:
        self.document = document
        self.check = check or fastjsonschema.compile(**fastjsonschema_options(document))
        self._explainer: jsonschema.protocols.Validator | None = None

    def explainer(self) -> jsonschema.protocols.Validator:
        if self._explainer is None:
            import jsonschema

            self._explainer = jsonschema.validators.validator_for(self.document)(self.document)
        return self._explainer


_schemas: dict[str, _Schema] = {}


def _schema(schema: str | Mapping[str, Any]) -> _Schema:
    # Schemas are package data, read on first use (nothing happens at import time); a module's
    # fragment is the same object on every call.
    key = schema if isinstance(schema, str) else f"inline:{id(schema)}"
    if key not in _schemas:
        if isinstance(schema, str):
            text = schema_text(schema)
            _schemas[key] = _Schema(json.loads(text), _generated(schema, text))
        else:
            _schemas[key] = _Schema(dict(schema))
    return _schemas[key]


def key_path(path: Iterable[str | int]) -> str:
    """``checks[2].expect.status`` for the schema path ``["checks", 2, "expect", "status"]``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def suggest(word: str, options: Iterable[str]) -> str:
    """A " (did you mean 'x'?)" hint, or an empty string."""
    ordered = sorted(options)
    close = difflib.get_close_matches(word, ordered, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        # A short form ('prod' for 'production') is too far off for difflib's ratio.
        close = [option for option in ordered if option.startswith(word)]
    return f" (did you mean '{close[0]}'?)" if len(close) == 1 else ""


def type_name(value: Any) -> str:
    for cls, name in _TYPE_NAMES.items():
        if isinstance(value, cls) and not (cls is int and isinstance(value, bool)):
            return name
    return type(value).__name__


def _describe(error: ValidationError, root: Any, file: str,
              where: str) -> ConfigError:
    inner: list[str | int] = list(error.absolute_path)
    line = locate(root, inner)
    path = [where, *inner] if where else inner
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


def validate(document: Any, schema: str | Mapping[str, Any], file: str, where: str = "") -> None:
    """Raise :class:`ConfigError` for the most relevant schema violation in ``document``.

    ``schema`` names a packaged schema, or is a schema of its own (the fragment a module uses to
    check its part of a file); ``where`` is the key path of ``document`` in its file, for
    messages (``environments.prod.rollback[0]``).
    """
    validators = _schema(schema)
    try:
        validators.check(document)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    from jsonschema.exceptions import best_match

    errors: Sequence[ValidationError] = list(validators.explainer().iter_errors(document))
    if errors:
        error = best_match(errors)
        raise _describe(error, document, file, where) from None
