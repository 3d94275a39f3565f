"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider.py): its ID tokens verified (a wrong
audience, issuer or signature refused), a provider that is down, the break-glass local accounts, and the settings.
Signing in through the browser is in tests/browser/test_sso_browser.py."""

import time
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.urls import reverse
from django.utils import timezone

from incidents import roles
from incidents.errors import PortalError
from incidents.models import AuditEvent
from incidents.services.accounts import user_roles_from_provider
from incidents.services.api_tokens import api_token_authenticate, api_token_create
from incidents.sso import ProviderBackend
from portal.settings.single_sign_on import PORTAL_ROLE_NAMES, sso_role_map
from tests.conftest import make_user
from tests.oidc_provider import CLIENT_ID, free_port

pytestmark = pytest.mark.django_db


def id_token_claims(provider, **changes) -> dict:
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "aud": CLIENT_ID,
        "sub": "ann",
        "iat": now,
        "exp": now + 300,
        "nonce": "the-nonce",
        "email": "ann@example.com",
    }
    return {**claims, **changes}


def verified(token: str) -> dict:
    """The token as the portal's backend verifies an ID token at the callback (mozilla-django-oidc's verify_token
    with the provider's JWKS, and the audience and issuer checks the portal adds)."""
    backend = ProviderBackend()
    backend._configure()
    return backend.verify_token(token, nonce="the-nonce")


def test_an_id_token_signed_by_the_provider_for_the_portal_is_accepted(sso):
    assert verified(sso.sign(id_token_claims(sso)))["sub"] == "ann"


def test_an_id_token_for_another_client_is_refused(sso):
    with pytest.raises(SuspiciousOperation, match="(?i)audience"):
        verified(sso.sign(id_token_claims(sso, aud="some-other-application")))


def test_an_id_token_with_a_bad_signature_is_refused(sso):
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SuspiciousOperation, match="(?i)signature"):
        verified(sso.sign(id_token_claims(sso), key=impostor))


def test_an_id_token_from_another_issuer_is_refused(sso):
    with pytest.raises(SuspiciousOperation, match="(?i)issuer"):
        verified(sso.sign(id_token_claims(sso, iss="https://login.example.net")))


def test_an_id_token_with_another_sign_in_s_nonce_is_refused(sso):
    with pytest.raises(SuspiciousOperation, match="(?i)nonce"):
        verified(sso.sign(id_token_claims(sso, nonce="someone-else-s-nonce")))


def test_the_login_page_offers_the_provider_and_the_break_glass_form(client, sso):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Test Identity" in page
    assert reverse("sso-start") in page
    assert "Break-glass sign-in" in page


def test_without_single_sign_on_the_login_page_is_as_before(client):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in page
    assert client.get(reverse("sso-start")).status_code == 404


def test_sign_in_starts_at_the_provider_with_pkce_and_a_nonce(client, sso):
    response = client.get(reverse("sso-start"))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{sso.issuer}/auth?")
    for parameter in ("code_challenge=", "code_challenge_method=S256", "nonce=", "state=", f"client_id={CLIENT_ID}"):
        assert parameter in location


def test_a_provider_that_is_down_shows_a_page_offering_the_break_glass_sign_in(client, sso, settings):
    settings.PORTAL_SSO_ISSUER = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    response = client.get(reverse("sso-start"))
    assert response.status_code == 503
    page = response.content.decode()
    assert "The sign-in service is not answering" in page
    assert f'href="{reverse("login")}"' in page
    assert "break-glass account" in page


def test_while_sso_is_configured_only_the_named_break_glass_accounts_sign_in_with_a_password(
    client, sso, django_user_model
):
    make_user(django_user_model, "brenda.glass", roles.ADMIN)
    make_user(django_user_model, "sam.support")
    refused = client.post(reverse("login"), {"username": "sam.support", "password": "a-long-test-password"})
    assert refused.status_code == 200
    assert "_auth_user_id" not in client.session
    failure = AuditEvent.objects.filter(action="auth.sign_in_failed").latest("id")
    assert failure.details["username"] == "sam.support"

    response = client.post(reverse("login"), {"username": "brenda.glass", "password": "a-long-test-password"})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="auth.signed_in").latest("id")
    assert event.actor.username == "brenda.glass"
    assert event.details == {"via": "login", "method": "break-glass local account"}


def test_the_break_glass_path_works_while_the_provider_is_down(client, sso, settings, django_user_model):
    settings.PORTAL_SSO_ISSUER = f"http://127.0.0.1:{free_port()}"
    make_user(django_user_model, "brenda.glass", roles.ADMIN)
    response = client.post(reverse("login"), {"username": "brenda.glass", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert client.get(reverse("incidents:user-list")).status_code == 200


def test_without_sso_every_local_account_signs_in_and_nothing_says_break_glass(client, django_user_model):
    make_user(django_user_model, "sam.support")
    response = client.post(reverse("login"), {"username": "sam.support", "password": "a-long-test-password"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="auth.signed_in").latest("id").details == {"via": "login"}


def test_roles_from_the_provider_replace_the_portal_roles_and_are_audited(django_user_model):
    for role in roles.ALL:
        Group.objects.get_or_create(name=role)
    other = Group.objects.create(name="not a portal role")
    user = make_user(django_user_model, "ann@example.com", roles.MANAGER)
    user.set_unusable_password()  # as single sign-on made it
    user.save()
    user.groups.add(other)
    user_roles_from_provider(username="ann@example.com", email="ann@example.com", role_names={roles.SUPPORT})
    assert set(user.groups.values_list("name", flat=True)) == {roles.SUPPORT, "not a portal role"}
    event = AuditEvent.objects.filter(action="user.updated").latest("id")
    assert event.details == {
        "user": "ann@example.com",
        "roles": {"from": [roles.MANAGER], "to": [roles.SUPPORT]},
        "via": "identity provider",
    }


def test_a_person_without_any_mapped_group_gets_no_account(django_user_model):
    assert user_roles_from_provider(username="nobody@example.com", email="", role_names=set()) is None
    assert not django_user_model.objects.filter(username="nobody@example.com").exists()


def test_the_role_map_names_the_portal_s_roles_and_refuses_others():
    assert PORTAL_ROLE_NAMES == roles.ALL
    assert sso_role_map("portal-support=support staff, portal-admins=admins") == {
        "portal-support": roles.SUPPORT,
        "portal-admins": roles.ADMIN,
    }
    with pytest.raises(ImproperlyConfigured, match="PORTAL_SSO_ROLE_MAP"):
        sso_role_map("portal-support=superusers")


def forged_callback(client):
    """The provider's callback with a code the provider never issued, for a sign-in this browser started."""
    client.get(reverse("sso-start"))
    state = next(iter(client.session["oidc_states"]))
    return client.get(reverse("sso-callback"), {"code": "forged-code", "state": state})


def test_refused_provider_sign_ins_are_audited_and_lock_nobody_out(client, sso, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        response = forged_callback(client)
        assert response.status_code == 403
        assert "You could not be signed in" in response.content.decode()
    refusals = AuditEvent.objects.filter(action="auth.sso_refused")
    assert refusals.count() == settings.AXES_FAILURE_LIMIT + 1
    assert "refused the sign-in" in refusals.latest("id").details["reason"]
    # No generic failed sign-in besides (the callback records its own, with the reason).
    assert not AuditEvent.objects.filter(action="auth.sign_in_failed").exists()


def test_single_sign_on_never_takes_over_a_local_account_with_a_password(django_user_model):
    """A break-glass or admin-made account of the same name keeps its roles; the provider's person is refused."""
    glass = make_user(django_user_model, "brenda.glass", roles.ADMIN)
    with pytest.raises(PortalError, match="signs in with a password"):
        user_roles_from_provider(username="Brenda.Glass", email="", role_names={roles.SUPPORT})
    assert set(glass.groups.values_list("name", flat=True)) == {roles.ADMIN}


def test_a_provider_username_the_portal_cannot_hold_is_refused_not_a_crash(django_user_model):
    for name in ("x" * 151 + "@example.com", "ann\u202e@example.com"):
        with pytest.raises(PortalError):
            user_roles_from_provider(username=name, email="", role_names={roles.SUPPORT})
    assert not django_user_model.objects.filter(username__startswith="x" * 10).exists()


def test_a_provider_persons_api_token_stops_when_their_last_sign_in_is_older_than_a_session(
    django_user_model, settings
):
    settings.PORTAL_SSO_ENABLED = True
    person = user_roles_from_provider(username="pat@example.com", email="", role_names={roles.SUPPORT})
    person.last_login = timezone.now()
    person.save(update_fields=["last_login"])
    _token, secret = api_token_create(owner=person, name="alerting")
    assert api_token_authenticate(secret=secret).owner == person

    person.last_login = timezone.now() - timedelta(seconds=settings.PORTAL_SSO_MAX_SESSION_AGE + 60)
    person.save(update_fields=["last_login"])
    with pytest.raises(PortalError, match="sign in to the portal again"):
        api_token_authenticate(secret=secret)
