"""Writes personal API tokens (made, revoked, used) and counts the API's requests against its rate limit."""

import hashlib
import logging
import math
import re
import secrets
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .. import roles
from ..errors import PortalError
from ..models import ApiToken
from .audit import audit_record

logger = logging.getLogger(__name__)


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
    if token.last_used_at is None or token.last_used_at < now - API_TOKEN_LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


RATE_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def api_rate_limit_parse(text: str) -> tuple[int, int]:
    """ "60/m" → (60 requests, per 60 seconds). Units: s, m, h, d."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*([smhd])\s*", text or "")
    if not match or int(match[1]) < 1:
        raise ImproperlyConfigured(f"PORTAL_API_RATE_LIMIT must look like 60/m (requests/s|m|h|d), not {text!r}.")
    return int(match[1]), RATE_PERIODS[match[2]]


def api_rate_limit_hit(*, key: str) -> int | None:
    """Count one request against `key`. Returns None when allowed, else the seconds until requests are allowed again.

    A fixed window that opens with the key's first request and lasts one period. The counter lives in the shared
    cache (Redis), so every web process counts against the same limit. When the cache cannot be reached, the request
    is allowed: losing the limit for a moment beats refusing every script.
    """
    limit, period = api_rate_limit_parse(settings.PORTAL_API_RATE_LIMIT)
    now = time.time()
    base = f"api-rate:{key}:{limit}/{period}"
    try:
        cache.add(f"{base}:opened", now, timeout=period)
        cache.add(f"{base}:count", 0, timeout=period)
        count = cache.incr(f"{base}:count")
        if count <= limit:
            return None
        opened = cache.get(f"{base}:opened") or now
    except Exception:
        logger.warning("API rate limit not enforced: the cache is unreachable", exc_info=True)
        return None
    return max(1, math.ceil(opened + period - now))
