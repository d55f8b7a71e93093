"""Every setting declared once, and resolved in one place with the source it came from.

Precedence: command-line option, then environment variable, then ini key, then default.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import UsageProblem


@dataclass(frozen=True)
class Declaration:
    """How a user can set one setting."""

    name: str
    help: str
    option: str | None = None
    env_var: str | tuple[str, ...] | None = None  # the first one set counts
    ini: str | None = None
    default: Any = None
    flag: bool = False
    repeatable: bool = False
    ini_type: str = "string"
    metavar: str | None = None


DECLARATIONS: tuple[Declaration, ...] = (
    Declaration("env", "environments to target, comma-separated (required once a suite is "
                "collected)", option="--env", env_var="DEPLOYCHECK_ENV", repeatable=True,
                metavar="NAME[,NAME...]"),
    Declaration("environments", "the environments file", option="--environments",
                ini="deploycheck_environments", default="environments.yaml", metavar="PATH"),
    Declaration("suites", "folders (relative to the rootdir) whose *.yaml/*.yml files are "
                "suites", ini="deploycheck_suites", ini_type="args", default="suites"),
    Declaration("state_dir", "folder for baselines and other state (relative to the rootdir)",
                ini="deploycheck_state_dir", default=".deploycheck"),
    Declaration("no_start", "do not start the environments' start: processes (already running)",
                option="--no-start", flag=True, default=False),
    Declaration("rollback", "what a failed rollback gate does: auto (run the environment's "
                "rollback actions), dry-run (print and record them), off, or defer (a shard of "
                "a gate: record the decision, run nothing, notify nobody; python -m "
                "pytest_deploycheck merge decides)", option="--rollback",
                ini="deploycheck_rollback", default="auto", metavar="auto|dry-run|off|defer"),
    Declaration("rollback_fast", "start the rollback at the first failed rollback-gate check, "
                "then stop the run", option="--rollback-fast", flag=True, default=False),
    Declaration("gate_report", "write the gate verdict as JSON to this file",
                option="--gate-report", ini="deploycheck_gate_report", metavar="PATH"),
    Declaration("gate_dotenv", "write the verdict as a dotenv file (DEPLOYCHECK_VERDICT, "
                "DEPLOYCHECK_FAILED, DEPLOYCHECK_REPORT): GitLab's artifacts:reports:dotenv",
                option="--gate-dotenv", metavar="PATH"),
    Declaration("audit_log", "append one JSON line per gate decision and rollback action to "
                "this file (flushed and fsynced)", option="--audit-log",
                ini="deploycheck_audit_log", metavar="PATH"),
    Declaration("ack", "acknowledge a manual checklist item by its id (suite::check) or 'all' "
                "(repeatable)", option="--ack", repeatable=True, metavar="ID", default=()),
    Declaration("deploy_time", "evaluate deploy windows at this instant instead of now "
                "(ISO 8601; UTC unless it has an offset)", option="--deploy-time",
                metavar="ISO8601"),
    Declaration("deploy_id", "the deploy this run belongs to, the same in its pre- and "
                "post-deploy runs (default: the CI run's id, then the commit)",
                option="--deploy-id", env_var=("DEPLOYCHECK_DEPLOY_ID", "GITHUB_RUN_ID",
                                               "CI_PIPELINE_ID"), metavar="ID"),
    Declaration("deploy_version", "the version being deployed", option="--deploy-version",
                env_var="DEPLOY_VERSION", metavar="VERSION"),
    Declaration("deploy_commit", "the commit being deployed (default: the CI's, then git "
                "rev-parse HEAD)", option="--deploy-commit",
                env_var=("GITHUB_SHA", "CI_COMMIT_SHA"), metavar="SHA"),
    Declaration("deploy_started", "when the deploy started (ISO 8601)",
                option="--deploy-started", metavar="ISO8601"),
    # Who deploys: read from CI (or DEPLOY_ACTOR); no option, as nobody types their own name.
    Declaration("deploy_actor", "who deploys",
                env_var=("DEPLOY_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER")),
    Declaration("lint", "with --collect-only: check the suites and the selected environments "
                "without resolving unset ${VAR}s (a pull request's job without production "
                "secrets)", option="--deploycheck-lint", flag=True, default=False),
    Declaration("concurrency", "how many side-effect-free checks (health, GET-only smoke, metric) "
                "may run at once in one process; 1 runs every check at its item, in order",
                option="--deploycheck-concurrency", ini="deploycheck_concurrency", default="32",
                metavar="N"),
)


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str

    def __str__(self) -> str:
        return f"{self.value} (from {self.source})"


class _Config(Protocol):
    def getoption(self, name: str) -> Any: ...
    def getini(self, name: str) -> Any: ...


def option_dest(declaration: Declaration) -> str:
    """The argparse destination of a declaration's command-line option."""
    return f"deploycheck_{declaration.name}"


def resolve_one(declaration: Declaration, config: _Config,
                environ: Mapping[str, str]) -> Setting:
    if declaration.option:
        value = config.getoption(option_dest(declaration))
        if value not in (None, False, [], ""):
            return Setting(value, declaration.option)
    names = (declaration.env_var,) if isinstance(declaration.env_var, str) \
        else declaration.env_var or ()
    for name in names:
        if environ.get(name):
            return Setting(environ[name], f"environment variable {name}")
    if declaration.ini:
        value = config.getini(declaration.ini)
        # getini answers the default when the key is unset; an ini value equal to the default
        # is reported as the default, which is the same setting.
        if value not in (None, [], "", declaration.default, [declaration.default]):
            return Setting(value, f"ini {declaration.ini}")
    return Setting(declaration.default, "default")


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one run."""

    env: Setting  # tuple[str, ...]
    environments: Setting  # Path
    suites: Setting  # tuple[str, ...]
    state_dir: Setting  # Path
    no_start: Setting  # bool
    rollback: Setting  # str: auto | dry-run | off | defer
    rollback_fast: Setting  # bool
    gate_report: Setting  # Path | None
    gate_dotenv: Setting  # Path | None
    audit_log: Setting  # Path | None
    ack: Setting  # frozenset[str]
    deploy_time: Setting  # datetime.datetime | None
    deploy_id: Setting  # str (empty: the commit's)
    deploy_version: Setting  # str
    deploy_commit: Setting  # str (empty: git rev-parse HEAD)
    deploy_started: Setting  # datetime.datetime | None
    deploy_actor: Setting  # str
    concurrency: Setting  # int, at least 1
    lint: Setting  # bool

    def describe(self) -> str:
        def show(value: Any) -> str:
            if isinstance(value, (tuple, frozenset)):
                return ",".join(sorted(value) if isinstance(value, frozenset) else value) \
                    or "(none)"
            if isinstance(value, dt.datetime):
                return value.isoformat()
            return str(value)

        shown = ["env", "environments", "suites", "state_dir", "no_start", "rollback",
                 "concurrency"]
        shown += [name for name in ("lint", "rollback_fast", "gate_report", "gate_dotenv",
                                    "audit_log", "ack",
                                    "deploy_time", "deploy_id", "deploy_version",
                                    "deploy_commit", "deploy_started")
                  if getattr(self, name).value]
        return ", ".join(f"{name}={show(getattr(self, name).value)} "
                         f"({getattr(self, name).source})" for name in shown)


def _names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    return tuple(part.strip() for item in items if item for part in str(item).split(",")
                 if part.strip())


def deploy_time(value: Any, option: str = "--deploy-time") -> dt.datetime | None:
    """An ISO 8601 instant; without an offset it is UTC."""
    if not value:
        return None
    text = str(value).strip()
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(f"{option}: {text!r} is not an ISO 8601 date and time (e.g. "
                           f"2026-11-23T15:00:00Z or 2026-11-23T16:00+01:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def deploy_started(value: Any) -> dt.datetime | None:
    """``--deploy-started``: not in the future, where a window "before the deploy" would
    cover what came after it (a minute of clock skew is allowed)."""
    moment = deploy_time(value, "--deploy-started")
    now = dt.datetime.now(dt.UTC)
    if moment is not None and moment > now + dt.timedelta(minutes=1):
        raise UsageProblem(f"--deploy-started: {moment.isoformat()} is in the future (now is "
                           f"{now.isoformat(timespec='seconds')}); give when the deploy "
                           f"started")
    return moment


ROLLBACK_MODES = ("auto", "dry-run", "off", "defer")


def rollback_mode(value: Any) -> str:
    mode = str(value).strip()
    if mode not in ROLLBACK_MODES:
        raise UsageProblem(f"--rollback / deploycheck_rollback: {mode!r} is not one of "
                           f"{', '.join(ROLLBACK_MODES)}")
    return mode


def concurrency(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise UsageProblem(f"--deploycheck-concurrency / deploycheck_concurrency: {text!r} is "
                           f"not a whole number of at least 1")
    return int(text)


# Converters get the value and the folder relative paths start from.
_CONVERT: dict[str, Callable[[Any, Path], Any]] = {
    "env": lambda value, base: _names(value),
    "environments": lambda value, base: base / value,
    "suites": lambda value, base: _names(value.split() if isinstance(value, str) else value),
    "state_dir": lambda value, base: base / value,
    "no_start": lambda value, base: bool(value),
    # An id may contain commas (check names do), so --ack values are not split.
    "rollback": lambda value, base: rollback_mode(value),
    "rollback_fast": lambda value, base: bool(value),
    "lint": lambda value, base: bool(value),
    "gate_report": lambda value, base: base / value if value else None,
    "gate_dotenv": lambda value, base: base / value if value else None,
    "audit_log": lambda value, base: base / value if value else None,
    "ack": lambda value, base: frozenset(str(v).strip() for v in value or () if str(v).strip()),
    "deploy_time": lambda value, base: deploy_time(value),
    "deploy_id": lambda value, base: str(value or "").strip(),
    "deploy_version": lambda value, base: str(value or "").strip(),
    "deploy_commit": lambda value, base: str(value or "").strip(),
    "deploy_started": lambda value, base: deploy_started(value),
    "deploy_actor": lambda value, base: str(value or "").strip(),
    "concurrency": lambda value, base: concurrency(value),
}


def resolve(config: _Config, rootdir: Path, invocation_dir: Path,
            environ: Mapping[str, str] = os.environ) -> Settings:
    """All settings of this run with their sources.

    Paths given on the command line are relative to where pytest was invoked, paths from the ini
    file or defaults to the rootdir.
    """
    return Settings(**{declaration.name: _resolve(declaration, config, rootdir,
                                                  invocation_dir, environ)
                       for declaration in DECLARATIONS})


def _resolve(declaration: Declaration, config: _Config, rootdir: Path, invocation_dir: Path,
             environ: Mapping[str, str]) -> Setting:
    raw = resolve_one(declaration, config, environ)
    base = invocation_dir if declaration.option and raw.source == declaration.option \
        else rootdir
    return Setting(_CONVERT[declaration.name](raw.value, base), raw.source)


def resolve_partial(config: _Config, rootdir: Path, invocation_dir: Path,
                    names: tuple[str, ...], environ: Mapping[str, str] = os.environ
                    ) -> dict[str, Any]:
    """The values of the settings ``names`` that resolve (as :func:`resolve` would), for when
    another setting is wrong: the report of a run stopped by a usage error still goes where
    it was asked to."""
    values: dict[str, Any] = {}
    for declaration in DECLARATIONS:
        if declaration.name not in names:
            continue
        try:
            values[declaration.name] = _resolve(declaration, config, rootdir, invocation_dir,
                                                environ).value
        except (UsageProblem, ValueError):  # that one is wrong too: left out
            continue
    return values

