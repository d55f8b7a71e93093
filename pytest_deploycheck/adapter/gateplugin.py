"""The controller-side gate plugin: gathers item outcomes, rolls back, decides and reports.

Registered only where the run is decided (the single process, or the xdist controller), it sees
every report once, whichever worker produced it, so the rollback of an environment runs exactly
once however many checks fail and however the items were spread over workers.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..actions import ActionResult
from ..deploy import PHASES
from ..deployrun import DeployRun, exception_line
from ..errors import DeploycheckError
from ..gate import OK_VERDICTS, CheckInfo, CheckRecord, Gate
from ..report.terminal import gate_lines
from ..runtime.durable import write_json_atomic, write_text_atomic
from ..settings import Settings
from ..units import utc_iso
from . import xdist


class GatePlugin:
    def __init__(self, config: pytest.Config, run: DeployRun) -> None:
        settings = run.settings
        self.config = config
        self.run = run
        self.gate = Gate(mode=settings.rollback.value, environment=run.environment,
                         redactor=run.redactor, state_dir=settings.state_dir.value,
                         audit_log=settings.audit_log.value, hook=self._rollback_hook,
                         facts=run.deploy_facts, verify=run.verify_rollback)
        option = config.option
        self.gate.quiet = bool(option.collectonly or getattr(option, "setuponly", False)
                               or getattr(option, "setupplan", False))
        named = [one for one in PHASES if one in (option.markexpr or "")]
        if named:
            self.gate.selected_phases = named
        self.fast = bool(settings.rollback_fast.value)
        self.acks: frozenset[str] = settings.ack.value
        self.used_acks: set[str] = set()
        # --ack values that named an item that took none: (node id, why it could not)
        self.unused_acks: dict[str, tuple[str, str]] = {}
        self.known: dict[str, CheckInfo] = {}  # nodeid -> its setup report's description
        self.session: pytest.Session | None = None
        self.problems: list[str] = []
        self.collection_errors: list[str] = []
        self.versions: dict[str, dict[str, None]] = {}  # env -> versions its health checks saw
        self.finished = False
        self.decided = False  # this run's gate decided (its report, if asked for, is written)
        # Why the run cannot be trusted whatever its checks said: an INTERNALERROR in this
        # process or in an xdist worker.
        self.internal_errors: list[str] = []
        self.expected: set[str] = set()  # every item collected to run (xdist: every worker's)
        self.reported: set[str] = set()  # every item a report arrived for
        self.locations: dict[str, tuple[str, int | None, str]] = {}  # nodeid -> logstart's
        self.signalled = False  # Ctrl-C or SIGTERM, not a stop on failures
        self.worker_errors: list[str] = []  # xdist workers that died
        # Whether any selected item is a check (a suite's, or a test run per environment): a
        # run of plain tests alone, with the environment set by ini or variable (a virtualenv
        # shared with unit tests marked smoke), is no gate.
        self.checks_selected = False
        self.no_gate = ""
        self.started = time.monotonic()  # for the summary's duration

    # --- feeding the gate -------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        path = self.run.settings.gate_report.value
        if path is not None and not self.config.option.collectonly:
            # Until this run decides, its report says it has not: a run killed on the spot
            # (SIGKILL, out of memory, pytest-timeout's thread method) leaves that, never an
            # older run's pass.
            from ..gate import not_started_report

            with contextlib.suppress(OSError):  # the final write reports it
                write_json_atomic(path, not_started_report(
                    list(self.run.selected), "the run has not finished: it is running, or it "
                                             "was killed"))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expected.update(item.nodeid for item in session.items)
        self._note_checks(item.nodeid for item in session.items)
        if session.testsfailed:  # collection errors: nothing will run, nothing starts
            return
        from .markeritems import item_phase

        self._announce(found for found in map(item_phase, session.items) if found)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.expected.update(ids)
        self._note_checks(ids)
        # Before xdist hands out the first item (it schedules once every worker collected):
        # announcements go out before any check of their phase starts.
        if not self.collection_errors:
            self._announce(self._phases_of(ids))

    def _record_deploy_starts(self, verdicts: dict[str, str]) -> None:
        """A pre-deploy gate that passed lets the deploy start now: recorded under the deploy
        id, for the post-deploy run's ``before_deploy`` baselines (unless --deploy-started
        says when)."""
        if self.gate.quiet or self.run.settings.deploy_started.value is not None:
            return
        for name, gate in self.gate.envs.items():
            if verdicts.get(name) not in OK_VERDICTS or gate.phases() != ["predeploy"]:
                continue
            try:
                deploy_id = self.run.deploy().id
                if deploy_id:
                    self.run.context.state.record_deploy(name, deploy_id, started=utc_iso())
            except Exception as exc:  # the report is written whatever happened (SPEC §9)
                self.gate.problem(name, f"cannot record when the deploy started: "
                                        f"{exception_line(exc)}")

    def _announce(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Announce each (environment, phase) of the run, in deploy order."""
        if self.gate.quiet:
            return
        # In deploy order, then in the order of --env (which orders the report too).
        order = {name: index for index, name in enumerate(self.run.selected)}
        for env, phase in sorted(set(pairs), key=lambda pair: (PHASES.index(pair[1]),
                                                               order.get(pair[0], 0))):
            self.gate.announce(env, phase)

    def _phases_of(self, ids: list[str]) -> Iterator[tuple[str, str]]:
        """(environment, phase) of each item id, on the xdist controller, which collects
        nothing: a YAML check's phase from its suite file (read once each), a Python check's
        from -m (its marker cannot be read here)."""
        from ..checks.suites import load_suite

        phases: dict[str, dict[str, str]] = {}
        for nodeid in ids:
            file, _, rest = nodeid.partition("::")
            env = self._env_of(rest)
            if env is None:
                continue
            if not file.endswith((".yaml", ".yml")):
                yield env, self._guessed_phase()
                continue
            if file not in phases:
                try:
                    suite = load_suite(Path(self.config.rootpath) / file, file)
                except Exception:
                    suite = None
                phases[file] = {f"{c.suite}::{c.name}": c.phase
                                for c in (suite.checks if suite else ())}
            check = rest.rpartition("[")[0]
            if check in phases[file]:
                yield env, phases[file][check]

    def _note_checks(self, ids: Iterable[str]) -> None:
        """Whether ``ids`` hold a check: a suite's item, or a test whose parameters name a
        selected environment anywhere (``test_x[eu-prod]``); in doubt, a gate."""
        for nodeid in ids:
            file, _, rest = nodeid.partition("::")
            if file.endswith((".yaml", ".yml")) or any(
                    f"-{name}-" in f"-{_params_of(rest)}-" for name in self.run.selected):
                self.checks_selected = True
                return

    def _env_of(self, rest: str) -> str | None:
        """The selected environment an item id names (``...::check[prod-eu]``: the longest
        selected name its bracket starts with), or None."""
        inner = _params_of(rest)
        return next((name for name in sorted(self.run.selected, key=len, reverse=True)
                     if inner == name or inner.startswith(f"{name}-")), None)

    def _guessed_phase(self) -> str:
        """The phase -m names, else a Python check's default (post-deploy)."""
        from ..checks.base import KINDS
        from ..checks.python import DEFAULT_KIND

        return next((one for one in PHASES if one in (self.config.option.markexpr or "")),
                    KINDS[DEFAULT_KIND].phase)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object | None) -> None:
        # A worker that died: the item it was running (if any) comes as a crash report, but
        # one dying before it ran anything (at start-up, in collection) leaves only this.
        if error is not None:
            detail = (str(error).strip().splitlines() or [repr(error)])[0]
            self.worker_errors.append(self.run.redactor.redact(
                f"xdist worker {node.gateway.id} went down: {detail}"[:300]))

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]
                                ) -> None:
        # Under xdist the only thing known of an item before its setup report: what a worker
        # crashing in its setup leaves to describe it with.
        self.locations[nodeid] = location

    def pytest_internalerror(self, excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]
                             ) -> None:
        self.internal_errors.append(self.run.redactor.redact(
            f"internal error: {_internal_error_line(excinfo)}"))

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # A run stopping on failures (-x and --maxfail under xdist, --rollback-fast) or on
        # collection errors raises an Interrupted of pytest's or xdist's; Ctrl-C and SIGTERM
        # (see plugin._stop_on_sigterm) a plain KeyboardInterrupt, pytest.exit() its Exit.
        value = excinfo.value
        if type(value) is KeyboardInterrupt or isinstance(value, pytest.exit.Exception):
            self.signalled = True

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            message = _collection_error_line(report)
            if report.nodeid and not message.startswith(report.nodeid):
                message = f"{report.nodeid}: {message}"
            message = self.run.redactor.redact(message)
            # Under xdist every worker collects everything and may report the same error.
            if message not in self.collection_errors:
                self.collection_errors.append(message)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # An item has run once its call reported, or a failure or skip ended it (also xdist's
        # report of a crashed worker): one interrupted in its call has only a passed setup.
        if report.when == "call" or not report.passed:
            self.reported.add(report.nodeid)
        for problem in getattr(report, "deploycheck_problems", ()):
            problem = self.run.redactor.redact(problem)
            if problem not in self.problems:
                self.problems.append(problem)
        sent = getattr(report, "deploycheck", None)
        if sent:
            self.checks_selected = True  # a check described itself: this run is a gate
        known = self.known.get(report.nodeid)
        if known is None:
            if not sent and report.failed:
                # A check that failed before describing itself (its worker crashed in setup)
                # still counts: described from what is known of it.
                sent = self._undescribed(report)
            if not sent:
                return
            # The first report of a check (its setup) describes it; later ones add to that.
            self.known[report.nodeid] = known = sent
            # Announced at collection; this covers what collection could not tell.
            self._announce([(sent["env"], sent["phase"])])
        info: CheckInfo = {**known, **sent} if sent and sent is not known else known
        if report.when in ("setup", "teardown") and report.passed:
            return  # only the call says how a check went; an interrupted one has no call
        crashed = report.when == xdist.CRASH_PHASE
        version = info.get("details", {}).get("version")
        if version and info["kind"] == "health":
            self.versions.setdefault(info["env"], {})[version] = None
        if info.get("acknowledged"):
            self.used_acks.update(self.acks & set(info["details"].get("ack_ids", ())))
        elif report.when == "call":
            self._note_unused_acks(report, info)
        if crashed:
            outcome, message = "failed", str(report.longrepr).splitlines()[0]
        elif report.failed:
            outcome, message = "failed", info.get("reason") or _first_line(report)
        elif report.skipped:
            outcome = "inconclusive" if info.get("inconclusive") else "skipped"
            message = info.get("reason") or _skip_reason(report)
        elif info.get("warning") and report.when == "call":
            outcome, message = "warned", info["warning"]
        else:
            outcome, message = "passed", ""
        record = CheckRecord.from_info(report.nodeid, info, outcome=outcome, message=message,
                                       duration=report.duration, crashed=crashed)
        if self.gate.record(record) and self.fast and self.gate.mode not in ("off", "defer"):
            self._roll_back_now(record)

    def _note_unused_acks(self, report: pytest.TestReport, info: CheckInfo) -> None:
        """Remember the ``--ack`` values that named this item although it took none, and why
        it could not (empty when it passed without one)."""
        if not self.acks:
            return
        details = info.get("details") or {}
        # The names --ack accepts for any item (checks.checklist.ack_ids for checklist ones).
        names = {info["id"], info["item_id"], f"{info['file']}::{info['item_id']}"}
        for ack in self.acks & names:
            why = "" if report.passed else details.get("ack_refused") or (
                f"a {info['kind']} check that is not a manual step; only manual steps and "
                f"emergency-only deploy windows take --ack")
            self.unused_acks.setdefault(ack, (report.nodeid, why))

    def _undescribed(self, report: pytest.TestReport) -> CheckInfo | None:
        """The gate's view of a failed item no report described: a YAML check's from its suite
        file, any item's environment from its id. ``None`` for an item that is no check (a
        crash of such an item is a gate error)."""
        from ..checks.python import DEFAULT_KIND
        from ..gate import check_info

        nodeid = report.nodeid
        file, _, rest = nodeid.partition("::")
        env = self._env_of(rest)
        crashed = report.when == xdist.CRASH_PHASE
        if env is None:
            if crashed:
                self.worker_errors.append(str(report.longrepr).splitlines()[0])
            return None
        location = self.locations.get(nodeid)
        line = (location[1] or 0) + 1 if location and location[1] is not None else 0
        name = rest.rpartition("::")[2].partition("[")[0]
        # A Python check's marker cannot be read here (the controller collects nothing): its
        # crash blocks, and never rolls back a deploy that may be healthy (-m predeploy may
        # have selected it); the phase is what -m names, if it names one.
        kind, on_fail, phase = DEFAULT_KIND, "block", self._guessed_phase()
        yaml = file.endswith((".yaml", ".yml"))
        check = self._yaml_check(file, rest) if yaml else None
        if check is not None:
            kind, phase, on_fail, line = check.kind, check.phase, check.on_fail, check.line
        elif not crashed and not yaml:
            return None  # a plain test's failure, as any other
        suite = rest.partition("::")[0] if yaml else file
        return check_info(id=f"{suite}::{name}", item_id=rest if yaml else nodeid, suite=suite,
                          name=name, env=env, kind=kind, phase=phase, on_fail=on_fail,
                          severity="normal", runbook=None, file=file, line=line,
                          order=len(self.expected), guessed=check is None)

    def _yaml_check(self, file: str, rest: str) -> Any:
        """The check of the suite file ``file`` (relative to the rootdir) that ``rest`` (the
        node id after the file) names, or None."""
        from ..checks.suites import load_suite

        suite_name, _, name = rest.partition("::")
        try:
            suite = load_suite(Path(self.config.rootpath) / file, file)
        except Exception:  # unreadable now: the defaults stand
            return None
        name = name.partition("[")[0]
        return next((c for c in suite.checks if c.suite == suite_name and c.name == name), None)

    def _roll_back_now(self, record: CheckRecord) -> None:
        """``--rollback-fast``: roll back on this report, then stop the run cleanly."""
        reported = time.monotonic()
        self.gate.roll_back(record.env, reported_at=reported)
        reason = (f"deploycheck: {record.env} rolled back at the first failed rollback gate "
                  f"({record.id}, --rollback-fast)")
        xdist.stop_workers(self.config, reason)
        if self.session is not None:
            self.session.shouldstop = reason

    def _rollback_hook(self, env: str, failures: list[dict[str, Any]]) -> ActionResult | None:
        hook = self.config.hook.pytest_deploycheck_rollback
        if not hook.get_hookimpls():
            return None
        started = time.monotonic()
        try:
            hook(config=self.config, env=env, failures=failures)
        except (Exception, SystemExit) as exc:  # a plugin's error: a failed rollback
            return ActionResult("pytest_deploycheck_rollback", "hook", "failed",
                                self.run.redactor.redact(f"{exc.__class__.__name__}: {exc}"),
                                duration=time.monotonic() - started)
        return ActionResult("pytest_deploycheck_rollback", "hook", "succeeded",
                            duration=time.monotonic() - started)

    # --- deciding ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # A usage error (exit 4) stopped the run before any gate existed (the plugin's
        # unconfigure writes the report of a run that never started); --collect-only runs no
        # gate.
        if self.finished or session.exitstatus == pytest.ExitCode.USAGE_ERROR or \
                self.config.option.collectonly:
            return
        self.finished = True
        settings = self.run.settings
        if self.run.selected and not self.checks_selected and settings.env.source != "--env" and \
                settings.gate_report.value is None and not self.collection_errors and \
                not self.internal_errors and not self.worker_errors:
            # Only plain tests ran, and nobody asked for a gate on the command line: their
            # own outcome is the run's. (`--env` asks for one: then no check is inconclusive.)
            self.no_gate = (f"deploycheck: no check selected for {', '.join(self.run.selected)} "
                            f"(from {settings.env.source}): no gate")
            return
        # Every selected environment gets a verdict, also one no check ran against.
        errors = self.collection_errors + self.internal_errors + self.worker_errors + \
            self._not_run(session)
        for name in self.run.selected:
            self.gate.env(name).errors.extend(errors)
        if not self.gate.envs:
            self.config.stash.setdefault(EARLY_END, "no environment selected: no gate ran")
            return
        for env, message in self.run.processes.exited():  # what the checks did not test
            self.gate.problem(env, message)
        try:
            verdicts = self.gate.finish()
        except Exception as exc:  # the report is written whatever happened (SPEC §9)
            self._internal_error(f"internal error: deciding the verdicts: "
                                 f"{exception_line(exc)}")
            verdicts = {name: gate.decide() for name, gate in self.gate.envs.items()}
            for name, gate in self.gate.envs.items():
                gate.verdict = verdicts[name]
        self.decided = True
        self._record_deploy_starts(verdicts)
        report = self.gate.report()
        path = self.run.settings.gate_report.value
        if path is not None:
            try:
                write_json_atomic(path, report)
            except OSError as exc:
                self.problems.append(f"cannot write the gate report {path}: {exc}")
        objects = report.get("environments", [report])
        for document in objects:
            try:
                self.config.hook.pytest_deploycheck_gate(
                    config=self.config, env=document["env"], verdict=document["verdict"],
                    report=document)
            except Exception as exc:  # reported; the verdict stands
                self.problems.append(f"pytest_deploycheck_gate failed: "
                                     f"{exc.__class__.__name__}: {exc}")
        # A reporter's failure is no failure of the gate: warned about, and a non-zero exit.
        for what, write in (("Allure results", self._write_allure_files),
                            ("the GitHub step summary", self._github_summary),
                            ("$GITHUB_OUTPUT", self._github_output),
                            ("the dotenv file", self._dotenv)):
            try:
                write()
            except Exception as exc:
                self.problems.append(f"cannot write {what}: {exception_line(exc)}")
        self.problems += self.gate.audit_errors + self.gate.problems
        if self.gate.signals or any(g.rollback is not None and g.rollback.signals
                                    for g in self.gate.envs.values()):
            session.exitstatus = pytest.ExitCode.INTERRUPTED  # the run was asked to stop
            self.signalled = True
        session.exitstatus = self._exit_status(session.exitstatus, verdicts)

    def _exit_status(self, status: int, verdicts: dict[str, str]) -> int:
        """The exit statuses of the docs (concepts/check-kinds.md): 3 after an internal
        error, 1 for a verdict other than passed (also when the run stopped on a failure:
        --rollback-fast, and -x or --maxfail under xdist, which pytest reports as
        interrupted) or a reporter's failure."""
        ok = all(v in OK_VERDICTS for v in verdicts.values())
        if self.internal_errors and status in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return pytest.ExitCode.INTERNAL_ERROR
        if status == pytest.ExitCode.INTERRUPTED and not ok and not self.signalled and \
                not self.collection_errors:
            return pytest.ExitCode.TESTS_FAILED
        # pytest's "no tests ran" (5): no check ran, an inconclusive gate (1 in the table).
        if (not ok or self.problems) and status in (pytest.ExitCode.OK,
                                                    pytest.ExitCode.NO_TESTS_COLLECTED):
            return pytest.ExitCode.TESTS_FAILED
        return status

    def _internal_error(self, message: str) -> None:
        message = self.run.redactor.redact(message)
        self.internal_errors.append(message)
        for gate in self.gate.envs.values():
            gate.errors.append(message)

    def _not_run(self, session: pytest.Session) -> list[str]:
        """Why some collected items never reported: the run stopped early (Ctrl-C, SIGTERM,
        -x, a dead worker); the gate was not fully evaluated."""
        missing = len(self.expected - self.reported)
        if self.collection_errors:  # those say why
            return []
        if not missing:
            # Ctrl-C or SIGTERM before the items were known (during collection).
            return ["interrupted before any check ran"] \
                if self.signalled and not self.reported else []
        why = session.shouldstop or session.shouldfail or {
            int(pytest.ExitCode.INTERRUPTED): "interrupted",
            int(pytest.ExitCode.INTERNAL_ERROR): "internal error"}.get(session.exitstatus, "")
        return [f"{missing} of {len(self.expected)} items never ran"
                + (f" ({why})" if why else "")]

    def _write_allure_files(self) -> None:
        """With ``--alluredir``: the run's environment, CI executor, categories, and each
        environment's rollback and notifications as results of their own."""
        folder = getattr(self.config.option, "allure_report_dir", None)
        if not folder:
            return
        from .. import __version__
        from ..report import allure
        from ..report.terminal import counts_text

        redactor = self.run.redactor
        # The verdicts first: the report shows these first, and titles itself with them.
        properties: list[tuple[str, str]] = []
        for name, gate in self.gate.envs.items():
            properties += [(f"{name}.verdict", gate.verdict or gate.decide()),
                           (f"{name}.checks", counts_text(gate))]
            if gate.rollback is not None:
                properties += [(f"{name}.{key}", value)
                               for key, value in allure.rollback_summary(gate.rollback)]
        properties += [("environment", ", ".join(self.gate.envs)),
                       ("deploycheck", __version__), ("pytest", pytest.__version__)]
        files: list[tuple[str, Any]] = [("categories.json", allure.CATEGORIES)]
        for name, gate in self.gate.envs.items():
            if self.versions.get(name):
                properties.append((f"{name}.version", ", ".join(self.versions[name])))
            with contextlib.suppress(DeploycheckError):  # an unresolvable environment: no URLs
                for service_name, service in self.run.environment(name).services.items():
                    properties.append((f"{name}.{service_name}.url", service.url))
            files += allure.action_results(gate, __version__)
        files.append(("environment.properties", allure.environment_properties(properties)))
        found = allure.executor(os.environ)
        if found is not None:
            files.append(("executor.json", found))
        try:
            allure.write_results(Path(folder), [
                (n, redactor.redact_data(c) if not isinstance(c, str) else redactor.redact(c))
                for n, c in files])
        except OSError as exc:
            self.problems.append(f"cannot write Allure results to {folder}: {exc}")

    def _github_summary(self) -> None:
        """Under GitHub Actions: the verdicts as Markdown in the job's step summary."""
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if os.environ.get("GITHUB_ACTIONS") != "true" or not path:
            return
        from ..report.github import step_summary, summary_title

        repository = None
        if os.environ.get("GITHUB_REPOSITORY") and os.environ.get("GITHUB_SHA"):
            repository = (f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                          f"{os.environ['GITHUB_REPOSITORY']}/blob/{os.environ['GITHUB_SHA']}")
        title = summary_title(self.gate.envs, time.monotonic() - self.started)
        run_url = None
        if os.environ.get("GITHUB_REPOSITORY") and os.environ.get("GITHUB_RUN_ID"):
            run_url = (f"{os.environ.get('GITHUB_SERVER_URL', 'https://github.com')}/"
                       f"{os.environ['GITHUB_REPOSITORY']}/actions/runs/"
                       f"{os.environ['GITHUB_RUN_ID']}")
        report_url = os.environ.get("DEPLOYCHECK_REPORT_URL") or run_url
        try:
            with open(path, "a", encoding="utf-8") as out:
                out.write(self.run.redactor.redact(step_summary(
                    self.gate.envs, repository, title, report_url)))
        except OSError as exc:
            self.problems.append(f"cannot append to $GITHUB_STEP_SUMMARY {path}: {exc}")

    def _github_output(self) -> None:
        """With ``$GITHUB_OUTPUT`` set (any step of a GitHub job): ``verdict``, ``failed`` and
        ``report`` for the steps after it (``steps.gate.outputs.verdict``)."""
        path = os.environ.get("GITHUB_OUTPUT")
        if not path:
            return
        from ..report.github import outputs

        report = self.run.settings.gate_report.value
        try:
            with open(path, "a", encoding="utf-8") as out:
                out.write(outputs(self.gate.envs, report))
        except OSError as exc:
            self.problems.append(f"cannot append to $GITHUB_OUTPUT {path}: {exc}")

    def _dotenv(self) -> None:
        """With ``--gate-dotenv``: the verdict as ``DEPLOYCHECK_*`` variables (GitLab)."""
        path = self.run.settings.gate_dotenv.value
        if path is None:
            return
        from ..report.github import outputs

        try:
            write_text_atomic(path, outputs(self.gate.envs, self.run.settings.gate_report.value,
                                            "DEPLOYCHECK_"))
        except OSError as exc:
            self.problems.append(f"cannot write the dotenv file {path}: {exc}")

    # --- telling ----------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.no_gate:
            terminalreporter.write_line(self.no_gate)
        if not self.gate.envs:
            return
        redactor = self.run.redactor

        def write(line: str, **markup: bool) -> None:
            # Every line: action names and messages may quote a configured URL or command.
            terminalreporter.write_line(redactor.redact(line), **markup)

        terminalreporter.ensure_newline()
        terminalreporter.section("deploycheck")
        for line, markup in gate_lines(self.gate.envs, self.collection_errors):
            write(line, **markup)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            from ..report.github import workflow_commands, workspace_prefix

            # Workflow commands on stdout: GitHub shows them at the checks' lines.
            try:
                lines = workflow_commands(self.gate.envs, workspace_prefix(
                    str(self.config.rootpath), os.environ.get("GITHUB_WORKSPACE")))
            except Exception as exc:  # a reporter's failure: warned about, exit non-zero
                lines = []
                self.problems.append(f"cannot write the GitHub annotations: "
                                     f"{exception_line(exc)}")
                if self.session is not None and self.session.exitstatus == pytest.ExitCode.OK:
                    self.session.exitstatus = pytest.ExitCode.TESTS_FAILED
            for line in lines:
                write(line)
        for ack in sorted(self.acks - self.used_acks - {"all"}):
            nodeid, why = self.unused_acks.get(ack, ("", ""))
            if not nodeid:
                write(f"  NOTE --ack '{ack}' matched no item of this run")
            elif why:
                write(f"  NOTE --ack '{ack}' matched {nodeid}, which cannot be acknowledged: "
                      f"{why}")
            else:
                write(f"  NOTE --ack '{ack}' matched {nodeid}, which passed without it")
        for problem in self.problems:
            write(f"  ERROR {problem}", red=True)

def _params_of(rest: str) -> str:
    """The parameter id of an item id's name (``check[prod-eu]`` -> ``prod-eu``), or ""."""
    return rest.rpartition("[")[2].rstrip("]") if rest.endswith("]") else ""


def run_outputs(config: pytest.Config, settings: Settings) -> tuple[Path, ...]:
    """What this run writes into the project: its gate report, audit log and state dir, and
    the Allure results and JUnit file of the plugins it drives (relative to where pytest was
    started, as they parse them)."""
    invoked = Path(config.invocation_params.dir)
    found = [settings.gate_report.value, settings.audit_log.value, settings.state_dir.value,
             getattr(config.option, "allure_report_dir", None),
             getattr(config.option, "xmlpath", None)]
    return tuple(invoked / Path(str(one)).expanduser() for one in found if one)


# Why the run ended before its gate ran (a usage error, an internal error at configure time),
# for the report written then.
EARLY_END = pytest.StashKey[str]()


def write_unstarted(config: pytest.Config, run: DeployRun | None) -> None:
    """With ``--gate-report`` (and ``--audit-log``): record a run that ended before its gate
    ran (a usage error, an internal error while starting) as ``blocked``, over any older
    report, so that a pipeline reading ``verdict`` never reads a previous run's pass.
    Nothing for ``--collect-only``, ``--help`` and the like, where no gate was to run."""
    from ..gate import NOT_STARTED_VERDICT, not_started_report
    from ..runtime.durable import append_json_line
    from ..settings import resolve_partial
    from ..units import utc_iso

    if xdist.is_worker(config) or any(
            getattr(config.option, name, False) for name in (
                "collectonly", "help", "version", "markers", "showfixtures",
                "show_fixtures_per_test")):
        return
    if run is not None:
        settings = run.settings
        values = {"env": settings.env.value, "gate_report": settings.gate_report.value,
                  "audit_log": settings.audit_log.value,
                  "gate_dotenv": settings.gate_dotenv.value}
    else:
        values = resolve_partial(config, Path(config.rootpath),
                                 Path(config.invocation_params.dir),
                                 ("env", "gate_report", "audit_log", "gate_dotenv"))
    reason = config.stash.get(EARLY_END, "the run ended before its checks ran")
    redact = run.redactor.redact if run is not None else str
    reason = redact(reason.strip().splitlines()[0] if reason.strip() else reason)
    envs: list[str | None] = list(values.get("env") or ())
    with contextlib.suppress(OSError):  # reported by pytest already; nothing more to say
        if values.get("gate_report") is not None:
            write_json_atomic(values["gate_report"], not_started_report(envs, reason))
        from ..report.github import output_lines

        if values.get("gate_dotenv") is not None:
            write_text_atomic(values["gate_dotenv"], output_lines(
                NOT_STARTED_VERDICT, 0, values.get("gate_report"), "DEPLOYCHECK_"))
        if os.environ.get("GITHUB_OUTPUT"):
            with open(os.environ["GITHUB_OUTPUT"], "a", encoding="utf-8") as out:
                out.write(output_lines(NOT_STARTED_VERDICT, 0, values.get("gate_report")))
        if values.get("audit_log") is not None:
            for env in envs or [None]:
                append_json_line(values["audit_log"], {
                    "time": utc_iso(), "event": "verdict", "env": env,
                    "verdict": NOT_STARTED_VERDICT, "error": reason})


def _internal_error_line(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    """The exception's own line; from an xdist worker, the last line of its INTERNALERROR
    text (which xdist raises again as an ``AssertionError``)."""
    text = [line.removeprefix("INTERNALERROR>").strip()
            for line in str(excinfo.value).splitlines()]
    text = [line for line in text if line and line != "assert False"]
    return (text[-1] if text else excinfo.typename)[:300]


def _first_line(report: pytest.TestReport | pytest.CollectReport, last: bool = True) -> str:
    """One line of a report's failure text: the last (an exception's own line after a
    traceback), or the first (a collection error's message)."""
    text = [line for line in str(report.longrepr or "").strip().splitlines() if line.strip()]
    return text[-1 if last else 0][:300] if text else ""


# A frame of pytest's short traceback: "tests/test_x.py:3: in <module>".
_FRAME = re.compile(r"^(\S+\.py):(\d+): in ")


def _collection_error_line(report: pytest.CollectReport) -> str:
    """A collection error in one line: the message of a YAML or syntax error (its first
    line), or for a module that raised while imported, ``file:line: Error: message`` from
    the traceback's last frame and its exception line."""
    text = [line for line in str(report.longrepr or "").strip().splitlines() if line.strip()]
    errors = [line[1:].strip() for line in text if line.startswith("E ")]
    frames = [found for line in text if (found := _FRAME.match(line))]
    if errors and frames:
        return f"{frames[-1][1]}:{frames[-1][2]}: {errors[-1]}"[:300]
    return text[0][:300] if text else ""


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return ""
