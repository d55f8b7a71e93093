"""The release report as a release manager reads it: the HTML report of a failing demo run,
rendered in headless Chromium, shows without clicking through which environment failed, which
checks and why, the evidence, and what the rollback did. The screenshots in the docs are the
ones this test takes (``DEPLOYCHECK_SCREENSHOTS=docs/images``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from conftest import Project, copy_repo_suites, runpytest
from pytest_deploycheck.demo.server import DemoServer
from pytest_deploycheck.report import html as htmlreport
from pytest_deploycheck.runtime.browser import chromium_path

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("DEPLOYCHECK_TOOLS", REPO / ".tools" / "node"))
WAIT = 15_000  # milliseconds for the report's page to show something
expect.set_options(timeout=WAIT)


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(os.environ), headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [])
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 860})
            view.set_default_timeout(WAIT)
            yield view
        finally:
            browser.close()


def shoot(page: Page, folder: Path, name: str) -> None:
    """A screenshot of what the page shows, kept with the test's files (and in
    ``$DEPLOYCHECK_SCREENSHOTS`` when set)."""
    path = folder / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get("DEPLOYCHECK_SCREENSHOTS"):
        shutil.copyfile(path, Path(os.environ["DEPLOYCHECK_SCREENSHOTS"]) / path.name)


def open_result(page: Page, title: str, *groups: str) -> None:
    """Open the result ``title``, opening the tree's ``groups`` first (a group opens by itself
    only when something in it failed)."""
    for group in groups:
        page.locator("[data-testid=tree-section-title]").get_by_text(group, exact=True).click()
    page.locator("[data-testid=tree-leaf-title]", has_text=title).first.click()
    expect(page.locator("[data-testid=test-result-info-title]", has_text=title)
           .or_(page.get_by_role("heading", name=title))).to_be_visible()


def failing_demo_report(project: Project, demo: DemoServer,
                        monkeypatch: pytest.MonkeyPatch) -> Path:
    """The repository's gate against the demo with its database unhealthy (and the 503s
    that made its error rate), under xdist, rendered to one HTML file."""
    url = f"http://127.0.0.1:{demo.server_port}"
    monkeypatch.setenv("DEPLOYCHECK_TOOLS", str(TOOLS))
    monkeypatch.setenv("DEPLOY_VERSION", "1.2.3")
    monkeypatch.setenv("DEPLOYCHECK_DEPLOY_ID", "release-1.2.3")
    monkeypatch.setenv("DEMO_PORT", str(demo.server_port))
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
                        "GITHUB_REPOSITORY": "acme/api", "GITHUB_SHA": "0" * 40,
                        "GITHUB_RUN_ID": "4242",
                        "GITHUB_STEP_SUMMARY": str(project.path / "summary.md")}.items():
        monkeypatch.setenv(name, value)
    httpx.post(f"{url}/admin/faults", json={"unhealthy": ["database"]}).raise_for_status()
    for _ in range(12):
        assert httpx.get(f"{url}/health").status_code == 503
    copy_repo_suites(project)
    result = runpytest(project.pytester, "--env=local", "--no-start", "-p", "xdist", "-n", "2",
                       "--alluredir=allure-results", "--clean-alluredir")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["local: rolled_back (*)"])
    report = project.path / "deploy-gate.html"
    assert htmlreport.main([str(project.path / "allure-results"), "-o", str(report),
                            "--name", "Deploy 1.2.3"]) == 0
    return report


def test_the_release_report_of_a_failing_deploy(project: Project, demo: DemoServer,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 page: Page, tmp_path: Path) -> None:
    report = failing_demo_report(project, demo, monkeypatch)
    page.goto(report.as_uri())

    # The headline: the environment and its verdict, with the counts.
    expect(page.get_by_text("Deploy 1.2.3: local rolled_back (")).to_be_visible()
    # The tree: environment, then suite, then kind; no file paths.
    sections = page.locator("[data-testid=tree-section-title]")
    expect(sections.first).to_have_text("local")
    titles = sections.all_inner_texts()
    # (the groups with a failure open, down to the kind)
    assert titles.index("control-plane-api") + 1 == titles.index("health"), titles
    assert titles.index("post-deploy-metrics") + 1 == titles.index("metric"), titles
    assert {"api-smoke", "predeploy", "deploy gate"} <= set(titles), titles
    assert not [t for t in titles if t.endswith(".yaml") or t == "suites"], titles
    # The rollback in a line, among the first facts of the overview.
    body = page.inner_text("body")
    assert "local.rollback" in body
    assert "local.rollback\nrolled back and verified\n" in body
    assert "local.rollback actions\nredeploy previous release: succeeded in " in body
    assert "pytest_deploycheck." not in body
    page.get_by_text("Deploy 1.2.3: local rolled_back (").scroll_into_view_if_needed()
    shoot(page, tmp_path, "report-overview")
    page.locator("[data-testid=tree-section-title]").get_by_text(
        "control-plane-api", exact=True).scroll_into_view_if_needed()
    shoot(page, tmp_path, "report-tree")

    # Categories: failures by kind, each by environment.
    page.get_by_role("button", name="Categories").first.click()
    expect(page.get_by_text("Health gate failures")).to_be_visible()
    expect(page.get_by_text("Metric gate failures")).to_be_visible()
    assert "Product errors" not in page.inner_text("body")
    shoot(page, tmp_path, "report-categories")

    # A failed check: why, the request and the response, without the plugin's internals.
    page.goto(report.as_uri())
    open_result(page, "health endpoint reports healthy")
    body = page.inner_text("body")
    assert "health check 'health endpoint reports healthy' failed in environment 'local'" \
        in body
    assert "GET http://127.0.0.1:" in body and "-> 503" in body
    assert "FAILED json checks.*: expected every element" in body
    assert "Category: Health gate failures" in body
    assert "pytest_deploycheck." not in body and "CheckFailed" not in body
    shoot(page, tmp_path, "report-failed-check")

    # The metric check's chart: the breaching sample, the threshold, the observation's start.
    page.goto(report.as_uri())
    open_result(page, "error rate stays under 1% while we watch")
    body = page.inner_text("body")
    assert "measurement 1 at " in body and "BREACH < 1%" in body
    page.locator("[data-testid=test-result-attachment-header]", has_text="chart").click()
    chart = page.locator("[data-testid=test-result-attachment]", has_text="chart") \
        .locator("img")
    expect(chart).to_be_visible()
    assert chart.evaluate("image => image.naturalWidth") == 720  # the SVG, drawn
    chart.scroll_into_view_if_needed()
    shoot(page, tmp_path, "report-chart")

    # The rollback: which checks triggered it, what each action did and how long it took.
    page.goto(report.as_uri())
    open_result(page, "rollback of local", "deploy gate", "rollback")
    # (the description is a page of its own, in a frame)
    description = page.frame_locator("iframe").first.locator("body")
    expect(description).to_contain_text("Verdict: rolled_back")
    body = description.inner_text()
    assert "deploy-comparison::the previous release is live again[local]: VERIFIED" in body
    assert "control-plane-api::health endpoint reports healthy[local]" in body
    assert "post-deploy-metrics::error rate stays under 1% while we watch[local]" in body
    assert "command redeploy previous release: succeeded in" in body
    page.get_by_text("Description", exact=True).scroll_into_view_if_needed()
    shoot(page, tmp_path, "report-rollback")


STYLE = """body { font: 14px/1.5 -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif;
  max-width: 1012px; margin: 24px auto; color: #1f2328; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d1d9e0; padding: 6px 13px; text-align: left; }
tr:nth-child(2n) { background: #f6f8fa; } code { background: #eff1f3; padding: 2px 4px; }
h2, h3 { border-bottom: 1px solid #d1d9e0; padding-bottom: 4px; }"""


def test_the_step_summary_of_a_failing_deploy(project: Project, demo: DemoServer,
                                              monkeypatch: pytest.MonkeyPatch,
                                              page: Page, tmp_path: Path) -> None:
    """The job's step summary, as GitHub renders Markdown: the gate, its duration, the
    failed checks with their reasons and lines, and the rollback's actions."""
    import markdown

    failing_demo_report(project, demo, monkeypatch)
    text = (project.path / "summary.md").read_text()
    html = tmp_path / "summary.html"
    html.write_text(f"<html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"
                    f"{markdown.markdown(text, extensions=['tables'])}</body></html>")
    page.goto(html.as_uri())
    expect(page.get_by_role("heading", level=2)).to_contain_text(
        "deploycheck: pre-deploy and post-deploy gate of local (")
    rows = page.locator("table").first.locator("tr")
    expect(rows.nth(1)).to_contain_text("local ❌ rolled_back")
    failed = page.locator("h3", has_text="local: failed checks and warnings")
    expect(failed).to_be_visible()
    body = page.inner_text("body")
    assert "control-plane-api::health endpoint reports healthy[local]\thealth\trollback\t" \
        "suites/control-plane-health.yaml:6\tstatus: expected 200, got 503" in body, body
    assert "local: rollback (auto)\n\nTriggered by 2 failed check(s): control-plane-api::" \
        "health endpoint reports healthy[local], post-deploy-metrics::error rate stays under " \
        "1% while we watch[local]." in body, body
    assert "redeploy previous release\tcommand\tsucceeded\t" in body, body
    assert "deploy-comparison::the previous release is live again[local]: VERIFIED (passed)" \
        in body, body
    assert "error rate stays under 1% while we watch[local]\tfailed\t1 of 3\t1\t0\t" in body
    link = page.get_by_role("link", name="suites/control-plane-health.yaml:6")
    assert link.get_attribute("href") == (
        f"https://github.com/acme/api/blob/{'0' * 40}/suites/control-plane-health.yaml#L6")
    shoot(page, tmp_path, "step-summary")
