"""Writes the audit trail: every step of every declaration and every change an admin makes is one event."""

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction
from django.utils import timezone

from ..aws import client as aws
from ..models import AuditEvent, Declaration, ResponsePlan
from ..selectors.audit import audit_chain_head, audit_head_key

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# The "previous hash" of the first audit event.
GENESIS_HASH = "0" * 64


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    declaration: Declaration | None = None,
    response_plan: ResponsePlan | None = None,
    details: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event to the keyed audit chain (inside the caller's transaction)."""
    event = AuditEvent(
        declaration=declaration,
        response_plan=response_plan,
        actor=actor,
        actor_label=actor.get_username() if actor else SYSTEM_ACTOR,
        action=action,
        details=jsonable(details or {}),
        ip_address=ip_address,
        created_at=timezone.now(),
        key_id=AuditEvent.signing_key_id(),
    )
    event.content_hash = event.compute_content_hash()
    alias = router.db_for_write(AuditEvent)
    # No savepoint: an audit trail that cannot be written must undo the whole change it records.
    with transaction.atomic(using=alias, savepoint=False):
        event.previous_hash = _lock_chain_head(alias) or GENESIS_HASH
        event.hash = AuditEvent.chain_hash(event.previous_hash, event.content_hash, event.key_id)
        event.save(force_insert=True, using=alias)
    if declaration is not None:
        _declaration_log(declaration, action, details=event.details)
    return event


def _lock_chain_head(alias: str) -> str | None:
    """The chain's head, locked for this transaction: no other event joins the chain until it ends."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        # SQLite: writers hold the database's lock from the transaction's start (local settings).
        return AuditEvent.objects.using(alias).order_by("-id").values_list("hash", flat=True).first()
    # One round trip: a transaction-scoped advisory lock, then the head as committed by its last holder (migration
    # 0009). The key is held here, never by the database, so the link itself is computed here.
    with connection.cursor() as cursor:
        cursor.execute("SELECT incidents_auditevent_lock_head()")
        return cursor.fetchone()[0]


@dataclass(frozen=True)
class PublishedHead:
    event_id: int
    hash: str
    bucket: str
    key: str
    new: bool  # False: this head had been published before


def audit_head_publish() -> PublishedHead | None:
    """Publish the chain's head to PORTAL_AUDIT_HEADS_BUCKET as an object S3 keeps unchanged for the retention
    period (Object Lock), for verify_audit to check the trail against; None when there is no bucket or no event.

    Not itself an audit event: recording it would move the head it has just published, so every run would have a
    new head to publish, forever; the bucket is the record of what was published and when."""
    bucket = settings.PORTAL_AUDIT_HEADS_BUCKET
    head = audit_chain_head() if bucket else None
    if head is None:
        return None
    published_at = timezone.now()
    key = audit_head_key(event_id=head.pk, event_hash=head.hash)
    body = {
        "event_id": head.pk,
        "hash": head.hash,
        "key_id": head.key_id,
        "created_at": head.created_at,
        "published_at": published_at,
    }
    new = aws.put_write_once(
        bucket=bucket,
        key=key,
        body=json.dumps(body, cls=DjangoJSONEncoder, sort_keys=True).encode(),
        retain_until=published_at + timedelta(days=settings.PORTAL_AUDIT_HEADS_RETENTION_DAYS),
        mode=settings.PORTAL_AUDIT_HEADS_RETENTION_MODE,
    )
    return PublishedHead(event_id=head.pk, hash=head.hash, bucket=bucket, key=key, new=new)


def _declaration_log(declaration: Declaration, event: str, *, details: dict | None = None, level=logging.INFO):
    """One structured log line per step of a declaration; the formatter keeps only the known context fields."""
    details = details or {}
    logger.log(
        level,
        "declaration %s: %s",
        declaration.pk,
        event,
        extra={
            "event": event,
            "declaration_id": declaration.pk,
            "client_token": declaration.client_token,
            "state": declaration.state,
            "attempt": details.get("attempt", declaration.attempts),
            "error_code": details.get("code"),
            "related_item_id": details.get("related_item"),
        },
    )


def jsonable(value: Any) -> Any:
    """The value as it will read back from a JSONField, so that hashes and stored requests are stable."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
