"""The audit trail's settings: the chain's keys and its published heads (docs/security.md), read by base.py."""

import re

from django.core.exceptions import ImproperlyConfigured

from .environment import env

_AUDIT_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# The key id of the events written before the chain was keyed (plain SHA-256 links): never a configured key's id.
_AUDIT_LEGACY_KEY_ID = "sha256"
_AUDIT_KEY_MIN_LENGTH = 32


def audit_keys(raw: str) -> list[tuple[str, str]]:
    """PORTAL_AUDIT_KEYS, "id:secret,older-id:older-secret": the first signs new events, every one verifies.

    Errors name the variable and the key's id, never a secret."""
    keys: list[tuple[str, str]] = []
    for number, item in enumerate(part.strip() for part in raw.split(",")):
        key_id, _, secret = item.partition(":")
        if not _AUDIT_KEY_ID.fullmatch(key_id) or key_id == _AUDIT_LEGACY_KEY_ID:
            raise ImproperlyConfigured(
                f"PORTAL_AUDIT_KEYS: entry {number + 1} must be `id:secret` with an id of letters, digits, `_.-` "
                f"(at most 32, not {_AUDIT_LEGACY_KEY_ID!r})."
            )
        if len(secret) < _AUDIT_KEY_MIN_LENGTH:
            raise ImproperlyConfigured(
                f"PORTAL_AUDIT_KEYS: the secret of key {key_id!r} must be at least {_AUDIT_KEY_MIN_LENGTH} characters."
            )
        if key_id in dict(keys):
            raise ImproperlyConfigured(f"PORTAL_AUDIT_KEYS: key {key_id!r} is listed twice.")
        keys.append((key_id, secret))
    return keys


# The HMAC keys of the audit chain, held by the portal's processes and never by the database (docs/security.md).
# Required in production; local and test settings have a development key.
_audit_keys_raw = env.str("PORTAL_AUDIT_KEYS", default="")
PORTAL_AUDIT_KEYS = audit_keys(_audit_keys_raw) if _audit_keys_raw else []
# The chain's head is published to this S3 bucket (Object Lock enabled) every PORTAL_AUDIT_HEAD_INTERVAL seconds,
# each head kept unchangeable for PORTAL_AUDIT_HEADS_RETENTION_DAYS in the given Object Lock mode. Empty: off.
PORTAL_AUDIT_HEADS_BUCKET = env.str("PORTAL_AUDIT_HEADS_BUCKET", default="")
PORTAL_AUDIT_HEAD_INTERVAL = env.float("PORTAL_AUDIT_HEAD_INTERVAL", default=300)
PORTAL_AUDIT_HEADS_RETENTION_DAYS = env.int("PORTAL_AUDIT_HEADS_RETENTION_DAYS", default=3653)
PORTAL_AUDIT_HEADS_RETENTION_MODE = env.str("PORTAL_AUDIT_HEADS_RETENTION_MODE", default="COMPLIANCE").upper()
if PORTAL_AUDIT_HEADS_RETENTION_MODE not in ("COMPLIANCE", "GOVERNANCE"):
    raise ImproperlyConfigured("PORTAL_AUDIT_HEADS_RETENTION_MODE must be COMPLIANCE or GOVERNANCE.")
if PORTAL_AUDIT_HEADS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("PORTAL_AUDIT_HEADS_RETENTION_DAYS must be at least 1.")
