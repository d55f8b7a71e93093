"""``{{ name }}`` templates in suite values.

Names are looked up in a scope built, in order of precedence, from step ``save``s, parametrize
values, suite ``vars``, environment ``vars`` and ``env.name``. A string that is a single template
keeps the type of the value (``{{ count }}`` renders the integer 3, not ``"3"``).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from .errors import CheckError

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")


def names_in(value: Any) -> set[str]:
    """Every name referenced by templates anywhere in ``value``."""
    found: set[str] = set()
    _add_names(value, found)
    return found


def _add_names(value: Any, found: set[str]) -> None:
    # Run for every request and expectation at collection: one set filled in place, no
    # regular expression over strings without a template, and None (an absent body or json)
    # kept from the slower Mapping check.
    if isinstance(value, str):
        if "{{" in value:
            found.update(_TEMPLATE.findall(value))
    elif isinstance(value, list):
        for item in value:
            _add_names(item, found)
    elif value is not None and isinstance(value, (dict, Mapping)):
        for key, item in value.items():
            _add_names(key, found)
            _add_names(item, found)


def _lookup(name: str, scope: Mapping[str, Any]) -> Any:
    if name in scope:
        return scope[name]
    head, _, rest = name.partition(".")
    value: Any = scope.get(head, _MISSING)
    for part in rest.split(".") if rest else ():
        value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
    if value is _MISSING:
        raise CheckError(f"template name '{name}' is not defined; defined: "
                         f"{', '.join(sorted(scope)) or 'none'}")
    return value


_MISSING = object()


def _as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` with every template replaced; containers are copied, other values returned."""
    if isinstance(value, str):
        whole = _TEMPLATE.fullmatch(value.strip())
        if whole and value.strip() == value:
            return _lookup(whole.group(1), scope)
        if "{{" not in value:
            return value
        return _TEMPLATE.sub(lambda m: _as_text(_lookup(m.group(1), scope)), value)
    if isinstance(value, Mapping):
        return {render(k, scope): render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value


def render_command(command: str | tuple[str, ...], scope: Mapping[str, Any]
                   ) -> str | list[str]:
    """A configured command with its templates filled in.

    In a string (run by the shell) every substituted value is shell-quoted, so a value with
    spaces or quotes stays one word and cannot run anything; in a list each item is rendered as
    text.
    """
    if isinstance(command, str):
        return _TEMPLATE.sub(lambda m: shlex.quote(_as_text(_lookup(m.group(1), scope))), command)
    return [_as_text(render(part, scope)) for part in command]
