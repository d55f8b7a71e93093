"""``{{ name }}`` templates in suite values, rollback and notify actions and metric commands.

Names are looked up in a scope built, in order of precedence, from step ``save``s, parametrize
values, suite ``vars``, environment ``vars`` and ``env.name``. A string that is a single template
keeps the type of the value (``{{ count }}`` renders the integer 3, not ``"3"``).

Every ``{{`` is rendered or refused at collection (:func:`sites`, :func:`check_site`): text
sent as written would pass or fail a check for the wrong reason. A value never becomes code: a
shell command gets it through a variable (:func:`render_command`).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CheckError, ConfigError
from .yamlfile import YamlList, YamlMap

# A name: dotted (``deploy.version``), with quoted keys for what is named in free text
# (``checks["error rate under 1%"].value``).
_NAME = r"""[A-Za-z_][\w.-]*(?:\[(?:"[^"{}\[\]]*"|'[^'{}\[\]]*')\](?:\.[A-Za-z_][\w-]*)*)*"""
_TEMPLATE = re.compile(r"\{\{\s*(" + _NAME + r")\s*\}\}")
_SEGMENT = re.compile(r"""\[(?:"([^"]*)"|'([^']*)')\]|([^.\[\]]+)""")
# ``{{ "{{" }}`` writes a literal ``{{`` (as in Helm), for text another tool reads as a template
# (``docker inspect -f '{{ "{{" }}.State.Status}}'``).
_LITERAL = re.compile(r"""\{\{\s*(["'])\{\{\1\s*\}\}""")
# A template or a literal, in one pass: group 1 is the name, or None for a literal.
_TOKEN = re.compile(r"""\{\{\s*(?:(""" + _NAME + r""")|(["'])\{\{\2)\s*\}\}""")
_SENTINEL = "\0"  # stands for a literal {{ while a command is lexed (a command has no NUL)


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


def segments(name: str) -> list[str]:
    """``checks["p99"].value`` -> ``["checks", "p99", "value"]``."""
    return [a or b or c for a, b, c in _SEGMENT.findall(name)]


def head_of(name: str) -> str:
    """The first segment of a template name: what a scope must define for it."""
    return segments(name)[0]


def _lookup(name: str, scope: Mapping[str, Any]) -> Any:
    if name in scope:
        return scope[name]
    head, *rest = segments(name)
    value: Any = scope.get(head, _MISSING)
    for part in rest:
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
        return _TOKEN.sub(lambda m: _as_text(_lookup(m.group(1), scope)) if m.group(1)
                          else "{{", value)
    if isinstance(value, Mapping):
        return {render(k, scope): render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value


def tokens(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, name) of each template of ``text``; name None for a literal ``{{``."""
    return [(m.start(), m.end(), m.group(1)) for m in _TOKEN.finditer(text)]


def lookup(name: str, scope: Mapping[str, Any]) -> Any:
    """The value of template ``name`` in ``scope``; raises :class:`CheckError` when undefined."""
    return _lookup(name, scope)


def template_problem(text: str) -> str | None:
    """Why ``text`` has a ``{{`` that is not a template this module renders, or None.

    Only ``{{ name }}`` (a dotted name) is a template: a Jinja-style filter or expression would
    otherwise be sent as it is written, so it is refused at collection instead.
    """
    if "{{" not in text:
        return None
    rest = _TOKEN.sub("", text)
    start = rest.find("{{")
    if start < 0:
        return None
    end = rest.find("}}", start)
    shown = rest[start:end + 2] if end >= 0 else rest[start:start + 40]
    return (f"{shown!r} is not a template: a template is {{{{ name }}}} (letters, digits, "
            f"'_', '.' and '-', and [\"key\"]); filters and expressions are not supported, and "
            f"{{{{ \"{{{{\" }}}} writes a literal {{{{")


# The environment variable that carries the value of the n-th template of a shell command.
VALUE_VARIABLE = "DEPLOYCHECK_VALUE_{}"
# How a value's variable is referenced in each quoting context of a shell command line: always
# inside double quotes, where the shell expands a variable without parsing its value again (no
# word splitting, no globbing, no command substitution), closing and reopening the author's
# single or $'...' quotes around it.
_REFERENCE = {"cmd": '"${{{}}}"', "dq": "${{{}}}", "sq": "'\"${{{}}}\"'",
              "ansi": "'\"${{{}}}\"$'", "comment": '"${{{}}}"'}  # str.format: {} is the name
_WORD_BREAK = frozenset(" \t\n;&|()<>")


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash"})
# A shell's option that makes its next argument the script: -c alone or in a cluster (-lc, -ec).
_SHELL_SCRIPT_OPTION = re.compile(r"-[a-zA-Z]*c[a-zA-Z]*\Z")


# Commands whose arguments bash evaluates as arithmetic (``let``, ``declare -i`` and kin): a
# value such as ``a[$(cmd)]`` runs ``cmd`` there, quoted or not.
_ARITHMETIC_COMMANDS = frozenset({"let", "declare", "typeset", "local", "readonly", "read",
                                  "mapfile", "readarray", "unset", "getopts"})
# Commands that take a variable name after ``-v`` (its subscript is arithmetic, so
# ``a[$(cmd)]`` runs ``cmd``) and otherwise only data: refused only with ``-v``.
_NAME_AFTER_V = frozenset({"printf", "test", "[", "wait"})


@dataclass
class _Frame:
    kind: str  # cmd, sq, dq, ansi, param, arith, test (bash's [[ ]]), comment
    closer: str = ""  # for cmd: "" (the command line), ")" ($(...)) or "`" (backticks)
    depth: int = 0  # open parentheses inside it
    word: str | None = None  # for cmd: the first word of the simple command under way
    shell: str | None = None  # for cmd: the shell a word of the simple command under way names
    evaluates: str | None = None  # for cmd: what of it parses its arguments as shell text


def _shell_contexts(command: str, spans: list[tuple[int, int]]) -> list[str]:
    """The quoting context (a key of ``_REFERENCE``) of each template span of a shell command.

    A small POSIX shell lexer, enough to know where each template stands; raises ``ValueError``
    where no reference is safe or certain (inside ``${...}`` or ``$((...))``, which the shell
    evaluates again, inside bash's ``[[ ]]`` or ``(( ))`` or the arguments of ``let`` and
    ``declare``, where bash evaluates a variable's value as arithmetic, and so runs the
    ``$(...)`` of an array subscript in it, in a heredoc, or right after a backslash or a
    ``$``). Whatever it gets
    wrong (a ``case`` pattern's ``)``), a value never appears in the text: a misjudged context
    can garble the value the command receives, never run it.
    """
    stack = [_Frame("cmd")]
    contexts: list[str] = []
    pos, prev, heredoc = 0, "", False
    for start, end in spans:
        i = pos
        while i < start:
            frame, ch = stack[-1], command[i]
            nxt = command[i + 1] if i + 1 < start else ""
            nxt2 = command[i + 2] if i + 2 < start else ""
            step = 1
            if ch == "\\" and frame.kind not in ("sq", "comment"):
                if not nxt:
                    raise ValueError("a template right after a backslash")
                step = 2
            elif frame.kind in ("cmd", "dq", "param") and ch == "$":
                if not nxt:
                    raise ValueError("a template right after '$'")
                if nxt == "(" and nxt2 == "(":
                    stack.append(_Frame("arith"))
                    step = 3
                elif nxt == "(":
                    stack.append(_Frame("cmd", ")"))
                    step = 2
                elif nxt == "{":
                    stack.append(_Frame("param"))
                    step = 2
                elif nxt == "'" and frame.kind == "cmd":
                    stack.append(_Frame("ansi"))
                    step = 2
            elif frame.kind == "sq" or frame.kind == "ansi":
                if ch == "'":
                    stack.pop()
            elif frame.kind == "comment":
                if ch == "\n":
                    stack.pop()
            elif frame.kind == "arith":
                if ch == "(":
                    frame.depth += 1
                elif ch == ")" and frame.depth:
                    frame.depth -= 1
                elif ch == ")" and nxt == ")":
                    stack.pop()
                    step = 2
            elif ch == "`":
                if frame.kind == "cmd" and frame.closer == "`":
                    stack.pop()
                else:
                    stack.append(_Frame("cmd", "`"))
            elif frame.kind == "dq":
                if ch == '"':
                    stack.pop()
            elif ch == '"':
                stack.append(_Frame("dq"))
            elif ch == "'":
                stack.append(_Frame("sq"))
            elif frame.kind == "param":
                if ch == "}":
                    stack.pop()
            elif frame.kind == "test" and ch == "]" and nxt == "]":
                stack.pop()
                step = 2
            elif ch == "#" and (not prev or prev in _WORD_BREAK):
                stack.append(_Frame("comment"))
            elif frame.kind == "cmd" and ch == "(" and nxt == "(" and \
                    (not prev or prev in _WORD_BREAK):
                stack.append(_Frame("arith"))
                step = 2
            elif frame.kind == "cmd" and ch == "[" and nxt == "[" and \
                    (not prev or prev in _WORD_BREAK):
                stack.append(_Frame("test"))
                step = 2
            elif ch == "(":
                frame.depth += 1
            elif ch == ")":
                if frame.depth:
                    frame.depth -= 1
                elif frame.closer == ")":
                    stack.pop()
            elif frame.kind == "cmd" and ch in ";&|\n":
                frame.word, frame.shell, frame.evaluates = None, None, None
            elif frame.kind == "cmd" and ch not in _WORD_BREAK and \
                    (not prev or prev in _WORD_BREAK):
                word_end = i
                while word_end < start and command[word_end] not in _WORD_BREAK:
                    word_end += 1
                word = command[i:word_end]
                if frame.word is None:
                    frame.word = word
                if word == "-v" and frame.word in _NAME_AFTER_V:
                    frame.word = f"{frame.word} -v"
                if word == "eval":
                    frame.evaluates = "eval"
                elif _is_shell(word):
                    frame.shell = word.rsplit("/", 1)[-1]
                elif frame.shell and frame.evaluates is None and _SHELL_SCRIPT_OPTION.match(word):
                    frame.evaluates = f"{frame.shell} {word}"
            elif ch == "<" and nxt == "<":
                heredoc = True
                step = 2
            prev = command[i + step - 1]
            i += step
        kind = stack[-1].kind
        kinds = {frame.kind for frame in stack}
        if heredoc:
            raise ValueError("a template in a command with a heredoc (<<)")
        if "param" in kinds:
            raise ValueError("a template inside ${...}")
        if "arith" in kinds:
            raise ValueError("a template inside $((...)) or ((...))")
        if "test" in kinds:
            raise ValueError("a template inside [[ ... ]] (use [ ... ])")
        evaluating = next((f.evaluates for f in stack if f.evaluates), None)
        if evaluating:
            # The value is expanded as data here, but into the text another shell then parses.
            raise ValueError(f"a template in the arguments of '{evaluating}' (which parses "
                             f"them as shell text)")
        arithmetic = next((f.word for f in stack if f.word in _ARITHMETIC_COMMANDS or
                           (f.word or "").endswith(" -v")), None)
        if arithmetic:
            raise ValueError(f"a template in the arguments of '{arithmetic}'")
        contexts.append(kind)
        pos, prev = end, "x"
    return contexts


def shell_references(command: str, references: list[tuple[tuple[int, int], str]]) -> str:
    """``command`` with each span replaced by a shell parameter expansion of its expression
    (``NAME`` or ``NAME:-default``), quoted so that its quoting context expands it as data.

    Raises ``ValueError`` where no reference is safe (see :func:`_shell_contexts`).
    """
    contexts = _shell_contexts(command, [span for span, _ in references])
    out, pos = [], 0
    for ((start, end), expression), context in zip(references, contexts, strict=True):
        out += [command[pos:start], _REFERENCE[context].format(expression)]
        pos = end
    out.append(command[pos:])
    return "".join(out)


def command_problem(command: str | tuple[str, ...]) -> str | None:
    """Why the templates of a configured command cannot be passed to it safely, or None."""
    parts = [command] if isinstance(command, str) else list(command)
    for part in parts:
        problem = template_problem(part)
        if problem:
            return problem
    script = command if isinstance(command, str) else shell_script(command)
    if not isinstance(command, str) and script is None:
        index = script_index(command)
        if index is not None and _TEMPLATE.search(_LITERAL.sub(_SENTINEL, command[index])):
            # The shell is run by another program (env, sudo, kubectl exec): the variables
            # holding the values may not reach it, and pasted in, its script would run them.
            return (f"a template in the script of '{' '.join(command[index - 2:index])}' run "
                    f"by '{command[0]}' cannot be passed to the shell safely; run the shell "
                    f"itself ([sh, -c, SCRIPT]) or pass the value as an argument after the "
                    f"script ($1)")
    if script is not None:
        script = _LITERAL.sub(_SENTINEL, script)
        try:
            _shell_contexts(script, [m.span() for m in _TEMPLATE.finditer(script)])
        except ValueError as exc:
            return (f"{exc} cannot be passed to the shell safely; move the template to a plain "
                    f"argument or a variable (env:)")
    return None


def shell_script(argv: tuple[str, ...]) -> str | None:
    """The script of ``[sh, -c, SCRIPT, ...]`` (``bash -lc``, ``sh -e -c`` too): a shell
    parses it, so it is rendered as a string command is, not pasted in."""
    index = script_index(argv)
    return argv[index] if index is not None and _is_shell(argv[0]) else None


def script_index(argv: tuple[str, ...]) -> int | None:
    """Where the script of the first shell run with ``-c`` stands in ``argv`` (``sh -c``,
    ``bash -lc``, ``bash -o pipefail -c``, or one run by another program: ``env sh -c``,
    ``sudo bash -ec``), or None."""
    for shell, word in enumerate(argv):
        if not _is_shell(word):
            continue
        index = shell + 1
        while index < len(argv) - 1 and argv[index][:1] in ("-", "+"):
            if _SHELL_SCRIPT_OPTION.match(argv[index]):
                return index + 1
            index += 2 if argv[index] in ("-o", "+o") else 1
    return None


def _is_shell(word: str) -> bool:
    return word.rsplit("/", 1)[-1] in _SHELLS


@dataclass(frozen=True)
class RenderedCommand:
    """A command ready to run, with its templates filled in.

    ``command`` is what runs (shell text, or argv); ``env`` the variables that carry the values
    of a shell command's templates; ``shown`` the command with its values, for people.
    """

    command: str | list[str]
    env: Mapping[str, str]
    shown: str


def _argument(value: Any) -> str:
    text = _as_text(value)
    if "\0" in text:
        raise CheckError("a template value with a NUL byte cannot be passed to a command")
    return text


def render_command(command: str | tuple[str, ...], scope: Mapping[str, Any]) -> RenderedCommand:
    """A configured command with its templates filled in so that no value can become code.

    In a list (run without a shell) each item is rendered on its own and stays one argument,
    except the script of ``[sh, -c, SCRIPT]``, which a shell parses. In a string (run by the
    shell) each template is replaced by a double-quoted reference to an environment variable
    holding its value, whatever the quoting around it: the shell expands the reference as data
    and never parses the value. Raises :class:`CheckError` for an undefined name.
    """
    if not isinstance(command, str):
        script = shell_script(command)
        if script is not None:
            index = script_index(command)
            assert index is not None
            inner = render_command(script, scope)
            assert isinstance(inner.command, str)
            rest = [_argument(render(part, scope)) for part in command[index + 1:]]
            return RenderedCommand([*command[:index], inner.command, *rest], inner.env,
                                   " ".join([*command[:index], shlex.quote(inner.shown),
                                             *rest]))
        argv = [_argument(render(part, scope)) for part in command]
        return RenderedCommand(argv, {}, " ".join(argv))
    command = _LITERAL.sub(_SENTINEL, command)
    matches = list(_TEMPLATE.finditer(command))
    if not matches:
        command = command.replace(_SENTINEL, "{{")
        return RenderedCommand(command, {}, command)
    env = {VALUE_VARIABLE.format(index): _argument(_lookup(match.group(1), scope))
           for index, match in enumerate(matches, start=1)}
    try:
        run = shell_references(command, [(match.span(), VALUE_VARIABLE.format(index))
                                         for index, match in enumerate(matches, start=1)])
    except ValueError as exc:  # refused at collection; kept for commands built otherwise
        raise CheckError(f"{exc} cannot be passed to the shell safely") from None
    shown = _TEMPLATE.sub(lambda m: shlex.quote(_as_text(_lookup(m.group(1), scope))), command)
    # Only the author's text had sentinels: values are in variables, never in the text.
    return RenderedCommand(run.replace(_SENTINEL, "{{"), env, shown.replace(_SENTINEL, "{{"))


# --- where templates may stand ---------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    """A string of a YAML file with ``{{`` or ``${`` in it: a value, or a mapping's key."""

    path: tuple[str, ...]  # keys from the document's root, list items as "[]"
    text: str
    is_key: bool
    line: int
    key: str  # the dotted key path errors name (``checks[0].request.path``)


def sites(node: Any, where: str = "") -> list[Site]:
    """Every string below ``node`` (a loaded YAML document) that has ``{{`` or ``${``."""
    found: list[Site] = []
    _collect(node, (), where, found)
    return found


def _site(steps: tuple[str | int, ...], text: str, is_key: bool, line: int, where: str) -> Site:
    # Built only for the strings that have a template: the walk itself stays cheap.
    key = where
    for step in steps:
        key = f"{key}[{step}]" if isinstance(step, int) else f"{key}.{step}" if key else step
    return Site(tuple("[]" if isinstance(step, int) else step for step in steps), text, is_key,
                line, key)


def _collect(node: Any, steps: tuple[str | int, ...], where: str, found: list[Site]) -> None:
    if isinstance(node, YamlMap):
        for key, value in node.items():
            if isinstance(key, str) and ("{{" in key or "${" in key):
                found.append(_site((*steps, key), key, True, node.line_of(key), where))
            if isinstance(value, str):
                if "{{" in value or "${" in value:
                    found.append(_site((*steps, key), value, False, node.line_of(key), where))
            elif isinstance(value, (YamlMap, YamlList)):
                _collect(value, (*steps, key), where, found)
    elif isinstance(node, YamlList):
        for index, value in enumerate(node):
            if isinstance(value, str):
                if "{{" in value or "${" in value:
                    found.append(_site((*steps, index), value, False, node.line_of(index),
                                       where))
            elif isinstance(value, (YamlMap, YamlList)):
                _collect(value, (*steps, index), where, found)


@functools.cache
def _split(patterns: tuple[str, ...]) -> tuple[tuple[tuple[str, ...], bool], ...]:
    # Each pattern's keys, and whether it ends in ** (anything below).
    out = []
    for pattern in patterns:
        parts = tuple(pattern.split("/"))
        out.append((parts[:-1], True) if parts[-1] == "**" else (parts, False))
    return tuple(out)


def matches(path: tuple[str, ...], patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` matches one of ``patterns``: ``/``-separated keys, where ``*`` is any
    one key, ``[]`` any list item and a final ``**`` anything below."""
    for parts, below in _split(patterns):
        if (len(path) > len(parts) if below else len(path) == len(parts)) and all(
                part in ("*", key) for part, key in zip(parts, path, strict=False)):
            return True
    return False


def check_site(site: Site, rendered: bool, file: str) -> None:
    """Raise :class:`ConfigError` unless the ``{{ }}`` of ``site`` are templates in a rendered
    field (``${`` is the caller's to judge)."""
    if "{{" not in site.text:
        return
    what = "key" if site.is_key else "value"
    if not rendered:
        raise ConfigError(f"{{{{ }}}} is not rendered in this {what}, it would be used as "
                          f"written: {site.text!r}", file=file, line=site.line, key=site.key)
    problem = template_problem(site.text)
    if problem:
        raise ConfigError(problem, file=file, line=site.line, key=site.key)
