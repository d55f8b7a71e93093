"""The check type ``browser``: pages opened in headless Chromium (the ``[browser]`` extra).

    - name: the app renders without errors
      kind: smoke
      browser: {path: /app, wait_for: "#workflows li", max_load: 2s}

A check is one page (``browser:``) or several in one browser (``steps:``, each a ``browser:``),
so a sign-in on the first page carries to the next. How pages are driven and judged is in
:mod:`~pytest_deploycheck.runtime.browser`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import CheckError, ConfigError
from ..inputs.located import duration_at, error_at
from ..inputs.templating import names_in, render
from ..inputs.yamlfile import YamlMap
from ..runtime.browser import BrowserRun, BrowserUnavailable, PageStep, run_pages
from ..secrets import Redactor
from .base import (
    Attachment,
    Check,
    CheckInstance,
    CheckResult,
    Evidence,
    ParseContext,
    RunContext,
    Templates,
    check_names,
)
from .retry import Retry, own_retry, run_retrying

if TYPE_CHECKING:
    from ..environments import Environment

DEFAULT_TIMEOUT = 30.0  # per navigation or wait, unless the check sets ``timeout``
CONSOLE_SHOWN = 10


@dataclass(frozen=True)
class Page:
    """One ``browser:`` mapping, as written."""

    url: str | None
    path: str | None
    service: str | None
    wait_for: str | None
    wait_for_text: str | None
    fill: Mapping[str, str]
    click: str | None
    submit: str | None
    max_load: float | None
    no_console_errors: bool
    where: str
    line: int
    names_at: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def acts(self) -> bool:
        """Whether it types or clicks: a form may write."""
        return bool(self.fill or self.click or self.submit)


@dataclass(frozen=True)
class BrowserSpec:
    pages: tuple[Page, ...]
    allow_write: bool
    retry: Retry | None = None
    type: str = "browser"

    waits = False

    @property
    def read_only(self) -> bool:
        return not self.allow_write and not any(page.acts for page in self.pages)

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset(name for page in self.pages for name in page.names_at)

    def resolve(self, check: Check, env: Environment, known: set[str]) -> None:
        for page in self.pages:
            if page.service is not None:
                try:
                    env.service(page.service)
                except ConfigError as exc:
                    raise ConfigError(exc.message, file=check.file, line=page.line,
                                      key=f"{page.where}.service") from None
            check_names(page.names_at, known, env, check.file)
            if env.protected and page.acts and not self.allow_write:
                raise ConfigError(f"environment '{env.name}' is protected: a page that fills "
                                  f"or clicks may send a form, and writes are refused there; "
                                  f"set 'allow_write: true' on the check if it must, or leave "
                                  f"'{env.name}' out with 'skip_envs'", file=check.file,
                                  line=page.line, key=page.where)

    def services(self) -> list[str]:
        return sorted({page.service for page in self.pages if page.service})

    def calls(self) -> list[str] | None:
        if any(page.url is not None for page in self.pages):
            return None  # an absolute URL: a failure there is not one service's
        return self.services()

    def companion(self, name: str) -> None:
        return None

    def evidence(self, result: CheckResult, redactor: Redactor) -> list[Evidence]:
        if not isinstance(result, BrowserResult) or result.run is None:
            return []
        run = result.run
        shown: list[Evidence] = [
            Attachment("pages", redactor.redact("\n".join(_page_lines(run)))),
            Attachment("console", redactor.redact("\n".join(run.console) or "(nothing)"))]
        if run.screenshot is not None:
            shown.append(Attachment("screenshot", run.screenshot, "png"))
        return shown


def _page_lines(run: BrowserRun) -> list[str]:
    lines = []
    for number, seen in enumerate(run.pages, start=1):
        status = f" -> {seen.status}" if seen.status is not None else ""
        loaded = f", loaded in {seen.load_time:.3f}s" if seen.load_time is not None else ""
        lines.append(f"page {number}: {seen.url}{status}{loaded}")
        lines += [f"  FAILED {problem}" for problem in seen.problems]
    return lines


@dataclass
class BrowserResult:
    outcome: str
    reason: str
    run: BrowserRun | None
    duration: float
    note: str = ""
    attempts: int = 1

    def details(self) -> dict[str, Any]:
        pages = [{"url": seen.url, "status": seen.status, "load_time": seen.load_time,
                  "problems": seen.problems} for seen in (self.run.pages if self.run else [])]
        return {"pages": pages, "duration": self.duration, "attempts": self.attempts,
                "console": list(self.run.console[-50:]) if self.run else []}

    def render(self, instance: CheckInstance, redactor: Redactor) -> str:
        lines = [*instance.failure_header()]
        if self.run is not None:
            lines += [f"  {line}" for line in _page_lines(self.run)]
            if self.run.console:
                lines.append(f"  console (last {min(len(self.run.console), CONSOLE_SHOWN)} of "
                             f"{len(self.run.console)}):")
                lines += [f"    {line[:300]}" for line in self.run.console[-CONSOLE_SHOWN:]]
        lines.append(f"  FAILED {self.reason}")
        if self.attempts > 1:
            lines.append(f"  (last of {self.attempts} attempts)")
        return redactor.redact("\n".join(lines))


class BrowserRunner:
    def __init__(self, context: RunContext) -> None:
        self.environ, self.sleep = context.environ, context.sleep

    def run(self, instance: CheckInstance) -> BrowserResult:
        spec = instance.check.spec
        assert isinstance(spec, BrowserSpec)
        return run_retrying(lambda: self._once(instance), spec.retry, instance.check.timeout,
                            self.sleep)

    def _once(self, instance: CheckInstance) -> BrowserResult:
        check, env = instance.check, instance.env
        spec = check.spec
        assert isinstance(spec, BrowserSpec)
        started = time.monotonic()
        try:
            steps = [_rendered(page, instance) for page in spec.pages]
        except CheckError as exc:
            return BrowserResult("failed", str(exc), None, time.monotonic() - started)
        protected = env.name if env.protected and not spec.allow_write else None
        try:
            run = run_pages(steps, check.timeout or DEFAULT_TIMEOUT, self.environ, protected)
        except BrowserUnavailable as exc:
            # Not the deploy's fault: nothing is known, and nothing is rolled back for it.
            return BrowserResult("inconclusive", str(exc), None, time.monotonic() - started)
        return BrowserResult("failed" if run.failure else "passed", run.failure or "", run,
                             run.duration)


def _rendered(page: Page, instance: CheckInstance) -> PageStep:
    scope = instance.scope()
    url = None
    if page.url is not None:
        url = str(render(page.url, scope))
    elif page.path is not None:
        assert page.service is not None  # required at parse
        url = instance.env.service(page.service).url + str(render(page.path, scope))
    return PageStep(
        url=url, wait_for=page.wait_for,
        wait_for_text=str(render(page.wait_for_text, scope)) if page.wait_for_text else None,
        fill={selector: str(render(text, scope)) for selector, text in page.fill.items()},
        click=page.click, submit=page.submit, max_load=page.max_load,
        no_console_errors=page.no_console_errors)


class _BrowserType:
    """Checks of any kind that open pages in a browser (``browser:``, or ``steps`` of them)."""

    name = "browser"
    templates = Templates(values=("browser/url", "browser/path", "browser/fill/*",
                                  "browser/wait_for/text"))
    keys = frozenset(("browser", "steps", "allow_write", "retry"))

    def keys_for(self, kind: str) -> frozenset[str]:
        return self.keys

    def parse(self, node: YamlMap, at: ParseContext) -> BrowserSpec | None:
        steps = node.get("steps")
        in_steps = [step for step in steps or [] if isinstance(step, dict) and "browser" in step]
        if "browser" not in node and not in_steps:
            return None
        service = node.get("service", at.suite.get("service"))
        if "browser" in node:
            if "steps" in node:
                raise at.error("a check has 'browser' or 'steps', not both", node, "steps")
            pages: tuple[Page, ...] = (_page(node["browser"], at.inner("browser"), service),)
        else:
            assert steps is not None
            for index, step in enumerate(steps):
                if "browser" not in step:
                    raise error_at("the steps of a check are all browser pages or all "
                                   "requests; this one is a request", steps, index,
                                   at.inner("steps"))
                for key in step:
                    if key not in ("name", "browser"):
                        raise error_at(f"'{key}' does not apply to a browser step", step, key,
                                       f"{at.inner('steps')}[{index}]")
            pages = tuple(_page(step["browser"], f"{at.inner('steps')}[{index}].browser",
                                service) for index, step in enumerate(steps))
        if pages[0].url is None and pages[0].path is None:
            raise at.error("the first page needs 'path' (on a service) or 'url'", node,
                           "browser" if "browser" in node else "steps")
        return BrowserSpec(pages=pages, allow_write=bool(node.get("allow_write", False)),
                           retry=own_retry(node, at.where))

    def runner(self, context: RunContext) -> BrowserRunner:
        return BrowserRunner(context)


def _page(node: YamlMap, where: str, default_service: str | None) -> Page:
    if "url" in node and "path" in node:
        raise error_at("a page has 'path' (on a service) or 'url', not both", node, "path",
                       where)
    service = node.get("service", default_service) if "path" in node else None
    if "path" in node and not service:
        raise error_at("no service for this path: set 'service' on the suite, the check or the "
                       "page, or use 'url'", node, "path", where)
    if "service" in node and "path" not in node:
        raise error_at("'service' goes with 'path'", node, "service", where)
    if "path" in node and not str(node["path"]).startswith(("/", "{{")):
        raise error_at(f"a path starts with / ({node['path']!r} would be glued to the "
                       f"service's URL)", node, "path", where)
    if "url" in node and not str(node["url"]).startswith(("http://", "https://", "{{")):
        raise error_at(f"{node['url']!r} is not an http(s) URL", node, "url", where)
    if "max_load" in node and not ({"url", "path", "submit"} & set(node)):
        raise error_at("max_load times a page load: this page opens none (give it 'path', "
                       "'url' or 'submit')", node, "max_load", where)
    wait_for = node.get("wait_for")
    wait_text = None
    if isinstance(wait_for, dict):
        wait_text, wait_for = wait_for["text"], None
    names_at: dict[str, tuple[int, str]] = {}
    for key in ("url", "path", "fill", "wait_for"):
        for used in names_in(node.get(key)):
            names_at.setdefault(used, (node.line_of(key), f"{where}.{key}"))
    return Page(
        url=node.get("url"), path=node.get("path"), service=service, wait_for=wait_for,
        wait_for_text=wait_text,
        fill={str(selector): str(text) for selector, text in node.get("fill", {}).items()},
        click=node.get("click"), submit=node.get("submit"),
        max_load=duration_at(node, "max_load", where, positive=True),
        no_console_errors=bool(node.get("no_console_errors", True)), where=where,
        line=node.line, names_at=names_at)


TYPE = _BrowserType()
