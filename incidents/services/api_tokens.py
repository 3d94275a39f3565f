"""Writes personal API tokens (made, revoked, used)."""

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import roles
from ..errors import PortalError
from ..models import ApiToken
from .audit import audit_record

API_TOKEN_PREFIX = "ipt_"  # noqa: S105 - a public marker, not a secret

# Writing last_used_at on every request would turn each API call into a write; once a minute is enough to tell.
API_TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


def _api_token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(
    *, owner, name: str, expires_at: datetime | None = None, ip_address: str | None = None
) -> tuple[ApiToken, str]:
    """Make a personal API token. Returns (token, secret): the secret exists only in this return value."""
    if not roles.can_declare(owner):
        raise PortalError("Your account has no role in the portal yet; ask an admin.", code="forbidden")
    if expires_at is not None and expires_at <= timezone.now():
        raise PortalError("Choose an expiry date in the future.", field="expires_at")
    secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        owner=owner,
        name=name.strip(),
        prefix=secret[: len(API_TOKEN_PREFIX) + 6],
        secret_hash=_api_token_hash(secret),
        expires_at=expires_at,
    )
    token.full_clean()
    with transaction.atomic():
        # The owner's row is the lock: two requests at once cannot both take the last free place.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        now = timezone.now()
        active = ApiToken.objects.filter(owner=owner, revoked_at=None).filter(
            Q(expires_at=None) | Q(expires_at__gt=now)
        )
        limit = settings.PORTAL_API_MAX_TOKENS
        if active.count() >= limit:
            raise PortalError(
                f"{owner.get_username()} already has {limit} active API token{'s' if limit != 1 else ''}, the most "
                "one person may have: revoke one that is no longer used, then create the new one.",
                code="too_many_tokens",
            )
        token.save(force_insert=True)
        audit_record(
            action="api_token.created",
            actor=owner,
            ip_address=ip_address,
            details={"token_id": token.pk, "name": token.name, "prefix": token.prefix, "expires_at": expires_at},
        )
    return token, secret


def api_token_revoke(*, token: ApiToken, actor, ip_address: str | None = None) -> ApiToken:
    """Revoke a token at once. Its owner may, and so may admins; revoking twice changes nothing."""
    if token.owner_id != actor.pk and not roles.is_admin(actor):
        raise PortalError("Only the token's owner or an admin can revoke it.", code="forbidden")
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("owner").get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            action="api_token.revoked",
            actor=actor,
            ip_address=ip_address,
            details={
                "token_id": token.pk,
                "name": token.name,
                "prefix": token.prefix,
                "owner": token.owner.get_username(),
            },
        )
    return token


def _provider_sign_in_too_old(owner: User, now: datetime) -> bool:
    """An account made by single sign-on (it has no password) whose last sign-in is older than a session lasts."""
    if not settings.PORTAL_SSO_ENABLED or owner.has_usable_password():
        return False
    limit = now - timedelta(seconds=settings.PORTAL_SSO_MAX_SESSION_AGE)
    return owner.last_login is None or owner.last_login < limit


def api_token_authenticate(*, secret: str) -> ApiToken:
    """The live token for a secret, with its owner loaded fresh (so the owner's current role applies).

    Raises PortalError(code="unauthenticated") with a reason the caller can act on.
    """
    token = None
    if secret.startswith(API_TOKEN_PREFIX):
        token = ApiToken.objects.select_related("owner").filter(secret_hash=_api_token_hash(secret)).first()
    if token is None:
        raise PortalError("This API token is not valid.", code="unauthenticated")
    if token.revoked_at is not None:
        raise PortalError("This API token has been revoked; create a new one.", code="unauthenticated")
    now = timezone.now()
    if token.is_expired(now):
        raise PortalError("This API token has expired; create a new one.", code="unauthenticated")
    if not token.owner.is_active:
        raise PortalError("The account this API token belongs to is disabled.", code="unauthenticated")
    if _provider_sign_in_too_old(token.owner, now):
        # Their groups are read from the identity provider at each sign-in: someone removed there must not keep
        # declaring through a token.
        raise PortalError(
            f"The token's owner signs in through {settings.PORTAL_SSO_PROVIDER_NAME} and has not for longer than "
            "a session lasts; sign in to the portal again, and the token works again.",
            code="unauthenticated",
        )
    if token.last_used_at is None or token.last_used_at < now - API_TOKEN_LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
