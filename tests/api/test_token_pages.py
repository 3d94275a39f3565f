"""The API tokens pages: people create (shown once), list and revoke their tokens; admins revoke anyone's."""

import re

import pytest
from django.test import Client

from incidents import roles
from incidents.models import ApiToken, AuditEvent
from tests.api.conftest import ApiClient, make_token
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
SECRET_RE = re.compile(r"ipt_[A-Za-z0-9_-]{40,}")


def test_a_new_tokens_secret_is_shown_once_and_works(support_client):
    response = support_client.post("/tokens/", {"name": "alerting runbook", "expires_in_days": "30"})

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0") and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    (secret,) = set(SECRET_RE.findall(page))
    assert "shown only this once" in page
    token = ApiToken.objects.get()
    assert (token.name, token.owner.username) == ("alerting runbook", "sam.support")
    assert 29 <= (token.expires_at - token.created_at).days <= 30

    later = support_client.get("/tokens/").content.decode()
    assert secret not in later
    assert "alerting runbook" in later and f"{token.prefix}…" in later
    assert ApiClient(Client(), secret).get("/api/responsePlans").status_code == 200

    event = AuditEvent.objects.get(action="api_token.created")
    assert (event.actor_label, event.details["name"], event.details["prefix"]) == (
        "sam.support",
        "alerting runbook",
        token.prefix,
    )
    assert secret not in str(event.details)


def test_a_token_needs_a_name(support_client):
    response = support_client.post("/tokens/", {"name": "  ", "expires_in_days": ""})
    assert "Name the token after what will use it" in response.content.decode()
    assert ApiToken.objects.count() == 0


def test_the_owner_revokes_a_token(support_client, support_user):
    secret = make_token(support_user, name="old script")
    token = ApiToken.objects.get()

    response = support_client.post(f"/tokens/{token.pk}/revoke/", follow=True)

    assert "Revoked “old script”" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == support_user
    assert ApiClient(Client(), secret).get("/api/responsePlans").status_code == 401
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.actor_label, event.details["owner"]) == ("sam.support", "sam.support")


def test_nobody_else_can_see_or_revoke_a_token(client, support_user, other_support_user):
    make_token(support_user, name="sams script")
    token = ApiToken.objects.get()
    client.force_login(other_support_user)

    assert "sams script" not in client.get("/tokens/").content.decode()
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    assert client.get("/tokens/all/").status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


def test_admins_see_and_revoke_anyones_token(client, django_user_model, support_user):
    admin = make_user(django_user_model, "ada.admin", roles.ADMIN)
    make_token(support_user, name="sams script")
    token = ApiToken.objects.get()
    client.force_login(admin)

    listing = client.get("/tokens/all/").content.decode()
    assert "sam.support" in listing and "sams script" in listing
    response = client.post(f"/tokens/{token.pk}/revoke/")

    assert response["Location"] == "/tokens/all/"
    token.refresh_from_db()
    assert token.revoked_by == admin
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert (event.actor_label, event.details["owner"]) == ("ada.admin", "sam.support")


def test_an_account_without_a_role_cannot_make_tokens(client, django_user_model):
    client.force_login(make_user(django_user_model, "nobody", role=None))
    assert client.get("/tokens/").status_code == 403
    assert client.post("/tokens/", {"name": "sneaky"}).status_code == 403
    assert ApiToken.objects.count() == 0


def test_creating_a_token_requires_the_csrf_token(support_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(support_user)
    assert client.post("/tokens/", {"name": "forged"}).status_code == 403
    assert ApiToken.objects.count() == 0


def test_operators_can_create_a_token_from_the_command_line(support_user):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_api_token", "sam.support", "--name", "deploy hook", stdout=out)
    secret = out.getvalue().strip()
    assert ApiClient(Client(), secret).get("/api/responsePlans").status_code == 200
    assert ApiToken.objects.get().name == "deploy hook"


# --- How many tokens one person may hold ----------------------------------------------------------------------


def test_a_person_may_hold_only_so_many_active_tokens(support_client, support_user, settings):
    """Tokens were unlimited, and with them the requests a person could make (each token had its own limit)."""
    settings.PORTAL_API_MAX_TOKENS = 2
    for name in ("first", "second"):
        support_client.post("/tokens/", {"name": name, "expires_in_days": "30"})

    response = support_client.post("/tokens/", {"name": "third", "expires_in_days": "30"})

    page = response.content.decode()
    assert "sam.support already has 2 active API tokens" in page
    assert "revoke one that is no longer used" in page
    assert not SECRET_RE.search(page)
    assert 'value="third"' in page  # what was typed stays in the form
    assert ApiToken.objects.count() == 2
    assert not AuditEvent.objects.filter(action="api_token.created", details__name="third").exists()


def test_revoked_and_expired_tokens_leave_room_for_new_ones(support_client, support_user, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.PORTAL_API_MAX_TOKENS = 2
    make_token(support_user, name="revoked")
    make_token(support_user, name="expired")
    support_client.post(f"/tokens/{ApiToken.objects.get(name='revoked').pk}/revoke/")
    ApiToken.objects.filter(name="expired").update(expires_at=timezone.now() - timedelta(seconds=1))

    for name in ("new one", "another"):
        response = support_client.post("/tokens/", {"name": name, "expires_in_days": "30"})
        assert SECRET_RE.search(response.content.decode())
    assert ApiToken.objects.count() == 4


def test_the_command_line_says_why_it_made_no_token(support_user, settings):
    from django.core.management import CommandError, call_command

    settings.PORTAL_API_MAX_TOKENS = 1
    make_token(support_user)
    with pytest.raises(CommandError, match="sam.support already has 1 active API token, the most one person may"):
        call_command("create_api_token", "sam.support", "--name", "one too many")
    assert ApiToken.objects.count() == 1
