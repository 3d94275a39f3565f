"""Writes the audit trail: every step of every declaration and every change an admin makes is one event."""

import json
import logging
from typing import Any

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections, router, transaction
from django.db.models import Value
from django.utils import timezone

from ..models import AuditEvent, Declaration, ResponsePlan

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# The "previous hash" of the first audit event (the PostgreSQL trigger of migration 0006 uses the same).
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
    """Append one event to the hash-chained audit trail (inside the caller's transaction)."""
    event = AuditEvent(
        declaration=declaration,
        response_plan=response_plan,
        actor=actor,
        actor_label=actor.get_username() if actor else SYSTEM_ACTOR,
        action=action,
        details=jsonable(details or {}),
        ip_address=ip_address,
        created_at=timezone.now(),
    )
    event.content_hash = event.compute_content_hash()
    alias = router.db_for_write(AuditEvent)
    # No savepoint: an audit trail that cannot be written must undo the whole change it records.
    with transaction.atomic(using=alias, savepoint=False):
        if connections[alias].vendor == "postgresql":
            # The database links the event to the chain's head as it inserts it (trigger incidents_auditevent_chain,
            # serialised by an advisory lock held from here to the commit). Fields given as expressions are read
            # back by the INSERT's RETURNING, so the event knows its place in the chain.
            event.previous_hash = event.hash = Value("")
        else:
            # SQLite: writers hold the database's lock from the transaction's start (local settings).
            previous = AuditEvent.objects.using(alias).order_by("-id").values_list("hash", flat=True).first()
            event.previous_hash = previous or GENESIS_HASH
            event.hash = AuditEvent.chain_hash(event.previous_hash, event.content_hash)
        event.save(force_insert=True, using=alias)
    if declaration is not None:
        _declaration_log(declaration, action, details=event.details)
    return event


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
