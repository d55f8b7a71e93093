"""``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}`` in environment files.

In a command run by the shell (a ``command`` string) a variable's value is not pasted into the
text, where the shell would parse it (a branch named ``$(rm -rf ~)``): the reference stays a
double-quoted reference the shell expands as data, to a variable set in the command's ``env``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..secrets import Redactor
from .templating import script_index, shell_references, shell_script
from .yamlfile import YamlList, YamlMap

_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


class LintEnviron(dict[str, str]):
    """The environment of a lint run (``--deploycheck-lint``): a variable that is not set reads
    as a placeholder, so that the files are checked without production's secrets: a URL
    (``https://prod-api-url.unset.invalid``) where a URL stands (a key or variable named like
    one), a host name for a host, else ``1`` (a number, a duration, a port, a version, a token
    all take it)."""

    @staticmethod
    def placeholder(name: str, key: str = "") -> str:
        where = f"{key.rpartition('.')[2]} {name}".lower()
        host = f"{name.lower().replace('_', '-')}.unset.invalid"
        if any(word in where for word in ("url", "ready", "endpoint", "hook")):
            return f"https://{host}"
        return host if "host" in where else "1"


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
        elif not value and isinstance(environ, LintEnviron):
            value = environ.placeholder(name, key)
        elif value is None or (form == ":?" and not value):
            hint = f": {arg}" if form == ":?" and arg else ""
            raise ConfigError(f"environment variable {name} is not set{hint}", file=file,
                              line=line, key=key)
        redactor.add_variable(name, value)
        return value

    return _REFERENCE.sub(substitute, text)


# The variable that carries an environment variable into a shell command: a name of its own,
# so that the command's `env:` cannot change what the file said.
COMMAND_VARIABLE = "DEPLOYCHECK_VAR_{}"


def interpolate_command(text: str, environ: Mapping[str, str], redactor: Redactor, *,
                        file: str, line: int, key: str) -> tuple[str, dict[str, str]]:
    """A shell command with its variable references kept as data, and the variables it needs.

    Each ``${VAR...}`` is checked (and a secret's value registered) as anywhere else, then
    rewritten as a reference to ``DEPLOYCHECK_VAR_VAR`` in the form its quoting context needs;
    ``$$`` still stands for ``$``.
    """
    interpolate_string(text, environ, redactor, file=file, line=line, key=key)  # the checks
    references = [m for m in _REFERENCE.finditer(text) if m.group(0) != "$$"]
    if not references:
        return _REFERENCE.sub("$", text), {}
    try:
        rewritten = shell_references(text, [(m.span(), _own_form(m)) for m in references])
    except ValueError as exc:
        raise ConfigError(f"{exc} cannot be passed to the shell safely; use the variable in "
                          f"the command's own quotes-free argument or its env:", file=file,
                          line=line, key=key) from None
    extra = {COMMAND_VARIABLE.format(m.group(1)): environ[m.group(1)] for m in references
             if m.group(1) in environ}
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else m.group(0), rewritten), extra


def _own_form(match: re.Match[str]) -> str:
    name, form, arg = match.group(1), match.group(2) or "", match.group(3) or ""
    return f"{COMMAND_VARIABLE.format(name)}{form}{arg}"


def interpolate_tree(node: Any, environ: Mapping[str, str], redactor: Redactor, *, file: str,
                     line: int, key: str) -> Any:
    """A copy of ``node`` with every string interpolated; YAML marks are kept."""
    if isinstance(node, YamlMap):
        out = YamlMap()
        out.file, out.line, out.key_lines = node.file, node.line, dict(node.key_lines)
        for k, v in node.items():
            out[k] = interpolate_tree(v, environ, redactor, file=file, line=node.line_of(k),
                                      key=f"{key}.{k}" if key else k)
        written = node.get("command")
        argv = tuple(str(part) for part in written) if isinstance(written, YamlList) else ()
        nested = script_index(argv)
        if isinstance(written, YamlList) and nested is not None and \
                shell_script(argv) is None and \
                any(m.group(0) != "$$" for m in _REFERENCE.finditer(argv[nested])):
            # A shell run by another program (env, sudo, kubectl exec): the variable holding
            # the value may not reach it, and pasted in, its script would run the value.
            raise ConfigError(f"${{...}} in the script of '{' '.join(argv[nested - 2:nested])}' "
                              f"run by '{argv[0]}' cannot be passed to the shell safely; run "
                              f"the shell itself ([sh, -c, SCRIPT]) or pass the value as an "
                              f"argument after the script ($1)", file=file,
                              line=written.line_of(nested), key=f"{key}.command[{nested}]"
                              if key else f"command[{nested}]")
        if isinstance(written, str) or shell_script(argv) is not None:
            # A shell parses this text: the command string, or the script of [sh, -c, SCRIPT].
            where = f"{key}.command" if key else "command"
            if isinstance(written, str):
                out["command"], extra = interpolate_command(
                    written, environ, redactor, file=file, line=node.line_of("command"),
                    key=where)
            else:
                assert isinstance(written, YamlList)
                index = script_index(argv)
                assert index is not None
                out["command"][index], extra = interpolate_command(
                    argv[index], environ, redactor, file=file, line=written.line_of(index),
                    key=f"{where}[{index}]")
            if extra:
                written = out.get("env")
                variables = YamlMap(written or {})
                if isinstance(written, YamlMap):  # keep its lines for later errors
                    variables.file, variables.line = written.file, written.line
                    variables.key_lines = dict(written.key_lines)
                else:
                    variables.file, variables.line = node.file, node.line_of("command")
                variables.update(extra)
                out["env"] = variables
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
