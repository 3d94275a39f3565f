"""Reads accounts: people for the admins' list, API tokens, and what the audit trail tells of an account or group."""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db.models import QuerySet

from .. import roles, validators
from ..models import ApiToken


def users_for_administration() -> QuerySet:
    return get_user_model().objects.prefetch_related("groups").order_by("username")


def username_taken_by(*, username: str, exclude_user_id: int | None = None) -> str | None:
    """The existing username that counts as the same as `username` (validators.username_key: regardless of case and
    compatibility forms), if any. Read in full: accounts are made a few times a month, and casefold ("ß" is "ss")
    goes beyond what the database's LOWER() can compare."""
    key = validators.username_key(username)
    users = get_user_model().objects.all()
    if exclude_user_id is not None:
        users = users.exclude(pk=exclude_user_id)
    names = users.values_list("username", flat=True)
    return next((name for name in names.iterator() if validators.username_key(name) == key), None)


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).select_related("revoked_by")


def api_tokens_all() -> QuerySet[ApiToken]:
    """Every token of every user, for admins."""
    return ApiToken.objects.select_related("owner", "revoked_by")


def api_token_get_for(*, user, token_id: int) -> ApiToken | None:
    """A token its owner may manage; admins may manage anyone's."""
    tokens = api_tokens_all() if roles.is_admin(user) else api_tokens_of(user=user)
    return tokens.filter(pk=token_id).first()


@dataclass(frozen=True)
class AccountState:
    """What the audit trail records of an account or a group at one moment, as stored in the database.

    `name` is the username or the group's name; `values` every attribute that grants or describes access. A
    password appears only as its stored hash, to tell that it changed: it is never shown nor recorded."""

    name: str
    values: dict[str, Any]
    password_hash: str = field(default="", repr=False)
    password_usable: bool = False


def _permission_names(permissions: QuerySet) -> list[str]:
    return sorted(
        f"{app}.{codename}" for app, codename in permissions.values_list("content_type__app_label", "codename")
    )


def account_state(*, user: User) -> AccountState:
    """The account's identity, flags, groups and permissions as the database holds them now."""
    return AccountState(
        name=user.get_username(),
        values={
            "username": user.get_username(),
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "is_active": user.is_active,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "permissions": _permission_names(user.user_permissions.all()),
        },
        password_hash=user.password,
        password_usable=user.has_usable_password(),
    )


def group_state(*, group: Group) -> AccountState:
    """A group's name and permissions (the portal's roles are groups) as the database holds them now."""
    return AccountState(
        name=group.name,
        values={"name": group.name, "permissions": _permission_names(group.permissions.all())},
    )
