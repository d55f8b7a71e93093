"""Metric sources (SPEC §3): one module per ``type``, registered in :data:`SOURCE_TYPES`.

Adding a source type is adding a module with a ``SCHEMA`` for its keys and a ``parse`` that
builds a :class:`~.base.MetricSource` (a :class:`~.base.SourceType`), and one line here: the
shape of the action and checklist entry registries too.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import ConfigError
from ..inputs.validation import suggest, validate
from ..inputs.yamlfile import YamlMap
from . import alertmanager, command, datadog, http, prometheus, sql
from .base import (
    Alert,
    AlertSource,
    Fetch,
    Fetched,
    MetricQueryError,
    MetricSource,
    NoHistory,
    Sample,
    Series,
    SourceContext,
    SourceType,
)

__all__ = ["SOURCE_TYPES", "Alert", "AlertSource", "Fetch", "Fetched", "MetricQueryError",
           "MetricSource", "NoHistory", "Sample", "Series", "SourceContext", "parse_source"]


SOURCE_TYPES: Mapping[str, SourceType] = {
    "prometheus": prometheus, "datadog": datadog, "http": http, "command": command, "sql": sql,
    "alertmanager": alertmanager,
}


def parse_source(name: str, node: YamlMap, context: SourceContext) -> MetricSource:
    """The source ``name`` of an environment from its (interpolated) configuration."""
    kind = str(node.get("type"))
    if kind not in SOURCE_TYPES:
        raise ConfigError(f"unknown metric source type {kind!r}{suggest(kind, SOURCE_TYPES)}"
                          f"; known: {', '.join(SOURCE_TYPES)}", file=node.file,
                          line=node.line_of("type") if "type" in node else node.line,
                          key=f"{context.where}.type")
    module = SOURCE_TYPES[kind]
    validate(node, module.SCHEMA, node.file, context.where)
    return module.parse(name, node, context)
