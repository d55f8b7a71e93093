"""The environments file (SPEC §3): defaults, ``extends``, services, vars and ``start`` processes.

Loading validates the whole file's shape; resolving one environment (merge, ``${VAR}``
interpolation, typed parsing) happens only for the environments a run selects, so a variable
that only ``production`` needs is not required to test ``local``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError
from .interpolation import interpolate_tree
from .secrets import CREDENTIAL_FIELDS, Redactor, is_secret_header
from .units import parse_duration
from .validation import suggest, validate
from .yamlfile import YamlList, YamlMap, load_file

DEFAULT_TIMEOUT = 10.0
DEFAULT_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Service:
    """An HTTP service of an environment: base URL, default headers, timeout, TLS verification."""

    name: str
    url: str
    headers: Mapping[str, str]
    timeout: float
    verify_tls: bool | str


@dataclass(frozen=True)
class StartProcess:
    """A process started before the first check and stopped at session end."""

    name: str
    command: str | tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    ready: str | None
    timeout: float
    file: str
    line: int


@dataclass(frozen=True)
class Environment:
    """One resolved environment."""

    name: str
    description: str
    services: Mapping[str, Service]
    vars: Mapping[str, Any]
    protected: bool
    timeout: float
    start: tuple[StartProcess, ...]
    file: str
    line: int

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services)) or "none"
            raise ConfigError(f"unknown service '{name}' in environment '{self.name}'"
                              f"{suggest(name, self.services)}; its services: {known}",
                              file=self.file, line=self.line) from None


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    if not (isinstance(base, YamlMap) and isinstance(override, YamlMap)):
        return override
    out = YamlMap()
    out.file, out.line = override.file, override.line
    for key, value in base.items():
        out[key] = value
        out.key_lines[key] = base.line_of(key)
    for key, value in override.items():
        out[key] = deep_merge(base[key], value) if key in base else value
        out.key_lines[key] = override.line_of(key)
    return out


class EnvironmentsFile:
    """A loaded, schema-checked environments file."""

    def __init__(self, path: Path, display: str) -> None:
        self.path = path
        self.display = display
        document = load_file(path, display)
        if not isinstance(document, YamlMap):
            raise ConfigError("an environments file must be a mapping with an 'environments' key",
                              file=display, line=1)
        validate(document, "environments", display)
        self._doc = document
        self._envs: YamlMap = document["environments"]
        self._resolved: dict[str, Environment] = {}

    @property
    def names(self) -> list[str]:
        return list(self._envs)

    def check_names(self, names: list[str]) -> None:
        for name in names:
            if name not in self._envs:
                raise ConfigError(f"unknown environment '{name}'{suggest(name, self._envs)}; "
                                  f"known: {', '.join(self.names)}", file=self.display)

    def _merged(self, name: str, chain: tuple[str, ...] = ()) -> YamlMap:
        env = self._envs[name]
        if name in chain:
            cycle = " -> ".join([*chain, name])
            raise ConfigError(f"extends cycle: {cycle}", file=self.display,
                              line=env.line_of("extends"), key=f"environments.{name}.extends")
        parent_name = env.get("extends")
        if parent_name is None:
            base = self._doc.get("defaults", YamlMap())
        elif parent_name not in self._envs:
            raise ConfigError(f"extends unknown environment '{parent_name}'"
                              f"{suggest(parent_name, self._envs)}", file=self.display,
                              line=env.line_of("extends"), key=f"environments.{name}.extends")
        else:
            base = self._merged(parent_name, (*chain, name))
        merged = deep_merge(base, env)
        assert isinstance(merged, YamlMap)
        merged.pop("extends", None)
        return merged

    def resolve(self, name: str, environ: Mapping[str, str], redactor: Redactor) -> Environment:
        """The environment ``name`` merged, interpolated and parsed; secrets go to ``redactor``."""
        if name not in self._resolved:
            self.check_names([name])
            merged = self._merged(name)
            doc = interpolate_tree(merged, environ, redactor, file=self.display,
                                   line=merged.line, key=f"environments.{name}")
            self._resolved[name] = _parse_environment(name, doc, self, redactor)
        return self._resolved[name]


def _duration(node: YamlMap, key: str, default: float, file: str, where: str) -> float:
    if key not in node:
        return default
    try:
        return parse_duration(node[key])
    except ValueError as exc:
        raise ConfigError(str(exc), file=file, line=node.line_of(key),
                          key=f"{where}.{key}") from None


def _register_secrets(node: Any, redactor: Redactor) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CREDENTIAL_FIELDS:
                redactor.add(str(value))
            _register_secrets(value, redactor)
    elif isinstance(node, list):
        for item in node:
            _register_secrets(item, redactor)
    elif isinstance(node, str) and "://" in node:
        redactor.add_url(node)


def _verify(value: bool | str, base: Path) -> bool | str:
    # A string names a CA bundle, relative to the environments file like every other path.
    return value if isinstance(value, bool) else str(base / value)


def _parse_environment(name: str, doc: YamlMap, source: EnvironmentsFile,
                       redactor: Redactor) -> Environment:
    file, where = source.display, f"environments.{name}"
    _register_secrets(doc, redactor)
    timeout = _duration(doc, "timeout", DEFAULT_TIMEOUT, file, where)
    services: dict[str, Service] = {}
    for svc_name, svc in doc.get("services", YamlMap()).items():
        svc_where = f"{where}.services.{svc_name}"
        url = svc["url"]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"'{url}' is not an http(s) URL", file=file, line=svc.line_of("url"),
                              key=f"{svc_where}.url")
        headers = {k: str(v) for k, v in svc.get("headers", {}).items()}
        for header, value in headers.items():
            if is_secret_header(header):
                redactor.add(value)
        services[svc_name] = Service(
            name=svc_name, url=url.rstrip("/"), headers=headers,
            timeout=_duration(svc, "timeout", timeout, file, svc_where),
            verify_tls=_verify(svc.get("verify_tls", True), source.path.parent))
    start: list[StartProcess] = []
    for index, proc in enumerate(doc.get("start", YamlList())):
        proc_where = f"{where}.start[{index}]"
        command = proc["command"]
        cwd = Path(proc.get("cwd", "."))
        start.append(StartProcess(
            name=str(proc.get("name") or (command if isinstance(command, str) else " ".join(
                str(part) for part in command))),
            command=command if isinstance(command, str) else tuple(str(p) for p in command),
            cwd=cwd if cwd.is_absolute() else (source.path.parent / cwd),
            env={k: str(v) for k, v in proc.get("env", {}).items()},
            ready=proc.get("ready"),
            timeout=_duration(proc, "timeout", DEFAULT_START_TIMEOUT, file, proc_where),
            file=file, line=proc.line))
    return Environment(
        name=name, description=str(doc.get("description", "")), services=services,
        vars=dict(doc.get("vars", {})), protected=bool(doc.get("protected", False)),
        timeout=timeout, start=tuple(start), file=file, line=source._envs.line_of(name))

