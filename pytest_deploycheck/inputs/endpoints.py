"""An HTTP endpoint the plugin talks to: a service of an environment, or a metric source's API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigError
from ..units import format_duration
from .located import duration_at
from .yamlfile import YamlMap


@dataclass(frozen=True)
class Service:
    """An HTTP service of an environment: base URL, default headers, timeout, TLS verification."""

    name: str
    url: str
    headers: Mapping[str, str]
    timeout: float
    verify_tls: bool | str


def parse_endpoint(name: str, node: YamlMap, file: str, where: str, default_timeout: float,
                   base_dir: Path) -> Service:
    """An endpoint from its ``url``, ``headers``, ``timeout`` and ``verify_tls`` keys."""
    url = node["url"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"'{url}' is not an http(s) URL", file=file, line=node.line_of("url"),
                          key=f"{where}.url")
    verify = node.get("verify_tls", True)
    return Service(
        name=name, url=url.rstrip("/"),
        headers={k: str(v) for k, v in node.get("headers", {}).items()},
        timeout=duration_at(node, "timeout", where, default_timeout),
        # A string names a CA bundle, relative to the environments file like every other path.
        verify_tls=verify if isinstance(verify, bool) else str(base_dir / verify))


def describe_error(exc: Exception, timeout: float) -> str:
    """A one-line reason for a failed request, for the person reading the failure."""
    name = exc.__class__.__name__
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {format_duration(timeout)} ({name})"
    detail = str(exc) or name
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {detail}"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return f"connection broken: {detail} ({name})"
    return f"{detail} ({name})"
