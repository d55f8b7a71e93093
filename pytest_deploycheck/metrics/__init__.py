"""Metric sources (SPEC §3): one module per ``type``, registered in :data:`SOURCE_TYPES`.

Adding a source type is adding a module with a ``SCHEMA`` for its keys and a ``from_yaml``
that builds a :class:`~.base.MetricSource`, and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from ..inputs.validation import suggest, validate
from ..inputs.yamlfile import YamlMap
from . import command, datadog, http, prometheus
from .base import (
    Fetch,
    Fetched,
    MetricQueryError,
    MetricSource,
    NoHistory,
    Sample,
    Series,
    SourceContext,
)

__all__ = ["SOURCE_TYPES", "Fetch", "Fetched", "MetricQueryError", "MetricSource", "NoHistory",
           "Sample", "Series", "SourceContext", "parse_source"]


SourceFactory = Callable[[str, YamlMap, SourceContext], MetricSource]
SOURCE_TYPES: Mapping[str, tuple[Mapping[str, Any], SourceFactory]] = {
    "prometheus": (prometheus.SCHEMA, prometheus.from_yaml),
    "datadog": (datadog.SCHEMA, datadog.from_yaml),
    "http": (http.SCHEMA, http.from_yaml),
    "command": (command.SCHEMA, command.from_yaml),
}


def parse_source(name: str, node: YamlMap, context: SourceContext) -> MetricSource:
    """The source ``name`` of an environment from its (interpolated) configuration."""
    kind = str(node.get("type"))
    if kind not in SOURCE_TYPES:
        raise ConfigError(f"unknown metric source type {kind!r}{suggest(kind, SOURCE_TYPES)}"
                          f"; known: {', '.join(SOURCE_TYPES)}", file=context.file,
                          line=node.line_of("type") if "type" in node else node.line,
                          key=f"{context.where}.type")
    schema, factory = SOURCE_TYPES[kind]
    validate(node, schema, context.file, prefix=[context.where])
    return factory(name, node, context)
