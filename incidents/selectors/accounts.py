"""Reads accounts: people for the admins' list, and API tokens."""

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from .. import roles
from ..models import ApiToken


def users_for_administration() -> QuerySet:
    return get_user_model().objects.prefetch_related("groups").order_by("username")


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).select_related("revoked_by")


def api_tokens_all() -> QuerySet[ApiToken]:
    """Every token of every user, for admins."""
    return ApiToken.objects.select_related("owner", "revoked_by")


def api_token_get_for(*, user, token_id: int) -> ApiToken | None:
    """A token its owner may manage; admins may manage anyone's."""
    tokens = api_tokens_all() if roles.is_admin(user) else api_tokens_of(user=user)
    return tokens.filter(pk=token_id).first()
