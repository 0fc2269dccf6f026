"""Browser tests: Playwright driving Debian's headless Chromium against pytest-django's
live_server. Every page's console errors and uncaught exceptions are collected and must stay
empty; a failing test leaves a screenshot in test-artifacts/."""

import os
from pathlib import Path

import pytest

from tests.web.conftest import tiny_pair  # noqa: F401  (shared fixture)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "pw-for-tests-only"


def pytest_collection_modifyitems(items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django's ORM calls made by the
    # test itself (never concurrently with the loop) are safe, so lift the async guard here.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _launched(sync_playwright)
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def _launched(sync_playwright):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def live_server(_collected_static):
    """pytest-django's live server, except that static files are served as in production: by
    WhiteNoise from the collected STATIC_ROOT (hashed names, gzip, cache headers), not by the
    staticfiles finders, which know nothing of hashed names."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer(os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS", "localhost"), start=False)
    server.thread.static_handler = lambda application: application
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser_var(settings, tmp_path):
    """Runs executed by the live server's in-process workers keep their files in this test's VAR_DIR."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.LETHE_DEVICE = "cpu"
    settings.LETHE_EXECUTOR = "inprocess"
    settings.LETHE_HEARTBEAT_SECONDS = 0.2
    return settings.VAR_DIR


@pytest.fixture
def page(request, chromium, live_server, transactional_db, browser_var):
    from jobs.executors import inprocess_executor_shutdown
    from jobs.models import Run, RunStatus

    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(f"{page.url}: {message.text}"))
    page.on("pageerror", lambda error: page.console_errors.append(f"{page.url}: {error}"))
    # Content-Security-Policy violations, whatever the browser prints for them, count as errors.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', event => console.error(`CSP violation: ${event.violatedDirective} by ${event.sourceFile || event.blockedURI}`))"
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    # In-process workers must stop before the tables are flushed under them.
    Run.objects.filter(status=RunStatus.RUNNING).update(cancel_requested=True)
    inprocess_executor_shutdown(wait=True)


def sign_in(page, username, password=PASSWORD):
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
