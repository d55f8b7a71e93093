"""YAML loading that keeps, for every mapping, list and key, the file and line it came from.

Every later error (schema violation, bad duration, missing variable) points at the user's YAML, so
the loader builds plain ``dict``/``list`` subclasses that carry their marks instead of discarding
them as ``yaml.safe_load`` does.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import ConfigError


class YamlMap(dict[str, Any]):
    """A mapping from a YAML file; ``line`` is where it starts, ``key_lines`` where each key is."""

    file: str = "<string>"
    line: int = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class YamlList(list[Any]):
    """A sequence from a YAML file; ``item_lines[i]`` is where item ``i`` starts."""

    file: str = "<string>"
    line: int = 0

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


def line_of(value: Any, default: int = 0) -> int:
    """The line where ``value`` starts, when it is a mapping or list from a YAML file."""
    return value.line if isinstance(value, (YamlMap, YamlList)) else default


def locate(root: Any, path: Iterable[str | int]) -> int:
    """The line of the deepest node on ``path`` below ``root`` (a JSON-schema error path)."""
    node, line = root, line_of(root)
    for step in path:
        if isinstance(node, YamlMap) and isinstance(step, str) and step in node:
            line, node = node.line_of(step), node[step]
            continue
        if isinstance(node, YamlList) and isinstance(step, int) and step < len(node):
            line, node = node.line_of(step), node[step]
            continue
        break
    return line


if TYPE_CHECKING:
    _Base = yaml.SafeLoader
else:
    # libyaml's parser, when PyYAML has it: it keeps the marks (lines) this module needs and
    # parses a 1000-check suite several times faster than the pure-Python one.
    _Base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Bounds of alias expansion per file: a few hundred bytes of nested aliases ("billion laughs")
# expand to billions of nodes. Anchors reused as intended (request defaults, `<<:` merges)
# stay far below.
MAX_ALIASES = 20_000
MAX_ALIAS_NODES = 100_000


class _AliasLimit(Exception):
    """Alias expansion went past a bound; the containers it is in add where."""

    line: int | None = None


class _Loader(_Base):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._plain_tags: dict[str, str] = {}
        # Alias bounds: collection nodes met once (a second meeting is an alias), the size of
        # each node's expanded tree, and what the aliases met so far expand to.
        self._seen: set[yaml.Node] = set()
        self._sizes: dict[yaml.Node, int] = {}
        self._aliases = 0
        self._alias_nodes = 0
        self._in_alias = 0

    def expanded_size(self, node: yaml.Node) -> int:
        """How many nodes ``node`` stands for with every alias below it expanded."""
        size = self._sizes.get(node)
        if size is None:
            size = 1
            if type(node) is yaml.MappingNode:
                size += sum(self.expanded_size(k) + self.expanded_size(v) for k, v in node.value)
            elif type(node) is yaml.SequenceNode:
                size += sum(self.expanded_size(item) for item in node.value)
            self._sizes[node] = size
        return size

    def count_alias(self, node: yaml.Node) -> None:
        """Account for converting ``node`` once more (an alias to it), before building it."""
        if self._in_alias:  # inside an expansion already counted whole
            return
        self._aliases += 1
        self._alias_nodes += self.expanded_size(node)
        if self._aliases > MAX_ALIASES or self._alias_nodes > MAX_ALIAS_NODES:
            raise _AliasLimit(f"aliases expand to more than {MAX_ALIAS_NODES:,} values (or "
                              f"more than {MAX_ALIASES:,} aliases): an alias bomb? Write the "
                              f"repeated part out, or reuse it less")

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        """PyYAML's `<<:` merge, each merged key kept once (from the first mapping that has it,
        as YAML's merge rule says). PyYAML 6.0.1 and 6.0.2 kept every merged pair, duplicates
        too: `<<: [*a, *a, ...]` nested seven deep (534 bytes) grew tenfold per level, to 1.6 GB
        in 28 s, before any alias was counted."""
        merged: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
        index = 0
        while index < len(node.value):
            key_node, value_node = node.value[index]
            if key_node.tag == _MERGE_TAG:
                del node.value[index]
                sources = value_node.value if type(value_node) is yaml.SequenceNode \
                    else [value_node]
                for source in sources:
                    if type(source) is not yaml.MappingNode:
                        raise yaml.constructor.ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            f"expected a mapping or list of mappings for merging, but found "
                            f"{source.id}", source.start_mark)
                    self.flatten_mapping(source)
                    for pair in source.value:
                        key = pair[0].value if type(pair[0]) is yaml.ScalarNode else id(pair[0])
                        merged.setdefault(key, pair)
            elif key_node.tag == "tag:yaml.org,2002:value":
                key_node.tag = _STR_TAG
                index += 1
            else:
                index += 1
        if merged:
            node.value = list(merged.values()) + node.value

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        # Called for every node while composing; for a plain scalar PyYAML tries its implicit
        # resolvers' regular expressions each time. The same words (health, 200, ok) recur in
        # every check of a suite: each is resolved once per file.
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = self._plain_tags[value] = self._resolve(kind, value, implicit)
            return tag
        return self._resolve(kind, value, implicit)

    def _resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        return tag


_STR_TAG = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Keys flatten_mapping rewrites (`<<: *anchor` merges, `=` value keys).
_SPECIAL_KEY_TAGS = frozenset({_MERGE_TAG, "tag:yaml.org,2002:value"})


def _convert(loader: _Loader, node: yaml.Node, file: str) -> Any:
    # Runs once per node of every suite: exact type tests (the composer makes exactly these
    # classes) and attribute reads kept out of the loops.
    if type(node) is yaml.ScalarNode:
        if node.tag == _STR_TAG:
            # Most scalars are strings: skip the constructor's dispatch.
            return node.value
        if node.tag == _TIMESTAMP_TAG:
            try:
                return loader.construct_object(node, deep=True)
            except ValueError:
                # Looks like a date but is none (2026-13-01, 25:00): kept as written, so the
                # key that wants a date says so at its line instead of the load crashing.
                return node.value
        return loader.construct_object(node, deep=True)
    if type(node) is yaml.MappingNode or type(node) is yaml.SequenceNode:
        if node in loader._seen:
            return _aliased(loader, node, file)
        loader._seen.add(node)
        if type(node) is yaml.MappingNode:
            return _mapping(loader, node, file)
        seq = YamlList()
        seq.file, seq.line = file, node.start_mark.line + 1
        item_lines = seq.item_lines
        try:
            for item in node.value:
                seq.append(_convert(loader, item, file))
                item_lines.append(item.start_mark.line + 1)
        except _AliasLimit as exc:
            exc.line = exc.line or seq.line  # the alias is an item of this list
            raise
        return seq
    return loader.construct_object(node, deep=True)


def _aliased(loader: _Loader, node: yaml.Node, file: str) -> Any:
    """``node`` once more, reached through an alias: counted against the bounds first."""
    loader.count_alias(node)
    loader._seen.discard(node)
    loader._in_alias += 1
    try:
        return _convert(loader, node, file)
    finally:
        loader._in_alias -= 1


def _mapping(loader: _Loader, node: yaml.MappingNode, file: str, merged: int = 0) -> YamlMap:
    """``node`` as a :class:`YamlMap`; its first ``merged`` pairs came from `<<:` merges."""
    mapping = YamlMap()
    mapping.file, mapping.line = file, node.start_mark.line + 1
    key_lines = mapping.key_lines
    pairs, inherited = node.value, set()  # inherited: merged keys its own may override once
    if merged:
        for key_node, value_node in pairs[:merged]:  # later ones win, as PyYAML orders them
            key = str(key_node.value)
            mapping[key] = _convert(loader, value_node, file)
            key_lines[key] = key_node.start_mark.line + 1
        pairs, inherited = pairs[merged:], set(mapping)
    for key_node, value_node in pairs:
        if key_node.tag in _SPECIAL_KEY_TAGS:
            # PyYAML puts the merged pairs first and leaves no merge key behind: start over.
            own = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
            loader.flatten_mapping(node)
            return _mapping(loader, node, file, merged=len(node.value) - own)
        # Keys keep their literal text: `on:` or `200:` stay strings, as users wrote them.
        if type(key_node) is not yaml.ScalarNode:
            raise ConfigError("mapping keys must be plain strings", file=file,
                              line=key_node.start_mark.line + 1)
        key = str(key_node.value)
        if key in mapping:
            if key not in inherited:
                raise ConfigError("duplicate key", file=file,
                                  line=key_node.start_mark.line + 1, key=key)
            inherited.discard(key)
        try:
            mapping[key] = _convert(loader, value_node, file)
        except _AliasLimit as exc:  # the alias is (below) this key's value
            raise ConfigError(str(exc), file=file, line=exc.line or key_node.start_mark.line + 1,
                              key=key) from None
        key_lines[key] = key_node.start_mark.line + 1
    return mapping


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a tree of new objects.

    Loading a suite allocates tens of thousands of containers and frees almost none, and every
    few hundred allocations the collector would walk them, and now and then the whole heap, to
    find nothing. Collecting 1000 checks spent 80 ms less in the collector with it paused.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_text(text: str, file: str) -> Any:
    """Parse one YAML document, raising :class:`ConfigError` with the file and line on error."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _convert(loader, node, file)
    except _AliasLimit as exc:
        raise ConfigError(str(exc), file=file, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        line, problem = _where_broken(exc)
        raise ConfigError(f"malformed YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


def _where_broken(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """The line to fix and what is wrong. An unclosed ``{``, ``[`` or quote is found only where
    the parser gives up (often the end of the file); the line where it opens, PyYAML's context
    mark, is the one to fix."""
    problem = exc.problem or exc.context or "invalid YAML"
    context, opened, found = exc.context or "", exc.context_mark, exc.problem_mark
    if opened is not None and context.startswith(("while parsing a flow", "while scanning")):
        at = f" (at line {found.line + 1})" if found is not None else ""
        return opened.line + 1, f"{context}: {problem}{at}"
    mark = found or opened
    return (mark.line + 1 if mark else None), problem


def load_file(path: Path, display: str | None = None) -> Any:
    """Load ``path``; errors and marks use ``display`` (a path relative to the rootdir)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=name) from None
    return load_text(text, name)
