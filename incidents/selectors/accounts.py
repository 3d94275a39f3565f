"""Reads accounts: people for the admins' list, and API tokens."""

from django.contrib.auth import get_user_model
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
