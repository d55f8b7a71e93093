"""The environments file (SPEC §3): defaults, ``extends``, services, vars, ``start`` processes,
metric sources and deploy windows.

Loading validates the whole file's shape; resolving one environment (merge, ``${VAR}``
interpolation, typed parsing) happens only for the environments a run selects, so a variable
that only ``production`` needs is not required to test ``local``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .actions import Action, Notify, RollbackStep, parse_action, parse_notify, parse_rollback
from .actions.base import SCOPE_NAMES, scope_problem
from .errors import ConfigError
from .inputs.endpoints import Service, parse_endpoint
from .inputs.interpolation import interpolate_tree
from .inputs.located import duration_at
from .inputs.templating import check_site, head_of, matches, names_in, sites
from .inputs.validation import suggest, validate
from .inputs.windows import DeployWindows, parse_windows
from .inputs.yamlfile import YamlList, YamlMap, load_file
from .metrics import MetricSource, SourceContext, parse_source
from .runtime.commands import describe, parse_command
from .runtime.processes import StartProcess
from .secrets import CREDENTIAL_FIELDS, Redactor, is_secret_header

DEFAULT_TIMEOUT = 10.0
_T = TypeVar("_T")
DEFAULT_START_TIMEOUT = 30.0


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
    metrics: Mapping[str, MetricSource] = field(default_factory=dict)
    windows: DeployWindows | None = None  # None: deploys are allowed at any time
    rollback: tuple[RollbackStep, ...] = ()
    notify: tuple[Notify, ...] = ()
    announce: tuple[Notify, ...] = ()  # run when a phase starts
    rollout: tuple[Stage, ...] = ()  # the stages of a staged rollout, in order

    def metric_source(self, name: str) -> MetricSource:
        return self._named("metric source", self.metrics, name,
                           "none (add 'metrics:' to the environment)")

    def service(self, name: str) -> Service:
        return self._named("service", self.services, name, "none")

    def _named(self, what: str, table: Mapping[str, _T], name: str, none: str) -> _T:
        try:
            return table[name]
        except KeyError:
            known = ", ".join(sorted(table)) or none
            raise ConfigError(f"unknown {what} '{name}' in environment '{self.name}'"
                              f"{suggest(name, table)}; its {what.split()[-1]}s: {known}",
                              file=self.file, line=self.line) from None


NO_ENVIRONMENTS = ("an empty list of environments selects the check nowhere; list the "
                   "environments it runs in, or remove the check")


class UnknownEnvironment(ValueError):
    """A name in a list of environments that the environments file does not define; ``index``
    is its place in the list (None when the value is not a list of names at all)."""

    def __init__(self, message: str, index: int | None) -> None:
        super().__init__(message)
        self.index = index


def environment_names(value: Any, known: Sequence[str]) -> tuple[str, ...]:
    """``envs``/``skip_envs`` of a suite, a check or a Python check's marker, every name one
    of ``known``: a misspelt name would silently drop the check from the environment it was
    meant for (a production gate that passes without it). Raises :class:`UnknownEnvironment`.
    """
    if isinstance(value, str) or not isinstance(value, Sequence) or \
            not all(isinstance(name, str) for name in value):
        raise UnknownEnvironment(f"must be a list of environment names, not {value!r}", None)
    for index, name in enumerate(value):
        if name not in known:
            raise UnknownEnvironment(f"unknown environment {name!r}{suggest(name, known)}; "
                                     f"known: {', '.join(known)}", index)
    return tuple(value)


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
        for name in self._envs:
            # Every environment's parent, not only the selected ones': the file is one unit,
            # and `--collect-only` is its linter.
            self._merged(name)

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
            _check_templates(merged, self.display, f"environments.{name}")
            doc = interpolate_tree(merged, environ, redactor, file=self.display,
                                   line=merged.line, key=f"environments.{name}")
            self._resolved[name] = _parse_environment(name, doc, self, redactor)
        return self._resolved[name]


_ACTION_FIELDS = ("command", "command/[]", "webhook/url", "webhook/headers/*", "webhook/json",
                  "webhook/json/**", "webhook/body")
# The fields of an environment whose templates are rendered (rollback and notify actions with
# the environment's vars, a metric command with its query); every other {{ is an error.
_ACTION_LISTS = ("rollback/[]", "rollback/[]/fallback/[]", "notify/[]", "announce/[]",
                 "rollout/stages/[]/action")
RENDERED_VALUES = (*(f"{kind}/{field}" for kind in _ACTION_LISTS for field in _ACTION_FIELDS),
                   "metrics/*/command", "metrics/*/command/[]")
RENDERED_KEYS = tuple(f"{kind}/webhook/{field}" for kind in _ACTION_LISTS
                      for field in ("headers/*", "json/**"))


def _check_templates(env: YamlMap, file: str, where: str) -> None:
    """Every ``{{`` of an environment is a template in a rendered field, and an action's names
    are ones it will know (its environment's vars, env, verdict, failures, failed_count)."""
    known = set(env.get("vars", {})) | SCOPE_NAMES
    for site in sites(env, where):
        rendered = matches(site.path, RENDERED_KEYS if site.is_key else RENDERED_VALUES)
        check_site(site, rendered, file)
        if site.path[0] == "metrics":
            continue  # a metric command knows only {{ query }}, checked with its source
        for used in sorted(names_in(site.text)):
            if used not in known and head_of(used) not in known:
                raise ConfigError(f"template '{{{{ {used} }}}}' is not defined for this action; "
                                  f"defined: {', '.join(sorted(known))}", file=file,
                                  line=site.line, key=site.key)
            problem = None if used in known else scope_problem(used, env.get("vars", {}))
            if problem:
                raise ConfigError(f"template '{{{{ {used} }}}}': {problem}", file=file,
                                  line=site.line, key=site.key)


def _register_secrets(node: Any, redactor: Redactor) -> None:
    """Teach ``redactor`` every secret of an environment: credential fields, secret headers (of
    services and metric sources alike) and URL user-info."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CREDENTIAL_FIELDS:
                redactor.add(str(value))
            if key == "headers" and isinstance(value, dict):
                for header, header_value in value.items():
                    if is_secret_header(str(header)):
                        redactor.add(str(header_value))
            _register_secrets(value, redactor)
    elif isinstance(node, list):
        for item in node:
            _register_secrets(item, redactor)
    elif isinstance(node, str) and "://" in node:
        redactor.add_url(node)


def _parse_environment(name: str, doc: YamlMap, source: EnvironmentsFile,
                       redactor: Redactor) -> Environment:
    file, where = source.display, f"environments.{name}"
    _register_secrets(doc, redactor)
    timeout = duration_at(doc, "timeout", where, DEFAULT_TIMEOUT)
    services = {svc_name: parse_endpoint(svc_name, svc, file, f"{where}.services.{svc_name}",
                                         timeout, source.path.parent)
                for svc_name, svc in doc.get("services", YamlMap()).items()}
    metrics = {
        src: parse_source(src, node, SourceContext(
            f"{where}.metrics.{src}", source.path.parent, timeout,
            protected=name if doc.get("protected", False) else None))
        for src, node in doc.get("metrics", YamlMap()).items()}
    start: list[StartProcess] = []
    for index, proc in enumerate(doc.get("start", YamlList())):
        spec = parse_command(proc, source.path.parent, DEFAULT_START_TIMEOUT, file,
                             f"{where}.start[{index}]")
        start.append(StartProcess(
            name=str(proc.get("name") or describe(spec.command)), command=spec.command,
            cwd=spec.cwd, env=spec.env, ready=proc.get("ready"), timeout=spec.timeout,
            file=file, line=proc.line))
    return Environment(
        name=name, description=str(doc.get("description", "")), services=services,
        vars=dict(doc.get("vars", {})), protected=bool(doc.get("protected", False)),
        timeout=timeout, start=tuple(start), file=file, line=source._envs.line_of(name),
        metrics=metrics,
        windows=parse_windows(doc["windows"], f"{where}.windows") if "windows" in doc else None,
        rollback=parse_rollback(doc.get("rollback", YamlList()), file, f"{where}.rollback",
                                source.path.parent, services),
        notify=parse_notify(doc.get("notify", YamlList()), file, f"{where}.notify",
                            source.path.parent),
        announce=parse_notify(doc.get("announce", YamlList()), file, f"{where}.announce",
                              source.path.parent, announce=True),
        rollout=_stages(doc.get("rollout"), file, f"{where}.rollout", source.path.parent))


def _stages(node: YamlMap | None, file: str, where: str, base_dir: Path) -> tuple[Stage, ...]:
    """An environment's ``rollout: {stages: [...]}``; stage names are unique."""
    if node is None:
        return ()
    stages: list[Stage] = []
    for index, entry in enumerate(node["stages"]):
        inner = f"{where}.stages[{index}]"
        if any(stage.name == str(entry["name"]) for stage in stages):
            raise ConfigError(f"two stages are named {entry['name']!r}", file=file,
                              line=entry.line_of("name"), key=f"{inner}.name")
        markers = entry.get("markers", [])
        stages.append(Stage(
            name=str(entry["name"]),
            action=parse_action(entry["action"], file, f"{inner}.action", base_dir,
                                entry.line_of("action")),
            wait=duration_at(entry, "wait", inner, 0.0),
            markers=tuple([markers] if isinstance(markers, str) else markers),
            line=entry.line))
    return tuple(stages)


@dataclass(frozen=True)
class Stage:
    """One stage of a staged rollout: an action (move 5% of the traffic), a wait, and the
    post-deploy checks with any of ``markers``."""

    name: str
    action: Action
    wait: float
    markers: tuple[str, ...]
    line: int

