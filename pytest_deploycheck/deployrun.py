"""Per-run state shared by collection, items, fixtures and the summary (kept in config.stash)."""

from __future__ import annotations

import datetime
import getpass
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .actions import ActionContext
from .checks.base import Check, CheckInstance, CheckResult, CheckRunner, RunContext
from .checks.conditions import ChangedFiles, skip_reason
from .checks.registry import CHECK_TYPES
from .checks.suites import instances, load_suite
from .deploy import Deploy
from .environments import Environment, EnvironmentsFile, Stage
from .errors import ConfigError, DeploycheckError, UsageProblem
from .inputs.interpolation import LintEnviron
from .rollout import StageResult, run_stage, stage_checks
from .runtime.clients import ClientPool
from .runtime.commands import run_command
from .runtime.engine import Cancelled, Engine
from .runtime.processes import ProcessManager
from .runtime.state import StateStore
from .secrets import Redactor
from .settings import Settings


def exception_line(exc: BaseException) -> str:
    """One line naming ``exc``: its class and the first line of its message (whose own
    ``__str__`` may fail too)."""
    try:
        text = str(exc).strip()
    except Exception:
        text = ""
    lines = text.splitlines()
    name = exc.__class__.__name__
    return f"{name}: {lines[0]}"[:300] if lines else name


@dataclass(frozen=True)
class BrokenResult:
    """What a check that raised instead of giving a result gives: a failure with the
    exception's one-line reason. No kind of exception is expected here; that is the point:
    whatever escapes a runner fails its check instead of the run."""

    reason: str
    duration: float
    outcome: str = "failed"
    note: str = ""

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        lines = [*instance.failure_header(), "", f"the check raised {self.reason}"]
        return redactor.redact("\n".join(lines))

    def details(self) -> dict[str, Any]:
        return {}


def _login() -> str:
    """Who runs this, when no CI variable says who deploys (a root shell may have no USER)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


def display_path(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)


class DeployRun:
    """Everything one pytest run knows about environments, clients and started processes.

    Built cheaply at configure time; the environments file is read on first need, so a broken
    file never breaks ``pytest --help`` or a run that collects no suite.
    """

    def __init__(self, settings: Settings, rootdir: Path,
                 environ: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.rootdir = rootdir
        # Linting checks the files without the secrets of the environments they describe.
        self.environ = LintEnviron(environ) if settings.lint.value else environ
        self.redactor = Redactor()
        self.engine = Engine(settings.concurrency.value)
        self.pool = ClientPool(keepalive=settings.concurrency.value, redactor=self.redactor)
        self.processes = ProcessManager(self.redactor)
        self.context = RunContext(
            pool=self.pool, redactor=self.redactor, state=StateStore(settings.state_dir.value),
            sleep=self.engine.sleep, rootdir=rootdir, environ=environ,
            deploy_time=settings.deploy_time.value, acks=settings.ack.value)
        self.runners: dict[str, CheckRunner] = {
            name: kind.runner(self.context) for name, kind in CHECK_TYPES.items()}
        self.suites_without_env: list[str] = []
        # What `if: {changed: ...}` compares: git asked once per base ref in a run.
        self.changes = ChangedFiles(rootdir)
        self._file: EnvironmentsFile | None = None
        self._deploy: Deploy | None = None
        self._started = datetime.datetime.now(datetime.UTC)
        self._loaded: list[Check] | None = None
        self.context.deploy = self.deploy

    def deploy(self) -> Deploy:
        """The deploy this run gates: the settings, the commit from git when none was given,
        and the commit as its id when the CI gave none."""
        if self._deploy is None:
            settings = self.settings
            commit = settings.deploy_commit.value or self._head()
            self._deploy = Deploy(
                id=settings.deploy_id.value or commit, version=settings.deploy_version.value,
                commit=commit, actor=settings.deploy_actor.value or _login(),
                started=settings.deploy_started.value)
        return self._deploy

    def _head(self) -> str:
        try:
            done = run_command(["git", "rev-parse", "HEAD"], timeout=10.0, cwd=self.rootdir,
                               env={"GIT_OPTIONAL_LOCKS": "0"})
        except OSError:
            return ""
        return done.stdout.strip() if done.exit_code == 0 else ""

    @property
    def selected(self) -> tuple[str, ...]:
        return tuple(self.settings.env.value)

    def environments_file(self) -> EnvironmentsFile:
        if self._file is None:
            path: Path = self.settings.environments.value
            if not path.is_file():
                raise ConfigError(f"environments file not found (from "
                                  f"{self.settings.environments.source})",
                                  file=display_path(path, self.rootdir))
            self._file = EnvironmentsFile(path, display_path(path, self.rootdir))
        return self._file

    def check_selection(self) -> None:
        """Raise :class:`UsageProblem` unless every selected environment exists."""
        try:
            environments = self.environments_file()
        except ConfigError as exc:  # the file's own fault, not the option's
            raise UsageProblem(str(exc)) from None
        try:
            environments.check_names(list(self.selected))
        except ConfigError as exc:
            raise UsageProblem(f"{self.settings.env.source}: {exc}") from None

    def learn_secrets(self) -> None:
        """Resolve the selected environments, so that their secrets are masked from the start:
        a Python module may quote one as it fails to import, before any check resolved it. A
        broken environment is reported later, where it is used, as it would be."""
        for name in self.selected:
            try:
                self.environment(name)
            except DeploycheckError:
                continue

    def known_environments(self) -> str:
        try:
            return ", ".join(self.environments_file().names)
        except ConfigError as exc:
            return f"(cannot read the environments file: {exc})"

    def no_env_message(self) -> str:
        return (f"no environment selected, but suites were collected "
                f"({', '.join(self.suites_without_env[:3])}); pass --env NAME or set "
                f"DEPLOYCHECK_ENV. Known environments: {self.known_environments()}")

    def run_check(self, instance: CheckInstance,
                  runners: Mapping[str, CheckRunner] | None = None) -> CheckResult:
        started = time.monotonic()
        try:
            return (runners or self.runners)[instance.check.spec.type].run(instance)
        except Cancelled as exc:  # the run stopped while it waited: it found nothing out
            return BrokenResult(f"not evaluated: {exc}", time.monotonic() - started,
                                outcome="inconclusive")
        except Exception as exc:  # the boundary: any exception fails this check only
            return BrokenResult(exception_line(exc), time.monotonic() - started)

    def environment(self, name: str) -> Environment:
        return self.environments_file().resolve(name, self.environ, self.redactor)

    def suite_files(self) -> list[Path]:
        """The suite files of the run's suites folders, in a stable order: as pytest collects
        them, following linked folders (each real folder once)."""
        found: set[Path] = set()
        seen: set[str] = set()
        for folder in self.settings.suites.value:
            for top, dirs, files in os.walk(self.rootdir / folder, followlinks=True):
                real = os.path.realpath(top)
                if real in seen:
                    dirs[:] = []
                    continue
                seen.add(real)
                dirs.sort()
                found.update(Path(top) / name for name in files
                             if name.endswith((".yaml", ".yml")))
        return sorted(found)

    def run_stage(self, env_name: str, stage: Stage) -> StageResult:
        """Run a stage of ``env_name``'s rollout: its action, its wait, then the post-deploy
        checks with its markers, one after the other."""
        env = self.environment(env_name)
        made = [instance for check in stage_checks(stage, self._checks())
                for instance in instances(check, env)]
        context = ActionContext(env_name, [], self.settings.state_dir.value / "no-failures.json",
                                self.redactor, vars=env.vars, phase="postdeploy",
                                deploy=self.deploy_facts())
        runners = self._runners_of_their_own()
        return run_stage(stage, context, made, lambda one: self.run_check(one, runners))

    def deploy_facts(self) -> dict[str, Any]:
        """``deploy.*`` of action templates and the report, now."""
        return self.deploy().facts(datetime.datetime.now(datetime.UTC), self._started)

    def _checks(self) -> list[Check]:
        """Every check of the run's suite files, read once (the gate runs some of them itself:
        post-rollback checks, a rollout stage's); raises :class:`ConfigError`."""
        if self._loaded is None:
            names = self.environments_file().names
            self._loaded = [check for path in self.suite_files() for check in
                            load_suite(path, display_path(path, self.rootdir), names).checks]
        return self._loaded

    def _runners_of_their_own(self) -> dict[str, CheckRunner]:
        """Runners for checks the gate runs after the run's own: the engine may have stopped
        by then (its sleep cancels a retry), so they wait on their own."""
        alone = replace(self.context, sleep=time.sleep)
        return {name: kind.runner(alone) for name, kind in CHECK_TYPES.items()}

    def verify_rollback(self, env_name: str) -> list[dict[str, Any]]:
        """Run ``env_name``'s post-rollback checks (``phase: postrollback``) against what was
        rolled back to, one after the other; what each found, as the gate report keeps it. A
        suite that cannot be read is a failed verification naming it."""
        found: list[dict[str, Any]] = []
        runners = self._runners_of_their_own()
        try:
            env = self.environment(env_name)
            made = [(check, one) for check in self._checks() if check.phase == "postrollback"
                    for one in instances(check, env)]
        except DeploycheckError as exc:
            return [{"id": "post-rollback checks", "outcome": "failed", "duration": 0.0,
                     "message": self.redactor.redact(str(exc))}]
        for check, instance in made:
            record: dict[str, Any] = {"id": f"{check.suite}::{instance.name}",
                                      "file": check.file, "line": check.line}
            try:
                unneeded = skip_reason(check.conditions, instance.scope(), self.environ,
                                       self.changes)
            except ConfigError as exc:
                record.update(outcome="failed", message=str(exc), duration=0.0)
            else:
                if unneeded:
                    record.update(outcome="skipped", message=unneeded, duration=0.0,
                                  unneeded=True)
                else:
                    result = self.run_check(instance, runners)
                    record.update(outcome=result.outcome, message=result.reason,
                                  duration=round(result.duration, 3))
            record["message"] = self.redactor.redact(record["message"])
            found.append(record)
        return found

    def start(self, names: list[str]) -> None:
        """Start the ``start:`` processes of ``names`` unless ``--no-start``."""
        if self.settings.no_start.value:
            return
        for name in names:
            self.processes.start(self.environment(name))

    def close(self) -> None:
        try:
            self.engine.close()
            self.pool.close()
        finally:
            self.processes.stop_all()
