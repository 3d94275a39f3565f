"""Browser tests: Debian's Chromium driven by Playwright against pytest-django's live server, which shares the
test database with the real Celery worker (transactional tests, so that both see committed rows)."""

import os
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from playwright.sync_api import Page, sync_playwright

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Violations a person would notice (axe's "serious" and "critical"); "moderate"/"minor" are reported, not fatal.
BLOCKING_IMPACTS = {"serious", "critical"}


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(item.fspath).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.django_db(transaction=True))


@pytest.fixture(scope="package")
def browser():
    """One Chromium for all browser tests, closed when they are done.

    Playwright's sync API keeps an event loop running in the test thread, which Django's async-safety check
    mistakes for async code; the tests' ORM calls are synchronous, so the check is lifted while Chromium is open
    (and only then: subprocesses started later, such as `manage.py check --deploy`, must not inherit it).
    """
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


class PageProblems:
    """What the browser complained about: CSP violations and script errors must never happen."""

    def __init__(self, page: Page):
        self.messages: list[str] = []
        page.on(
            "console", lambda message: message.type == "error" and self.messages.append(f"{message.text} ({page.url})")
        )
        page.on("pageerror", lambda error: self.messages.append(f"page error: {error}"))

    def csp_violations(self) -> list[str]:
        return [text for text in self.messages if "Content Security Policy" in text]


def _login(context, client, user, live_server) -> None:
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": live_server.url}])


def _new_page(request, browser, client, user, live_server, **context_options):
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 900}, **context_options})
    context.set_default_timeout(10_000)
    _login(context, client, user, live_server)
    page = context.new_page()
    problems = PageProblems(page)
    page.problems = problems

    def finish():
        # Every page a test visited must be free of CSP violations and script errors.
        context.close()
        assert problems.csp_violations() == [], problems.csp_violations()
        assert [text for text in problems.messages if "page error" in text] == []

    request.addfinalizer(finish)
    return page


@pytest.fixture
def page(request, browser, client, support_user, live_server, celery_worker) -> Page:
    """A logged-in support person's tab, with JavaScript."""
    return _new_page(request, browser, client, support_user, live_server)


@pytest.fixture
def page_without_js(request, browser, client, support_user, live_server, celery_worker) -> Page:
    return _new_page(request, browser, client, support_user, live_server, java_script_enabled=False)


@pytest.fixture
def open_as(request, browser, live_server, celery_worker, client):
    """Another person's tab: open_as(user)."""

    def open_page(user, **options):
        from django.test import Client

        return _new_page(request, browser, Client(), user, live_server, **options)

    return open_page


def screenshot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": to hide the caret Playwright adds a <style> to the page, which the portal's CSP refuses and
    # reports — a violation of the test's own making, caught (or not) depending on timing.
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page, caret="initial")


def assert_accessible(page: Page, label: str) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    results = Axe().run(page)
    blocking = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(
            node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
            for node in violation["nodes"][:5]
        )
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
    assert blocking == [], f"{label}: " + "\n".join(blocking)
