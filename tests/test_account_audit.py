"""Who may do what, and who signed in, is on the record: every change to an account or a role, from the portal's
pages or Django's admin, and every sign-in, failed sign-in, lockout, sign-out and password change is an audit event
with the person and their address, and never a password or its hash."""

import json

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from incidents import roles
from incidents.models import AuditEvent
from tests.conftest import make_user

PASSWORD = "a-long-test-password"  # noqa: S105 - the test accounts' password (tests/conftest.py)
NEW_PASSWORD = "another-long-passphrase-71"  # noqa: S105


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def the_trail_as_text() -> str:
    return json.dumps(list(AuditEvent.objects.values("actor_label", "action", "details")))


def admin_change_form(user, **changes) -> dict:
    """The Django admin's change form for an account as a browser posts it back, with `changes` applied."""
    joined = timezone.localtime(user.date_joined)
    values = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
        "user_permissions": [],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        **changes,
    }
    # Unticked boxes are not sent at all.
    return {name: ("on" if value is True else value) for name, value in values.items() if value is not False}


@pytest.fixture
def superuser_client(django_user_model):
    """A superuser, as the demo's admin is: the only kind of account the Django admin lets change accounts."""
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    root.groups.add(Group.objects.get_or_create(name=roles.ADMIN)[0])
    client = Client()
    client.force_login(root)
    return client


# --- Changes made in the Django admin -------------------------------------------------------------------------


@pytest.mark.django_db
def test_making_someone_superuser_in_the_django_admin_is_recorded(superuser_client, support_user):
    response = superuser_client.post(
        f"/admin/auth/user/{support_user.pk}/change/",
        admin_change_form(support_user, is_staff=True, is_superuser=True),
    )
    assert response.status_code == 302, response.content[:500]
    support_user.refresh_from_db()
    assert support_user.is_superuser

    [event] = events("user.updated")
    assert event.actor_label == "root"
    assert event.ip_address == "127.0.0.1"
    assert event.details == {
        "user": "sam.support",
        "via": "Django admin",
        "is_staff": {"from": False, "to": True},
        "is_superuser": {"from": False, "to": True},
    }


@pytest.mark.django_db
def test_group_membership_changed_in_the_django_admin_is_recorded(superuser_client, support_user):
    admins = Group.objects.get(name=roles.ADMIN)
    response = superuser_client.post(
        f"/admin/auth/user/{support_user.pk}/change/",
        admin_change_form(support_user, groups=[str(admins.pk)]),
    )
    assert response.status_code == 302, response.content[:500]
    assert roles.is_admin(type(support_user).objects.get(pk=support_user.pk))

    [event] = events("user.updated")
    assert event.details["groups"] == {"from": [roles.SUPPORT], "to": [roles.ADMIN]}
    assert event.actor_label == "root"


@pytest.mark.django_db
def test_a_password_set_in_the_django_admin_is_recorded_without_the_password(superuser_client, support_user):
    response = superuser_client.post(
        f"/admin/auth/user/{support_user.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content[:500]
    support_user.refresh_from_db()
    assert support_user.check_password(NEW_PASSWORD)

    [event] = events("user.password_set")
    assert event.details == {"user": "sam.support", "via": "Django admin", "password": "set"}
    assert event.actor_label == "root"
    trail = the_trail_as_text()
    assert NEW_PASSWORD not in trail
    assert support_user.password not in trail


@pytest.mark.django_db
def test_an_account_added_and_deleted_in_the_django_admin_is_recorded(superuser_client, django_user_model):
    response = superuser_client.post(
        "/admin/auth/user/add/",
        {"username": "temp.person", "usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302, response.content[:500]
    [created] = events("user.created")
    assert created.details["user"] == "temp.person"
    assert created.details["password"] == "set"
    assert created.details["is_superuser"] is False
    assert created.details["via"] == "Django admin"

    person = django_user_model.objects.get(username="temp.person")
    response = superuser_client.post(f"/admin/auth/user/{person.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]
    assert not django_user_model.objects.filter(username="temp.person").exists()
    [deleted] = events("user.deleted")
    assert deleted.details == {"user": "temp.person", "via": "Django admin"}
    assert NEW_PASSWORD not in the_trail_as_text()


@pytest.mark.django_db
def test_groups_added_renamed_and_deleted_in_the_django_admin_are_recorded(superuser_client):
    response = superuser_client.post("/admin/auth/group/add/", {"name": "on-call", "permissions": []})
    assert response.status_code == 302, response.content[:500]
    group = Group.objects.get(name="on-call")
    response = superuser_client.post(f"/admin/auth/group/{group.pk}/change/", {"name": "on-call leads"})
    assert response.status_code == 302, response.content[:500]
    response = superuser_client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]

    created, updated, deleted = (events(f"group.{what}")[0] for what in ("created", "updated", "deleted"))
    assert created.details == {"group": "on-call", "via": "Django admin", "permissions": []}
    assert updated.details == {
        "group": "on-call leads",
        "via": "Django admin",
        "name": {"from": "on-call", "to": "on-call leads"},
    }
    assert deleted.details == {"group": "on-call leads", "via": "Django admin"}
    assert {created.actor_label, updated.actor_label, deleted.actor_label} == {"root"}


@pytest.mark.django_db
def test_a_role_group_cannot_be_renamed_or_deleted_in_the_django_admin(superuser_client):
    """Roles are these groups by name: renaming or deleting one would strip everyone in it of the role."""
    managers = Group.objects.get(name=roles.MANAGER)
    superuser_client.post(f"/admin/auth/group/{managers.pk}/change/", {"name": "leads", "permissions": []})
    assert superuser_client.post(f"/admin/auth/group/{managers.pk}/delete/", {"post": "yes"}).status_code == 403
    managers.refresh_from_db()
    assert managers.name == roles.MANAGER
    assert not events("group.updated")
    assert not events("group.deleted")


@pytest.mark.django_db
def test_a_form_the_admin_refuses_records_nothing(superuser_client, support_user):
    before = AuditEvent.objects.count()
    response = superuser_client.post(
        f"/admin/auth/user/{support_user.pk}/change/", admin_change_form(support_user, username="")
    )
    assert response.status_code == 200  # the form again, with its error
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_role_change_on_the_portals_own_page_is_recorded_once(portal_admin_client, support_user):
    response = portal_admin_client.post(f"/users/{support_user.pk}/", {"roles": [roles.MANAGER], "is_active": "on"})
    assert response.status_code == 302
    [event] = AuditEvent.objects.filter(action__startswith="user.")
    assert event.action == "user.updated"
    assert "via" not in event.details


# --- Signing in and out -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_in_is_recorded_with_the_address(client, support_user):
    response = client.post(reverse("login"), {"username": "sam.support", "password": PASSWORD})
    assert response.status_code == 302
    [event] = events("auth.signed_in")
    assert (event.actor_id, event.ip_address) == (support_user.pk, "127.0.0.1")
    assert event.details == {"via": "login"}


@pytest.mark.django_db
def test_signing_in_to_the_django_admin_is_recorded(client, django_user_model):
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302
    [event] = events("auth.signed_in")
    assert (event.actor_id, event.details) == (root.pk, {"via": "admin:login"})


@pytest.mark.django_db
def test_a_failed_sign_in_is_recorded_without_the_password(client, support_user):
    response = client.post(reverse("login"), {"username": "sam.support", "password": "guess-number-one"})
    assert response.status_code == 200
    [event] = events("auth.sign_in_failed")
    assert event.actor_id == support_user.pk
    assert event.ip_address == "127.0.0.1"
    assert event.details == {"username": "sam.support", "known_account": True, "via": "login"}
    assert "guess-number-one" not in the_trail_as_text()


@pytest.mark.django_db
def test_a_failed_sign_in_as_nobody_known_does_not_record_what_was_typed(client):
    """People type their password into the username field: an unknown name is not kept."""
    client.post(reverse("login"), {"username": "hunter2-my-password", "password": "whatever-it-is"})
    [event] = events("auth.sign_in_failed")
    assert event.actor_id is None
    assert event.details == {"known_account": False, "via": "login"}
    assert "hunter2" not in the_trail_as_text()


@pytest.mark.django_db
def test_a_lockout_is_recorded(client, support_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "sam.support", "password": f"guess-{attempt}"})
    [lockout] = events("auth.locked_out")
    assert lockout.actor_id == support_user.pk
    assert lockout.ip_address == "127.0.0.1"
    assert lockout.details == {"username": "sam.support", "known_account": True, "via": "login"}
    assert len(events("auth.sign_in_failed")) == settings.AXES_FAILURE_LIMIT

    # Even the right password is refused while locked; that attempt is on the record too.
    response = client.post(reverse("login"), {"username": "sam.support", "password": PASSWORD})
    assert response.status_code == 429
    assert len(events("auth.locked_out")) == 2
    assert not events("auth.signed_in")


@pytest.mark.django_db
def test_an_admin_lifting_a_lockout_in_the_django_admin_is_recorded(client, superuser_client, support_user, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "sam.support", "password": f"guess-{attempt}"})
    attempt = AccessAttempt.objects.get(username="sam.support")
    response = superuser_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]

    [event] = events("auth.lockout_cleared")
    assert event.actor_label == "root"
    assert event.details == {
        "username": "sam.support",
        "known_account": True,
        "address": "127.0.0.1",
        "via": "Django admin",
    }
    assert client.post(reverse("login"), {"username": "sam.support", "password": PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_signing_out_is_recorded(client, support_user):
    client.post(reverse("login"), {"username": "sam.support", "password": PASSWORD})
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    [event] = events("auth.signed_out")
    assert (event.actor_id, event.ip_address, event.details) == (support_user.pk, "127.0.0.1", {"via": "logout"})


# --- Changing one's own password ----------------------------------------------------------------------------


def password_form(current: str = PASSWORD, new: str = NEW_PASSWORD, again: str | None = None) -> dict:
    return {"old_password": current, "new_password1": new, "new_password2": new if again is None else again}


@pytest.mark.django_db
def test_the_password_page_looks_like_the_portal_and_is_linked_from_the_header(support_client):
    response = support_client.get(reverse("incidents:declare"))
    assert f'href="{reverse("incidents:password-change")}"' in response.content.decode()
    page = support_client.get(reverse("incidents:password-change"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Change your password" in html
    assert 'class="site-header"' in html  # the portal's own layout (base.html), not Django's
    for field in ("old_password", "new_password1", "new_password2"):
        assert f'name="{field}"' in html
    assert "no-store" in page["Cache-Control"]


@pytest.mark.django_db
def test_a_single_sign_on_account_without_a_password_is_not_offered_to_change_one(client, support_user, settings):
    support_user.set_unusable_password()  # as single sign-on makes its accounts
    support_user.save()
    client.force_login(support_user)
    header = client.get(reverse("incidents:declare")).content.decode()
    assert reverse("incidents:password-change") not in header
    page = client.get(reverse("incidents:password-change"))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"You sign in through {settings.PORTAL_SSO_PROVIDER_NAME}" in html
    assert 'name="old_password"' not in html
    refused = client.post(reverse("incidents:password-change"), password_form(current="", new=NEW_PASSWORD))
    assert refused.status_code == 403
    support_user.refresh_from_db()
    assert not support_user.has_usable_password()
    assert not events("auth.password_changed")


@pytest.mark.django_db
def test_changing_ones_password_is_recorded_and_ends_other_sessions(client, support_user):
    client.force_login(support_user)
    elsewhere = Client()
    elsewhere.force_login(support_user)

    response = client.post(reverse("incidents:password-change"), password_form())
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:password-change")
    assert "has been changed" in client.get(response["Location"]).content.decode()
    support_user.refresh_from_db()
    assert support_user.check_password(NEW_PASSWORD)

    [event] = events("auth.password_changed")
    assert (event.actor_id, event.ip_address, event.details) == (support_user.pk, "127.0.0.1", {"user": "sam.support"})
    trail = the_trail_as_text()
    assert NEW_PASSWORD not in trail
    assert PASSWORD not in trail

    assert client.get(reverse("incidents:declare")).status_code == 200  # this session stays signed in
    assert elsewhere.get(reverse("incidents:declare"))["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_a_person_without_a_role_can_change_their_password(client, django_user_model):
    nobody = make_user(django_user_model, "nobody", role=None)
    client.force_login(nobody)
    assert client.post(reverse("incidents:password-change"), password_form()).status_code == 302
    nobody.refresh_from_db()
    assert nobody.check_password(NEW_PASSWORD)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (password_form(current="not-my-password"), "old_password", "That is not your current password."),
        (password_form(again="something-else-entirely"), "new_password2", "didn’t match"),
        (password_form(new="12345678"), "new_password2", "too common"),
    ],
    ids=["wrong-current", "mismatch", "weak"],
)
def test_a_refused_password_change_says_why_at_the_field_and_changes_nothing(
    support_client, support_user, form, field, message
):
    response = support_client.post(reverse("incidents:password-change"), form)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    support_user.refresh_from_db()
    assert support_user.check_password(PASSWORD)
    assert not events("auth.password_changed")


@pytest.mark.django_db
def test_guessing_the_current_password_is_throttled_like_signing_in(support_client, support_user, settings):
    """A borrowed session cannot try passwords without limit: wrong current passwords count as failed sign-ins."""
    page = reverse("incidents:password-change")
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert support_client.post(page, password_form(current=f"guess-{attempt}")).status_code == 200
    locked = support_client.post(page, password_form(current="guess-last"))
    assert locked.status_code == 429
    assert support_client.post(page, password_form()).status_code == 429  # even the right one, while locked
    support_user.refresh_from_db()
    assert support_user.check_password(PASSWORD)
    failures = events("auth.sign_in_failed")
    assert {event.details["via"] for event in failures} == {"incidents:password-change"}
    assert events("auth.locked_out")
    # The login page is locked for this account from this address as well.
    assert Client().post(reverse("login"), {"username": "sam.support", "password": PASSWORD}).status_code == 429


# --- What is routed -----------------------------------------------------------------------------------------


UNDESIGNED = [
    "/accounts/password_reset/",
    "/accounts/password_reset/done/",
    "/accounts/reset/MQ/set-password/",
    "/accounts/reset/done/",
    "/accounts/password_change/",
    "/accounts/password_change/done/",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", UNDESIGNED)
def test_password_reset_and_djangos_undesigned_pages_are_not_routed(client, support_user, path):
    """The portal sends no e-mail: there is no reset to offer (an admin sets a new password instead)."""
    assert client.get(path).status_code == 404
    # As a reset form posts it: urlencoded (an anonymous multipart body is sent to sign in unread, uploads.py).
    form = "email=sam%40example.com"
    assert client.post(path, form, content_type="application/x-www-form-urlencoded").status_code == 404
    client.force_login(support_user)
    assert client.get(path).status_code == 404


@pytest.mark.django_db
def test_the_django_admins_password_page_leads_to_the_portals(superuser_client):
    for path in ("/admin/password_change/", "/admin/password_change/done/"):
        response = superuser_client.get(path)
        assert response.status_code == 302
        assert response["Location"] == reverse("incidents:password-change")
