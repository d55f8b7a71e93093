"""What a check is, whatever its kind, and what each kind of check provides (SPEC §1, §4).

A check's ``kind:`` in YAML (health, smoke, checklist, metric) is its role in the gate: how its
failure gates and which markers select it (:data:`KINDS`). How it runs is its *spec*: one
object, made by one check-type module of this package (``http``, ``metric``, ``checklist``),
answering everything the rest of the plugin asks of a check (:class:`CheckSpec`). The modules
are listed once, in :mod:`.registry`; adding a kind of check is adding one module and one line
there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConfigError
from ..inputs.located import At
from ..inputs.templating import head_of, render
from ..secrets import Redactor

if TYPE_CHECKING:
    from ..deploy import Deploy
    from ..environments import Environment
    from ..inputs.yamlfile import YamlMap
    from ..metrics import MetricSource
    from ..runtime.clients import ClientPool
    from ..runtime.state import StateStore
    from .conditions import Condition


@dataclass(frozen=True)
class Kind:
    """What a kind of check means for gating and selection (SPEC §1): how its failure gates
    after a deploy, and the phase it runs in unless it says another."""

    name: str
    on_fail: str
    phase: str


KINDS: Mapping[str, Kind] = {
    "checklist": Kind("checklist", "block", "predeploy"),
    "health": Kind("health", "rollback", "postdeploy"),
    "smoke": Kind("smoke", "rollback", "postdeploy"),
    "metric": Kind("metric", "rollback", "postdeploy"),
}


def default_on_fail(kind: str, phase: str) -> str:
    """``on_fail`` of a check that does not say it: before a deploy there is nothing of this
    deploy to roll back, so a failure blocks it (a metric check in a pre-deploy run must not
    roll back the live version); after it, the kind's own."""
    return KINDS[kind].on_fail if phase == "postdeploy" else "block"


def markers(kind: str, phase: str) -> tuple[str, str]:
    """The markers that select a check: its kind's and its phase's (``-m postdeploy`` runs
    a command check of a post-deploy phase, whatever its kind)."""
    return (kind, phase)


def applies_to(envs: tuple[str, ...] | None, skip_envs: tuple[str, ...], env: str) -> bool:
    """Whether a check declared with ``envs`` (None: all) and ``skip_envs`` runs in ``env``."""
    return (envs is None or env in envs) and env not in skip_envs


# --- evidence: what a check shows of how it went, for reports (Allure attachments) ----------

@dataclass(frozen=True)
class Attachment:
    """An attachment: text already redacted (``media`` ``text`` or ``csv``), or the bytes of a
    ``png`` image (a browser check's screenshot)."""

    name: str
    content: str | bytes
    media: str = "text"


@dataclass(frozen=True)
class Chart:
    """A line chart of samples per series (drawn by the report side): ``thresholds`` and
    ``limits`` (a baseline's) as lines at ``(label, value)``, the samples that broke a rule
    as ``breaches`` ``(time, value)``, and moments such as an observation's start as
    ``marks`` ``(label, time)``."""

    name: str
    title: str
    series: Sequence[tuple[str, list[tuple[float, float]]]]
    thresholds: Sequence[tuple[str, float]]
    limits: Sequence[tuple[str, float]] = ()
    breaches: Sequence[tuple[float, float]] = ()
    marks: Sequence[tuple[str, float]] = ()


@dataclass(frozen=True)
class EvidenceStep:
    """A step of a check with its own attachments; ``failure`` says why it failed, if it did;
    ``skipped``: it never ran (an earlier step failed)."""

    title: str
    failure: str | None
    attachments: Sequence[Attachment]
    skipped: bool = False


Evidence = Attachment | Chart | EvidenceStep


# --- running ----------------------------------------------------------------------------------

class CheckResult(Protocol):
    """What running any kind of check gives the item that ran it."""

    @property
    def outcome(self) -> str:
        """``passed``, ``failed``, ``skipped``, ``inconclusive`` or ``warned`` (passed, with a
        warning whatever the check's ``on_fail``: outside a preferred deploy window)."""
        ...

    @property
    def reason(self) -> str: ...

    @property
    def duration(self) -> float:
        """Seconds the check itself took (it may have run ahead of its item)."""
        ...

    @property
    def note(self) -> str:
        """Something worth telling also when the check passed (a baseline recorded)."""
        ...

    def render(self, instance: CheckInstance, redactor: Redactor) -> str: ...

    def details(self) -> dict[str, Any]: ...


class CheckRunner(Protocol):
    def run(self, instance: CheckInstance) -> CheckResult: ...


@dataclass
class RunContext:
    """What the run gives the runners of every kind: shared clients, state, the clock."""

    pool: ClientPool
    redactor: Redactor
    state: StateStore
    sleep: Callable[[float], None]
    rootdir: Path
    environ: Mapping[str, str]
    deploy_time: dt.datetime | None
    acks: frozenset[str]
    # Receives a line per observe measurement (shown while the run waits).
    progress: Callable[[str], None] | None = None
    # The deploy the run gates (its id keys what a pre-deploy run recorded for it).
    deploy: Callable[[], Deploy] | None = None
    # What this run writes (gate report, audit log, state dir, Allure and JUnit output): a
    # working tree "clean" before the run is clean whatever the run itself adds.
    own_outputs: tuple[Path, ...] = ()


# --- the interface of a kind ----------------------------------------------------------------

@dataclass(frozen=True)
class ParseContext(At):
    """What parsing a check's own keys may need besides its node and where it is."""

    suite: YamlMap
    timeout: float | None  # the check's own timeout


class CheckSpec(Protocol):
    """How one check runs: made at collection by its check type, frozen, asked by the rest."""

    @property
    def type(self) -> str:
        """The name of the check type that made it (its :mod:`.registry` key)."""
        ...

    @property
    def read_only(self) -> bool:
        """Whether running it only reads, so that it may run early and alongside others."""
        ...

    @property
    def waits(self) -> bool:
        """Whether it waits by design (observes, retries until ready): it starts at once
        rather than first showing that it waits."""
        ...

    @property
    def template_names(self) -> frozenset[str]:
        """Every template name it uses."""
        ...

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        """Raise :class:`ConfigError` (file, line, key) for what it cannot resolve in ``env``
        (a service, a metric source, a template name not in ``known``)."""
        ...

    def services(self) -> list[str]:
        """What it talks to, as report labels."""
        ...

    def calls(self) -> list[str] | None:
        """The environment's services it sends requests to (empty: none; None: it also sends
        requests elsewhere, to an absolute URL, so a failure may be anyone's)."""
        ...

    def companion(self, name: str) -> CheckSpec | None:
        """The spec of a pre-deploy check that goes with this one, named ``name`` (a metric
        check whose baseline is its value before the deploy records that value), or None."""
        ...

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        """What reports attach of ``result`` (one of this type's results), redacted."""
        ...


@dataclass(frozen=True)
class Templates:
    """Where a check type renders templates: field paths relative to a check or one of its
    steps (``request/headers/*``, ``json/**``: see ``inputs/templating.matches``)."""

    values: tuple[str, ...]  # fields whose values are rendered
    keys: tuple[str, ...] = ()  # fields whose keys are
    # Fields whose ${...} belongs to the program they run, not to this plugin.
    program_text: tuple[str, ...] = ()


class CheckType(Protocol):
    """What a check-type module provides (its module-level ``TYPE``)."""

    @property
    def name(self) -> str: ...

    @property
    def templates(self) -> Templates:
        """Where its checks' templates are rendered (a ``{{`` elsewhere is an error)."""
        ...

    @property
    def keys(self) -> frozenset[str]:
        """The YAML keys of its checks besides the common ones."""
        ...

    def keys_for(self, kind: str) -> frozenset[str]:
        """Those of its keys a check of ``kind:`` may have (none: it never runs that kind)."""
        ...

    def parse(self, node: YamlMap, at: ParseContext) -> CheckSpec | None:
        """The spec of check ``node``, or None when the check is not of this type; raises
        :class:`ConfigError` naming file, line and key."""
        ...

    def runner(self, context: RunContext) -> CheckRunner: ...


# --- the check --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParamSet:
    id: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """One check of a suite, before it is paired with environments."""

    suite: str
    name: str
    kind: str
    phase: str
    spec: CheckSpec
    envs: tuple[str, ...] | None
    skip_envs: tuple[str, ...]
    marks: tuple[str, ...]
    on_fail: str
    severity: str
    runbook: str | None
    description: str
    timeout: float | None
    params: tuple[ParamSet, ...]
    suite_vars: Mapping[str, Any]
    file: str
    line: int
    where: str = ""  # its key path in the file (``checks[2]``), the head of its messages' keys
    conditions: tuple[Condition, ...] = ()  # its suite's ``if:`` and its own
    service: str | None = None  # its own or its suite's ``service:``
    key_lines: Mapping[str, int] = field(default_factory=dict)  # the line of each of its keys

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)

    @property
    def id(self) -> str:
        """``suite::name``: how users name a check (``--ack``, reports, baselines)."""
        return f"{self.suite}::{self.name}"

    def applies_to(self, env: str) -> bool:
        return applies_to(self.envs, self.skip_envs, env)

    def rolls_back(self) -> list[str]:
        """The services a failure of it rolls back: those it calls, else the one it names
        (a metric or command check about a service); none: the whole environment."""
        calls = self.spec.calls()
        if calls is None:
            return []
        return calls or ([self.service] if self.service else [])


@dataclass(frozen=True)
class CheckInstance:
    """A check paired with one environment and one parametrize value: what one item runs."""

    check: Check
    env: Environment
    params: ParamSet | None

    @property
    def name(self) -> str:
        suffix = self.env.name + (f"-{self.params.id}" if self.params else "")
        return f"{self.check.name}[{suffix}]"

    def failure_header(self) -> list[str]:
        """The first lines of any failure message: which check, where, with what, runbook."""
        check = self.check
        lines = [f"{check.kind} check '{check.name}' failed in environment '{self.env.name}'",
                 f"  at {check.file}:{check.line}"]
        if self.params:
            lines.append(f"  parameters: {json.dumps(dict(self.params.values), default=str)}")
        if check.runbook:
            lines.append(f"  runbook: {check.runbook}")
        return lines

    def base_scope(self) -> dict[str, Any]:
        """The names parametrize values may use: ``env`` (``env.name``, the environment's name,
        as in rollback and notify actions), environment ``vars`` and suite ``vars``."""
        scope: dict[str, Any] = {"env": self.env.name, "env.name": self.env.name,
                                 "vars": {**self.env.vars, **self.check.suite_vars}}
        scope.update(self.env.vars)
        scope.update(self.check.suite_vars)
        return scope

    def scope(self) -> dict[str, Any]:
        """Template names before any step has saved anything (lowest precedence first)."""
        scope = self.base_scope()
        if self.params:
            scope.update(render(dict(self.params.values), scope))
        return scope


def check_names(used: Mapping[str, tuple[int, str]], known: set[str], env: Environment,
                file: str) -> None:
    """Every name in ``used`` is one of ``known``; ``used`` maps each to the (line, key) that
    uses it."""
    for name in sorted(used):
        if name not in known and head_of(name) not in known:
            line, key = used[name]
            raise ConfigError(f"template '{{{{ {name} }}}}' is not defined in environment "
                              f"'{env.name}'; defined: {', '.join(sorted(known))}",
                              file=file, line=line, key=key)


def source_at(env: Environment, name: str, check: Check, line_key: str, key: str
              ) -> MetricSource:
    """The metric source ``name`` of ``env``; an unknown one is an error at the check's
    ``line_key`` line, under key path ``key``."""
    try:
        return env.metric_source(name)
    except ConfigError as exc:
        raise ConfigError(exc.message, file=check.file, line=check.line_of(line_key),
                          key=key) from None
