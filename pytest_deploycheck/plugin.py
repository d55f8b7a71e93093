"""The pytest plugin ``deploycheck``: options, markers, fixtures and hooks, delegating the work.

Modules beyond the settings are imported inside the hooks that need them, not when pytest
loads the plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from .settings import DECLARATIONS, option_dest

if TYPE_CHECKING:
    import httpx

    from .adapter.markeritems import FailingReader
    from .deployrun import DeployRun
    from .environments import Environment
    from .gate import CheckInfo

_T = TypeVar("_T")
MARKERS = {
    "health": "deploycheck health/readiness check (kind health)",
    "smoke": "deploycheck smoke test of a critical path (kind smoke)",
    "checklist": "deploycheck pre-deploy checklist item (kind checklist)",
    "metric": "deploycheck post-deploy metric threshold (kind metric)",
    "predeploy": "runs before a deploy: the pre-deploy gate (checklists)",
    "postdeploy": "runs after a deploy: health, smoke and metric checks",
    "postrollback": "verifies a rollback: run by the gate after its rollback actions, and as "
                    "items only when -m names postrollback",
    "rollout": "a stage of an environment's staged rollout (items only when -m names rollout)",
    "deploycheck": "deploycheck(kind, on_fail, envs, skip_envs, severity, timeout, runbook): "
                   "a check written in Python; runs once per selected environment",
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deploycheck", "deploy gates (pytest-deploycheck)")
    for declaration in DECLARATIONS:
        help_text = declaration.help
        if declaration.env_var:
            names = [declaration.env_var] if isinstance(declaration.env_var, str) \
                else declaration.env_var
            help_text += f" (env var {', then '.join(names)})"
        if declaration.option:
            if declaration.flag:
                group.addoption(declaration.option, action="store_true", default=False,
                                dest=option_dest(declaration), help=help_text)
            else:
                group.addoption(declaration.option,
                                action="append" if declaration.repeatable else "store",
                                default=None, dest=option_dest(declaration),
                                metavar=declaration.metavar, help=help_text)
        if declaration.ini:
            default = [declaration.default] if declaration.ini_type == "args" \
                else declaration.default
            parser.addini(declaration.ini, help_text, type=declaration.ini_type,  # type: ignore[arg-type]
                          default=default)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    # allure-pytest empties --alluredir at configure time in every process: under xdist a
    # worker starting late would delete what another already wrote. Only the controller
    # (configured before any worker starts) cleans.
    if _is_worker(config) and getattr(config.option, "clean_alluredir", False):
        config.option.clean_alluredir = False
    if not _is_worker(config) and (getattr(config.option, "numprocesses", None) or
                                   getattr(config.option, "dist", "no") != "no"):
        _workers_share_the_rootdir(config)


def _workers_share_the_rootdir(config: pytest.Config) -> None:
    """Tell xdist's workers the controller's rootdir and ini file.

    pytest decides the rootdir before plugins add their options, so the value of a plugin's
    option written with a space (``--alluredir DIR``) counts as a test path there once it
    exists. Each worker parses the command line again after the controller's plugins (Allure)
    made DIR: a DIR outside the project moved the workers' rootdir away from the project, and
    every worker died of a missing environments file.
    """
    import dataclasses

    known = config.known_args_namespace
    extra = []
    if not known.rootdir:
        extra.append(f"--rootdir={config.rootpath}")
    if not known.inifilename and config.inipath is not None:
        extra.append(f"--config-file={config.inipath}")
    if extra:
        config.invocation_params = dataclasses.replace(
            config.invocation_params, args=(*config.invocation_params.args, *extra))


def pytest_configure(config: pytest.Config) -> None:
    from .adapter.keys import IDLE_KEY, RUN_KEY, SETTINGS_KEY
    from .settings import resolve

    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    settings = _usage(lambda: resolve(config, Path(config.rootpath),
                                      Path(config.invocation_params.dir)), config)
    config.stash[SETTINGS_KEY] = settings
    if settings.lint.value and not config.option.collectonly:
        raise _usage_error(config, "--deploycheck-lint checks the files and runs nothing: use "
                                   "it with --collect-only")
    root = Path(config.rootpath)
    if not settings.env.value and settings.gate_report.value is None and \
            not any((root / folder).is_dir() for folder in settings.suites.value):
        # A virtualenv shared with other tests: nothing to gate, nothing to load or print.
        config.stash[IDLE_KEY] = True
        return
    from .adapter.gateplugin import run_outputs
    from .deployrun import DeployRun

    config.stash[RUN_KEY] = DeployRun(settings, root)
    config.stash[RUN_KEY].context.own_outputs = run_outputs(config, settings)
    from .adapter.junit import keep_file_and_line

    keep_file_and_line(config)
    from .adapter.markeritems import RedactedWarnings

    config.pluginmanager.register(RedactedWarnings(config.stash[RUN_KEY].redactor),
                                  "deploycheck-warnings")
    _stop_on_sigterm(config)
    run = config.stash[RUN_KEY]
    if not _is_worker(config):
        from .adapter.gateplugin import GatePlugin
        from .adapter.markeritems import RedactedTestIds

        config.pluginmanager.register(RedactedTestIds(run.redactor), "deploycheck-test-ids")
        config.pluginmanager.register(GatePlugin(config, run), "deploycheck-gate")
    from .adapter.channel import connect

    connect(config, run, worker=_is_worker(config))


_SIGTERM_RESTORE = pytest.StashKey[Callable[[], None]]()


def _stop_on_sigterm(config: pytest.Config) -> None:
    """Make SIGTERM (CI cancelling a job) unwind like Ctrl-C, so that started processes are
    stopped and session-end work runs instead of the interpreter dying on the spot."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)

        def restore() -> None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)

        config.stash[_SIGTERM_RESTORE] = restore


def _run(config: pytest.Config) -> DeployRun:
    from .adapter.keys import RUN_KEY, SETTINGS_KEY

    if RUN_KEY not in config.stash:  # an idle run whose test asks for a fixture of the plugin
        from .deployrun import DeployRun

        config.stash[RUN_KEY] = DeployRun(config.stash[SETTINGS_KEY], Path(config.rootpath))
    return config.stash[RUN_KEY]


def _idle(config: pytest.Config) -> bool:
    from .adapter.keys import IDLE_KEY

    return config.stash.get(IDLE_KEY, False)


def _is_worker(config: pytest.Config) -> bool:
    from .adapter import xdist

    return xdist.is_worker(config)


def _is_xdist_controller(config: pytest.Config) -> bool:
    from .adapter import xdist

    return xdist.is_controller(config)


def _usage(call: Callable[[], _T], config: pytest.Config, run: DeployRun | None = None
           ) -> _T:
    """Run ``call``, turning the plugin's option and config errors into pytest usage errors,
    with ``run``'s secrets masked (a bad URL may hold one), remembered for the report of a
    run that never started."""
    from .errors import DeploycheckError

    try:
        return call()
    except DeploycheckError as exc:
        message = run.redactor.redact(str(exc)) if run is not None else str(exc)
        raise _usage_error(config, message) from None


def _usage_error(config: pytest.Config, message: str) -> pytest.UsageError:
    from .adapter.gateplugin import EARLY_END

    config.stash.setdefault(EARLY_END, f"usage error: {message}")
    return pytest.UsageError(message)


def pytest_report_header(config: pytest.Config) -> str | None:
    if _idle(config):
        return None
    return f"deploycheck: {_run(config).settings.describe()}"


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    if _idle(config):
        return
    run = _run(config)
    from .adapter.markeritems import redact_live_output

    redact_live_output(config, run.redactor)
    if config.pluginmanager.get_plugin("allure_listener") is not None:
        from .adapter.allureitem import redact_results

        redact_results(config, run.redactor)
    if run.engine.enabled and not _is_xdist_controller(config):
        from .adapter.runloop import Prefetcher

        config.pluginmanager.register(Prefetcher(session, run), "deploycheck-prefetch")
    if run.selected:
        _usage(run.check_selection, config, run)
        run.learn_secrets()
        # Under xdist the controller starts the processes once, before the workers exist; the
        # workers never start anything. Without xdist they start after collection.
        if _is_xdist_controller(config) and not config.option.collectonly:
            _usage(lambda: run.start(list(run.selected)), config, run)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or _idle(parent.config):
        return None
    run = _run(parent.config)
    root = Path(parent.config.rootpath)
    for folder in run.settings.suites.value:
        base = root / folder
        if file_path.is_relative_to(base):
            from .adapter.yamlitems import SuiteFile

            return SuiteFile.from_parent(parent, path=file_path)
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("deploycheck") is not None
    if "deploy_env" in metafunc.fixturenames or marked:
        if "deploy_env" not in metafunc.fixturenames:
            # A marked test that does not use the environment still runs once per environment.
            metafunc.fixturenames.append("deploy_env")
        names = list(_run(metafunc.config).selected)
        if names:
            from .adapter.markeritems import declared_check

            declared_check(metafunc.definition)  # a bad marker is a collection error here
            metafunc.parametrize("deploy_env", names, indirect=True, ids=names)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    # First, so that -m sees the kind markers of Python checks, and the rollout's stages.
    if _idle(config):
        return
    from .adapter.markeritems import prepare
    from .adapter.rolloutitems import stage_items
    from .adapter.yamlitems import keep_postrollback_for_the_gate, number_items

    if _run(config).selected:
        items += stage_items(session, config)
    number_items(items)
    prepare(config, items)
    keep_postrollback_for_the_gate(config, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    if _idle(item.config):
        return (yield)
    from .adapter.markeritems import guard_call

    return (yield from guard_call(item))


def pytest_collection_finish(session: pytest.Session) -> None:
    config = session.config
    if _idle(config):
        return
    run = _run(config)
    if run.suites_without_env:
        raise _usage_error(config, run.no_env_message())
    if _is_worker(config) or config.option.collectonly:
        return
    from .adapter.yamlitems import CheckItem

    needed: dict[str, None] = {}
    for item in session.items:
        if isinstance(item, CheckItem):
            needed[item.instance.env.name] = None
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "deploy_env" in callspec.params:
            needed[callspec.params["deploy_env"]] = None
    _usage(lambda: run.start(list(needed)), config, run)


# Last, so that this wrapper is the innermost: the report is redacted before any other
# plugin's wrapper (allure-pytest's reads the failure text and captured output) sees it.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _idle(item.config):
        return report
    from .adapter.markeritems import redact_report
    from .adapter.yamlitems import CheckItem
    from .gate import outcome_part

    redact_report(report, _run(item.config).redactor)
    try:
        info = _gate_info(item, call)
    except Exception as exc:
        # Describing a result is part of the check (it reads the responses): whatever raises
        # here fails the check with its one-line reason, instead of the run.
        info = _failed_description(item, call, report, exc)
    if info is not None:
        # Plain data, so that it crosses from xdist workers to the controller with the report.
        # The setup report describes the check; the later ones carry only how their phase
        # went, if not quietly: xdist serialises every report, and sending the description
        # three times made a worker's reports twice as costly to send as a plain test's.
        sent = info if call.when == "setup" else outcome_part(info)
        if sent:
            report.deploycheck = sent  # type: ignore[attr-defined]
        _reporter(report, "Allure results", lambda: _allure(item, call.when, info))
    if isinstance(item, CheckItem) and call.when == "call" and item.result is not None:
        # The check's own time: it may have run ahead, while the item only collected it.
        report.duration = item.result.duration
        # Reported: the responses and measurements it holds need not live to the end of the run.
        item.result = None
    return report


# First, so that this wrapper is the outermost: what the other wrappers set on the report
# after the redaction above (pytest's skipping plugin: the reason of pytest.xfail()) is masked
# before the terminal, JUnit and xdist read it.
@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_outcome(item: pytest.Item, call: pytest.CallInfo[None]
                                      ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _idle(item.config):
        return report
    from .adapter.markeritems import redact_xfail_reason

    redact_xfail_reason(report, _run(item.config).redactor)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object
                              ) -> list[str] | None:
    if _idle(config):
        return None
    from .adapter.markeritems import masked_comparison

    return masked_comparison(config, op, left, right)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if (report.failed or report.skipped) and not _idle(collector.config):
        from .adapter.markeritems import redact_report, syntax_error_text

        if report.failed and isinstance(collector, (pytest.Module, pytest.Directory)):
            text = syntax_error_text(collector)
            if text is not None:
                report.longrepr = text
        # A bad input's message may quote a value with a secret in it (a mistyped URL), and a
        # module skipped at import its reason.
        redact_report(report, _run(collector.config).redactor)
    return report


def _gate_info(item: pytest.Item, call: pytest.CallInfo[None]) -> CheckInfo | None:
    from .adapter.markeritems import report_info
    from .adapter.rolloutitems import StageItem
    from .adapter.yamlitems import CheckItem

    if isinstance(item, (CheckItem, StageItem)):
        return item.report_info(call)
    return report_info(item, call)


def _failed_description(item: pytest.Item, call: pytest.CallInfo[None],
                        report: pytest.TestReport, exc: Exception) -> CheckInfo | None:
    """Fail ``report`` because describing it raised ``exc``; the check's description without
    the phase's outcome, with the reason."""
    from .deployrun import exception_line

    reason = _run(item.config).redactor.redact(
        f"deploycheck could not describe the result: {exception_line(exc)}")
    if not report.failed:  # a failure keeps its own text
        report.outcome = "failed"
        report.longrepr = reason
    try:
        quiet = _gate_info(item, pytest.CallInfo.from_call(lambda: None, "setup"))
    except Exception:
        return None  # no description at all: the failed report still counts (see GatePlugin)
    if quiet is None:
        return None
    described = quiet.copy()  # a quiet description may be shared
    described["reason"] = reason
    return described


def _reporter(report: pytest.TestReport, what: str, write: Callable[[], None]) -> None:
    """Run a reporter's part of ``report``: its failure is no failure of the check (the gate
    plugin warns and exits non-zero), so it travels with the report as a problem."""
    from .deployrun import exception_line

    try:
        write()
    except Exception as exc:
        problems = getattr(report, "deploycheck_problems", [])
        problems.append(f"cannot write {what} of {report.nodeid}: {exception_line(exc)}")
        report.deploycheck_problems = problems  # type: ignore[attr-defined]


def _allure(item: pytest.Item, when: str, info: CheckInfo) -> None:
    """Describe a check's Allure result and attach its evidence, with ``--alluredir``."""
    if item.config.pluginmanager.get_plugin("allure_listener") is None:
        return
    from .adapter.allureitem import enrich

    enrich(item, when, info, _run(item.config).redactor)


def pytest_unconfigure(config: pytest.Config) -> None:
    from .adapter.keys import RUN_KEY

    if _idle(config):
        run = config.stash.get(RUN_KEY, None)  # made for a fixture a test asked for
        if run is not None:
            run.close()
        return
    run = config.stash.get(RUN_KEY, None)
    try:
        _unstarted_report(config, run)
        if run is not None:
            run.close()
    finally:
        config.stash.get(_SIGTERM_RESTORE, lambda: None)()


def _unstarted_report(config: pytest.Config, run: DeployRun | None) -> None:
    """A run whose gate never decided (a usage error, an internal error while starting)
    still replaces the gate report: see :func:`~.adapter.gateplugin.write_unstarted`."""
    from .adapter.gateplugin import EARLY_END, write_unstarted

    gate = config.pluginmanager.get_plugin("deploycheck-gate")
    if gate is not None and gate.decided:
        return
    if gate is not None and gate.internal_errors:
        config.stash.setdefault(EARLY_END, gate.internal_errors[0])
    write_unstarted(config, run)


@pytest.fixture
def deploy_env(request: pytest.FixtureRequest) -> Environment:
    """The environment this test runs against (one test per ``--env`` environment)."""
    from .adapter.markeritems import failing_test

    run = _run(request.config)
    name = getattr(request, "param", None)
    if name is None:
        pytest.fail(f"deploy_env needs an environment: pass --env NAME (known: "
                    f"{run.known_environments()})", pytrace=False)
    with failing_test():
        return run.environment(name)


@pytest.fixture
def service(request: pytest.FixtureRequest, deploy_env: Environment
            ) -> Callable[[str], httpx.Client]:
    """``service(name)``: the session's keep-alive ``httpx.Client`` for that service."""
    from .adapter.markeritems import failing_test

    run = _run(request.config)

    def get(name: str) -> httpx.Client:
        with failing_test():
            return run.pool.client(deploy_env, deploy_env.service(name))

    return get


@pytest.fixture
def metric(request: pytest.FixtureRequest, deploy_env: Environment
           ) -> Callable[[str], FailingReader]:
    """``metric(source)``: that metric source of the environment, with ``.query(q)`` (the
    current value) and ``.series(q, window)`` (the samples over the window)."""
    from .adapter.markeritems import FailingReader, failing_test
    from .checks.metric import MetricReader, PoolFetch

    run = _run(request.config)

    def get(name: str) -> FailingReader:
        with failing_test():
            source = deploy_env.metric_source(name)
        return FailingReader(name, MetricReader(source, PoolFetch(run.pool, deploy_env)))

    return get


# JUnit's own fixtures write straight into the XML, never through a report: the values are
# masked as they are recorded (each asks for pytest's fixture of the same name).
@pytest.fixture(scope="session")
def record_testsuite_property(request: pytest.FixtureRequest,
                              record_testsuite_property: Callable[[str, object], None]
                              ) -> Callable[[str, object], None]:
    """pytest's ``record_testsuite_property``, with the run's secrets masked in the value."""
    redactor = _run(request.config).redactor

    def record(name: str, value: object) -> None:
        record_testsuite_property(name, redactor.redact(str(value)))

    return record


@pytest.fixture
def record_xml_attribute(request: pytest.FixtureRequest,
                         record_xml_attribute: Callable[[str, object], None]
                         ) -> Callable[[str, object], None]:
    """pytest's ``record_xml_attribute``, with the run's secrets masked in the value."""
    redactor = _run(request.config).redactor

    def record(name: str, value: object) -> None:
        record_xml_attribute(name, redactor.redact(str(value)))

    return record
