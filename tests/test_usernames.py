"""A username cannot pass for another account's: not by capitals, full-width forms or look-alike letters, whichever
way the account is made."""

import importlib

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from incidents import roles
from incidents.forms.accounts import AdminUserChangeForm
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-passphrase-42"
case_insensitive = importlib.import_module("incidents.migrations.0009_username_case_insensitive")


@pytest.fixture
def admin_account(django_user_model):
    return make_user(django_user_model, "admin", roles.ADMIN)


def create_on_users_page(client, username):
    return client.post("/users/new/", {"username": username, "password": PASSWORD, "roles": [roles.SUPPORT]})


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("Admin", "The account “admin” already exists"),
        ("ADMIN", "The account “admin” already exists"),
        ("\uff21\uff44\uff4d\uff49\uff4e", "The account “admin” already exists"),  # full-width "Admin"
        ("\u0430dmin", "“\u0430” (CYRILLIC SMALL LETTER A) looks like the letter “a”"),
        ("\u0251dmin", "(LATIN SMALL LETTER ALPHA) looks like the letter “a”"),
        ("\u0391lice", "(GREEK CAPITAL LETTER ALPHA) looks like the letter “A”"),
        ("adm\u0456n", "(CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I) looks like the letter “i”"),
    ],
)
def test_a_name_that_passes_for_another_is_refused_on_the_users_page(
    portal_admin_client, admin_account, username, message
):
    before = User.objects.count()
    response = create_on_users_page(portal_admin_client, username)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert User.objects.count() == before


@pytest.mark.parametrize("username", ["josé.garcía", "jürgen", "søren", "田中", "adm1n", "admin2"])
def test_names_in_other_letters_that_look_like_no_other_are_welcome(portal_admin_client, admin_account, username):
    response = create_on_users_page(portal_admin_client, username)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.filter(username=username).exists()


def test_the_database_refuses_a_name_that_differs_only_in_capitals(admin_account):
    """Whatever writes the account (createsuperuser, a shell, a script): the unique index on LOWER(username)."""
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="Admin", password=PASSWORD)
    assert list(User.objects.values_list("username", flat=True)) == ["admin"]


def test_djangos_admin_refuses_them_when_adding_an_account(django_user_model, admin_account):
    superuser = make_user(django_user_model, "root.admin", roles.ADMIN)
    superuser.is_staff = superuser.is_superuser = True
    superuser.save()
    from django.test import Client

    client = Client()
    client.force_login(superuser)
    response = client.post(
        "/admin/auth/user/add/",
        {"username": "\u0430dmin", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "looks like the letter “a”" in response.content.decode()
    response = client.post(
        "/admin/auth/user/add/",
        {"username": "ADMIN", "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200
    assert "The account “admin” already exists" in response.content.decode()
    assert not User.objects.filter(username__in=["\u0430dmin", "ADMIN"]).exists()


def test_djangos_admin_refuses_a_rename_into_anothers_name_but_not_a_change_of_ones_own_capitals(
    support_user, admin_account
):
    rename = AdminUserChangeForm(data={"username": "Admin"}, instance=support_user)
    rename.is_valid()
    assert rename.errors["username"] == [
        "The account “admin” already exists: usernames that differ only in capitals count as the same."
    ]
    own = AdminUserChangeForm(data={"username": "Sam.Support"}, instance=support_user)
    own.is_valid()
    assert "username" not in own.errors


def test_setup_demo_does_not_make_a_double_of_an_existing_account(django_user_model, settings):
    settings.PORTAL_LOCAL_MODE = True
    make_user(django_user_model, "Admin", roles.ADMIN)
    with pytest.raises(CommandError, match="“Admin” already exists"):
        call_command("setup_demo", password=PASSWORD)
    assert not User.objects.filter(username="admin").exists()


def test_the_migration_names_existing_doubles_instead_of_renaming_anyone(django_user_model):
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {case_insensitive.INDEX}")  # as before the migration (rolled back after the test)
    make_user(django_user_model, "admin")
    make_user(django_user_model, "Admin")
    from django.apps import apps

    with pytest.raises(RuntimeError, match="Admin / admin"):
        case_insensitive.refuse_existing_duplicates(apps, None)
    assert sorted(User.objects.values_list("username", flat=True)) == ["Admin", "admin"]
