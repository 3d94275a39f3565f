"""Signing in through the identity provider in a browser: the real oidc-provider's login page, the portal's pages
each role reaches, a group removed at the provider, a disabled account, and signing out of both."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone
from playwright.sync_api import Page, expect

from incidents import roles
from incidents.models import AuditEvent


@pytest.fixture
def tab(browser, live_server, sso):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def sign_in(page: Page, live_server, account: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Sign in with Test Identity").click()
    # The provider's own login page (devInteractions: any password).
    page.locator("input[name=login]").fill(account)
    page.locator("input[name=password]").fill("any password")
    page.locator("button[type=submit]").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    # The provider asks whether to end its session too.
    page.get_by_role("button", name="Yes, sign me out").click()


def test_each_role_reaches_its_pages_after_signing_in_through_the_provider(tab, live_server, sso):
    sso.set_account("ann", groups=["portal-support", "unrelated-team"])
    sign_in(tab, live_server, "ann")
    expect(tab).to_have_url(f"{live_server.url}/declare/")
    assert tab.goto(f"{live_server.url}/declarations/summary/").status == 403
    assert tab.goto(f"{live_server.url}/users/").status == 403

    person = get_user_model().objects.get(username="ann@example.com")
    assert set(person.groups.values_list("name", flat=True)) == {roles.SUPPORT}
    assert not person.has_usable_password()
    event = AuditEvent.objects.filter(action="auth.signed_in").latest("id")
    assert (event.actor, event.details) == (person, {"via": "sso-callback", "method": "single sign-on"})

    sso.set_account("ada", groups=["portal-admins"])
    tab.context.clear_cookies()
    sign_in(tab, live_server, "ada")
    expect(tab).to_have_url(f"{live_server.url}/declare/")
    assert tab.goto(f"{live_server.url}/users/").status == 200
    assert tab.goto(f"{live_server.url}/declarations/summary/").status == 200


def test_the_session_is_bounded_by_the_configured_age(tab, live_server, sso, settings):
    settings.PORTAL_SSO_MAX_SESSION_AGE = 600
    sso.set_account("ann", groups=["portal-support"])
    sign_in(tab, live_server, "ann")
    expect(tab).to_have_url(f"{live_server.url}/declare/")
    cookie = next(c for c in tab.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    session = Session.objects.get(session_key=cookie["value"])
    remaining = (session.expire_date - timezone.now()).total_seconds()
    assert 0 < remaining <= 600


def test_a_group_removed_at_the_provider_takes_the_role_away_at_the_next_sign_in(tab, live_server, sso):
    sso.set_account("mo", groups=["portal-support", "portal-managers"])
    sign_in(tab, live_server, "mo")
    expect(tab).to_have_url(f"{live_server.url}/declare/")
    assert tab.goto(f"{live_server.url}/declarations/summary/").status == 200

    sso.set_account("mo", groups=["portal-support"])
    tab.goto(f"{live_server.url}/declare/")
    sign_out(tab)
    expect(tab).to_have_url(f"{live_server.url}/accounts/login/")
    # Signed out of the provider too: signing in again asks for the login again.
    sign_in(tab, live_server, "mo")
    expect(tab).to_have_url(f"{live_server.url}/declare/")
    assert tab.goto(f"{live_server.url}/declarations/summary/").status == 403

    change = AuditEvent.objects.filter(action="user.updated").latest("id")
    assert change.details == {
        "user": "mo@example.com",
        "roles": {"from": [roles.MANAGER, roles.SUPPORT], "to": [roles.SUPPORT]},
        "via": "identity provider",
    }


def test_an_account_disabled_at_the_provider_cannot_sign_in(tab, live_server, sso):
    sso.set_account("dee", groups=["portal-admins"], disabled=True)
    sign_in(tab, live_server, "dee")
    expect(tab.get_by_role("heading", name="You could not be signed in")).to_be_visible()
    expect(tab.get_by_role("link", name="Sign in with a break-glass account")).to_be_visible()
    assert tab.goto(f"{live_server.url}/declare/").url.startswith(f"{live_server.url}/accounts/login/")
    assert not get_user_model().objects.filter(username="dee@example.com").exists()
    refusal = AuditEvent.objects.filter(action="auth.sso_refused").latest("id")
    assert "access_denied" in refusal.details["reason"]


def test_a_person_without_a_portal_group_is_refused_and_the_refusal_recorded(tab, live_server, sso):
    sso.set_account("zed", groups=["finance"])
    sign_in(tab, live_server, "zed")
    expect(tab.get_by_role("heading", name="You could not be signed in")).to_be_visible()
    refusal = AuditEvent.objects.filter(action="auth.sso_refused").latest("id")
    assert refusal.details["username"] == "zed@example.com"
    assert "No provider group" in refusal.details["reason"]


def test_an_unverified_e_mail_address_does_not_become_that_address_s_account(tab, live_server, sso, django_user_model):
    django_user_model.objects.create_user(username="vic@example.com", password="a-long-test-password")
    sso.set_account("vic", groups=["portal-admins"], email_verified=False)
    sign_in(tab, live_server, "vic")
    expect(tab.get_by_role("heading", name="You could not be signed in")).to_be_visible()
    assert not django_user_model.objects.get(username="vic@example.com").groups.exists()
    assert "not verified" in AuditEvent.objects.filter(action="auth.sso_refused").latest("id").details["reason"]
