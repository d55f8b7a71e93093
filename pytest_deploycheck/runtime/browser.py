"""Opening pages in headless Chromium through Playwright (the ``[browser]`` extra).

The browser is the machine's own Chromium (Debian's ``chromium``, or ``DEPLOYCHECK_CHROMIUM``):
Playwright's downloaded browsers are never used, so nothing is fetched at install or run time.
Each check gets a fresh browser and context, closed when it ends; the steps of one check share
them (cookies of a sign-in carry to the next page).

A page fails on what a person would see go wrong: a document answering 4xx/5xx, a console
error, an uncaught exception, a request that failed or answered 4xx/5xx (but the browser's own
``/favicon.ico``), a selector or text that never appears, a load slower than ``max_load``
(Navigation Timing's ``loadEventEnd``).

The browser runs in a process of its own (``python -m pytest_deploycheck.runtime.browser JOB
RESULT``), killed with everything it started at a hard deadline: a page whose script never
yields blocks Playwright's calls for good, and must not block the run.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import CheckError
from .commands import run_command

INSTALL_HINT = "pip install 'pytest-deploycheck[browser]' (Playwright for Python)"
CHROMIUM_HINT = "apt-get install -y chromium (or set DEPLOYCHECK_CHROMIUM to a Chromium binary)"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
# As the machine's probe starts Chromium: without the background-networking flags it keeps
# calling Google's hosts, which a closed network refuses many times a second.
_ARGS = ("--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-default-apps", "--disable-extensions")
_SETTLE_MILLIS = 3000
_LOAD_TIME = """() => {
  const entry = performance.getEntriesByType("navigation")[0];
  return entry ? (entry.loadEventEnd || entry.duration) / 1000 : null;
}"""


class BrowserUnavailable(CheckError):
    """Playwright or Chromium is missing: the message says how to install it."""


@dataclass(frozen=True)
class PageStep:
    """One page of a browser check, its templates rendered."""

    url: str | None  # None: stay on the page the step before left
    wait_for: str | None  # a CSS selector that must become visible
    wait_for_text: str | None  # a text that must appear
    fill: Mapping[str, str]  # CSS selector -> the text typed into it
    click: str | None  # clicked, nothing waited for
    submit: str | None  # clicked, then the page it leads to must load
    max_load: float | None
    no_console_errors: bool


@dataclass
class PageSeen:
    """What one step saw."""

    url: str
    status: int | None
    load_time: float | None
    problems: list[str] = field(default_factory=list)


@dataclass
class BrowserRun:
    pages: list[PageSeen]
    console: list[str]  # every console message, uncaught exception and failed request
    screenshot: bytes | None
    failure: str | None
    duration: float


def chromium_path(environ: Mapping[str, str]) -> str:
    """The Chromium binary to drive; raises :class:`BrowserUnavailable` with the fix."""
    given = environ.get("DEPLOYCHECK_CHROMIUM")
    if given:
        if not os.access(given, os.X_OK):
            raise BrowserUnavailable(f"DEPLOYCHECK_CHROMIUM={given} is not an executable")
        return given
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserUnavailable(f"no Chromium on this machine: {CHROMIUM_HINT}")


def _favicon(url: str) -> bool:
    """The icon browsers ask for by themselves, which a page need not have."""
    return urlsplit(url).path == "/favicon.ico"


class _Page:
    """Listens to a page: console, uncaught exceptions, requests that failed or were refused."""

    def __init__(self, context: Any, page: Any,
                 refuse: Callable[[str, str], str | None] | None) -> None:
        self.page = page
        self.console: list[str] = []
        self.errors: list[str] = []  # problems since the step began
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)
        if refuse is not None:
            # On the context: a popup the page opens is refused too.
            context.route("**/*", lambda route, request: self._route(route, request, refuse))

    def _error(self, text: str) -> None:
        self.console.append(f"[error] {text}")
        self.errors.append(text)

    def _page_error(self, error: Any) -> None:
        name = getattr(error, "name", "") or ""
        message = getattr(error, "message", "") or str(error)
        self._error(f"uncaught exception: {name + ': ' if name else ''}{message}")

    def _console(self, message: Any) -> None:
        text = f"console {message.type}: {message.text}"
        # "Failed to load resource" repeats a response or failed request, told with its URL
        # there (and the browser's own /favicon.ico is none of the page's).
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(text)
        self.console.append(f"[{message.type}] {message.text}")

    def _request_failed(self, request: Any) -> None:
        if _favicon(request.url):
            return
        reason = request.failure or "failed"
        if reason == "net::ERR_ABORTED" and request.resource_type == "document":
            return  # a navigation the page itself replaced (a redirect, a form submit)
        self._error(f"request failed: {request.method} {request.url} ({reason})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not _favicon(response.url):
            self._error(f"{response.request.method} {response.url} answered {response.status}")

    def _route(self, route: Any, request: Any,
               refuse: Callable[[str, str], str | None]) -> None:
        refused = refuse(request.method, request.url)
        if refused:
            self._error(refused)
            route.abort("blockedbyclient")
        else:
            route.continue_()


LAUNCH_TIMEOUT = 15.0  # starting Chromium on a busy machine, apart from the check's waits


def run_pages(steps: list[PageStep], timeout: float, environ: Mapping[str, str],
              protected: str | None = None) -> BrowserRun:
    """Run ``steps`` in one fresh headless Chromium, each wait within ``timeout`` seconds, in a
    process killed at a deadline that allows every wait its timeout.

    ``protected`` names the environment when it is: then every writing request of the pages
    is refused. Raises :class:`BrowserUnavailable` when Playwright or Chromium is missing or
    cannot start; every other fault is a failed run.
    """
    try:
        import playwright.sync_api  # noqa: F401 - only whether it is there
    except ImportError:
        raise BrowserUnavailable(f"browser checks need Playwright: {INSTALL_HINT}") from None
    executable = chromium_path(environ)
    # Every wait its timeout, every step its settling, Chromium its start, and a little more.
    actions = sum(bool(step.url) + len(step.fill) + bool(step.click) + bool(step.submit) +
                  bool(step.wait_for) + bool(step.wait_for_text) + 1 for step in steps)
    limit = LAUNCH_TIMEOUT + timeout * actions + _SETTLE_MILLIS / 1000 * len(steps) + 5
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deploycheck-browser-") as folder:
        job, out = Path(folder) / "job.json", Path(folder) / "result.json"
        job.write_text(json.dumps({"steps": [dataclasses.asdict(step) for step in steps],
                                   "timeout": timeout, "executable": executable,
                                   "protected": protected}))
        done = run_command([sys.executable, "-m", "pytest_deploycheck.runtime.browser",
                            str(job), str(out)], timeout=limit, env=dict(environ))
        duration = time.monotonic() - started
        if done.timed_out:
            return BrowserRun([], [], None, f"the pages did not finish within {limit:g}s (a "
                                            f"script that never yields?): the browser was "
                                            f"killed", duration)
        if not out.is_file():
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:300]
            return BrowserRun([], [], None, f"the browser process ended without a result "
                                            f"(exit code {done.exit_code}): {tail}", duration)
        data = json.loads(out.read_text())
    if data.get("unavailable"):
        raise BrowserUnavailable(data["unavailable"])
    return BrowserRun(pages=[PageSeen(**seen) for seen in data["pages"]],
                      console=data["console"],
                      screenshot=base64.b64decode(data["screenshot"])
                      if data.get("screenshot") else None,
                      failure=data["failure"], duration=duration)


def _drive(steps: list[PageStep], timeout: float, executable: str,
           protected: str | None) -> BrowserRun:
    """In the browser's process: run the steps (see :func:`run_pages`)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    started = time.monotonic()
    millis = timeout * 1000
    run = BrowserRun([], [], None, None, 0.0)
    with sync_playwright() as playwright:
        args = [*_ARGS, *(("--no-sandbox",) if os.geteuid() == 0 else ())]
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, args=args, headless=True,
                timeout=max(millis, LAUNCH_TIMEOUT * 1000))
        except PlaywrightError as exc:
            # Nothing was opened: what fails here is the machine's, not the deploy's.
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BrowserUnavailable(f"cannot start Chromium at {executable}: {message}; "
                                     f"{CHROMIUM_HINT}") from None
        try:
            context = browser.new_context()
            context.set_default_timeout(millis)
            listener = _Page(context, context.new_page(), _refuse(protected))
            run.console = listener.console
            for step in steps:
                seen = _step(listener, step, millis, PlaywrightError)
                run.pages.append(seen)
                if seen.problems:
                    run.failure = seen.problems[0]
                    run.screenshot = _screenshot(listener.page, PlaywrightError)
                    break
        except PlaywrightError as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            run.failure = run.failure or f"the browser failed: {message}"
        finally:
            with contextlib.suppress(PlaywrightError):
                browser.close()
    run.duration = time.monotonic() - started
    return run


def _refuse(protected: str | None) -> Callable[[str, str], str | None] | None:
    if protected is None:
        return None

    def refuse(method: str, url: str) -> str | None:
        if method in ("GET", "HEAD", "OPTIONS"):
            return None
        return f"environment '{protected}' is protected: {method} {url} refused (set " \
               f"'allow_write: true' on the check if the page must write)"

    return refuse


def main(argv: list[str]) -> int:
    """The browser's process: ``JOB`` (steps, timeout, executable, protected) in, ``RESULT``
    out, both JSON files."""
    job = json.loads(Path(argv[0]).read_text())
    try:
        run = _drive([PageStep(**step) for step in job["steps"]], job["timeout"],
                     job["executable"], job["protected"])
    except BrowserUnavailable as exc:
        result: dict[str, Any] = {"unavailable": str(exc)}
    else:
        result = {"pages": [dataclasses.asdict(seen) for seen in run.pages],
                  "console": run.console, "failure": run.failure,
                  "screenshot": base64.b64encode(run.screenshot).decode()
                  if run.screenshot else None}
    Path(argv[1]).write_text(json.dumps(result))
    return 0


def _step(listener: _Page, step: PageStep, millis: float, error: type[Exception]) -> PageSeen:
    page = listener.page
    listener.errors.clear()
    seen = PageSeen(url=step.url or page.url, status=None, load_time=None)
    within = f"within {millis / 1000:g}s"

    def attempt(what: str, action: Callable[[], Any]) -> bool:
        try:
            action()
            return True
        except error as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = f"not {within}" if "Timeout" in text else text.split(": ", 1)[-1]
            seen.problems.append(f"{what}: {reason}")
            return False

    def goto() -> None:
        assert step.url is not None
        response = page.goto(step.url, wait_until="load", timeout=millis)
        seen.status = response.status if response is not None else None

    def submit() -> None:
        with page.expect_navigation(wait_until="load", timeout=millis):
            page.click(step.submit, timeout=millis)

    actions: list[tuple[str, Callable[[], Any]]] = []
    if step.url is not None:
        actions.append((f"open {step.url}", goto))
    for selector, text in step.fill.items():
        actions.append((f"fill {selector}", functools.partial(page.fill, selector, text,
                                                              timeout=millis)))
    if step.click is not None:
        actions.append((f"click {step.click}", lambda: page.click(step.click, timeout=millis)))
    if step.submit is not None:
        actions.append((f"submit with {step.submit} and load the next page", submit))
    if step.wait_for is not None:
        actions.append((f"wait for {step.wait_for} to be visible",
                        lambda: page.wait_for_selector(step.wait_for, state="visible",
                                                       timeout=millis)))
    if step.wait_for_text is not None:
        actions.append((f"wait for the text {step.wait_for_text!r}",
                        lambda: page.get_by_text(step.wait_for_text).first.wait_for(
                            state="visible", timeout=millis)))
    for what, action in actions:
        if not attempt(what, action):
            break
    else:
        # What the page's scripts do once it has loaded (a fetch, then rendering) fails after
        # the load event: wait for the network to settle, for a bounded time (a page that
        # polls never settles, and that is not a failure).
        with contextlib.suppress(error):
            page.wait_for_load_state("networkidle", timeout=min(millis, _SETTLE_MILLIS))
    if step.url is not None or step.submit is not None:
        try:
            seen.load_time = page.evaluate(_LOAD_TIME)
        except error:
            seen.load_time = None
    seen.url = page.url
    if step.max_load is not None and seen.load_time is not None and \
            seen.load_time > step.max_load:
        seen.problems.append(f"the page loaded in {seen.load_time:.3f}s, over max_load "
                             f"{step.max_load:g}s")
    if seen.status is not None and seen.status >= 400:
        seen.problems.insert(0, f"the page answered {seen.status}")
    if step.no_console_errors:
        seen.problems.extend(listener.errors)
    return seen


def _screenshot(page: Any, error: type[Exception]) -> bytes | None:
    try:
        return bytes(page.screenshot(full_page=True, timeout=5000))
    except error:
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
