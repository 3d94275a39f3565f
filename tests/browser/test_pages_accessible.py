"""Every page of the portal, as the people who use it see it: no serious or critical axe-core violation.

Each page is also saved to test-artifacts/screenshots/ (named `a11y-<role>-<page>.png`) for a look by eye.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import roles
from incidents.models import Declaration
from tests.browser.conftest import assert_accessible, screenshot
from tests.conftest import make_user
from tests.helpers import make_declaration

# (name, path, expected status); {plan} is a response plan's id. Managers meet the 403 page on the admins' pages.
MANAGER_PAGES = [
    ("declarations", "/declarations/?drills=include", 200),
    ("declare", "/declare/", 200),
    ("declaration", "/declarations/{declaration}/", 200),
    ("declarations-filter-error", "/declarations/?date_from=2026-10-10&date_to=2026-10-01&q=ab", 200),
    ("summary", "/declarations/summary/", 200),
    ("tokens", "/tokens/", 200),
    ("password", "/accounts/password/", 200),
    ("api-docs", "/api/docs/", 200),
    ("403", "/users/", 403),
    ("404", "/declarations/999999999/", 404),
]
ADMIN_PAGES = [
    *[page for page in MANAGER_PAGES if page[0] != "403"],
    ("plans", "/plans/", 200),
    ("plans-search", "/plans/?q=payment", 200),
    ("impact-levels", "/plans/impact-levels/", 200),
    ("plan-edit", "/plans/{plan}/", 200),
    ("users", "/users/", 200),
    ("user-new", "/users/new/", 200),
]


@pytest.fixture
def history(plans, support_user, other_support_user):
    """A few declarations of each state and impact, spread over the last days, so lists and charts have content."""
    now = timezone.now()
    made = []
    states = [Declaration.State.STARTED, Declaration.State.FAILED, Declaration.State.QUEUED, Declaration.State.STARTING]
    for number in range(12):
        declaration = make_declaration(
            declared_by=(support_user, other_support_user)[number % 2],
            plan=list(plans.values())[number % len(plans)],
            title=f"Checkout errors, wave {number}",
            impact=number % 5 + 1,
            state=states[number % len(states)],
            created_at=now - timedelta(days=number, hours=number),
            failure_reason="AWS refused the request (AccessDeniedException)." if number % 4 == 1 else "",
            aws_status=("OPEN", "RESOLVED")[number % 2] if number % 4 == 0 else "",
            is_drill=number == 4,
        )
        made.append(declaration)
    return made


def visit(page, live_server, path, expected_status):
    response = page.goto(live_server.url + path)
    assert response.status == expected_status, f"{path}: {response.status}"
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("role", [roles.ADMIN, roles.MANAGER])
def test_every_page_is_accessible_to_managers_and_admins(
    open_as, live_server, django_user_model, plans, history, role, scheme
):
    """In the light and the dark colour scheme (prefers-color-scheme), which the stylesheet follows."""
    user = make_user(django_user_model, f"a11y.{role}", role)
    page = open_as(user, color_scheme=scheme)
    assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (scheme == "dark")
    plan_id = plans["website-outage"].pk
    pages = MANAGER_PAGES if role == roles.MANAGER else ADMIN_PAGES
    for name, path, status in pages:
        visit(page, live_server, path.format(plan=plan_id, declaration=history[0].pk), status)
        if name == "declarations":
            assert page.locator("table tbody tr").count() >= 10, "the list has rows to check"
        if name == "declarations-filter-error":
            assert page.locator(".errorlist, .field-error, [aria-invalid=true]").count() >= 1
        if scheme == "dark":
            # The page really is dark: the stylesheet's dark palette applies.
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
        assert_accessible(page, f"{role} ({scheme}): {path}")
        screenshot(page, f"a11y-{role}-{name}" + ("-dark" if scheme == "dark" else ""))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_login_page_is_accessible(browser, live_server, scheme):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, color_scheme=scheme)
    try:
        page = context.new_page()
        visit(page, live_server, "/accounts/login/?next=/declarations/", 200)
        assert page.locator("input[type=password]").count() == 1
        assert_accessible(page, f"login page ({scheme})")
        screenshot(page, "a11y-anonymous-login" + ("-dark" if scheme == "dark" else ""))
    finally:
        context.close()
