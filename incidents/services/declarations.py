"""Writes declarations: store one and queue its start, hand it to the workers, queue a failed one again.

The worker's attempt at StartIncident is `services.starting`; files are `services.attachments`.
"""

import logging
import uuid
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import metrics, validators
from ..errors import PortalError
from ..models import AttachmentState, Declaration, RelatedItem, ResponsePlan
from ..selectors.plans import response_plan_is_available_to
from .attachments import RelatedItemInput, related_item_store
from .audit import audit_record

logger = logging.getLogger(__name__)

# Tasks are sent by name: services sit below the tasks that call them and never import them.
START_TASK = "incidents.tasks.start_declaration"


def declaration_create(
    *,
    declared_by: User,
    response_plan: ResponsePlan,
    title: str = "",
    impact: int | None = None,
    related_items: list[RelatedItemInput] | tuple = (),
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
    source: str = Declaration.Source.WEB,
    ip_address: str | None = None,
    trigger_details: dict[str, str] | None = None,
    impact_started_at: datetime | None = None,
    is_drill: bool = False,
) -> tuple[Declaration, bool]:
    """Store a declaration and queue its start. Returns (declaration, created).

    A repeated idempotency key returns the declaration it already made instead of making another.
    `trigger_details` (an API caller's own, already validated) replace the portal's in the StartIncident request;
    `impact_started_at` is sent as their timestamp, so the two are never given together. A drill (`is_drill`) is
    made with a drill plan only, and a real declaration never with one.
    """
    if idempotency_key and any(item.kind == RelatedItem.Kind.FILE for item in related_items):
        # Look before uploading, so that a repeated POST does not store its files twice. Without files the
        # database's unique key answers a repeat (below), which saves this query on every declaration.
        existing = _declaration_for_key(idempotency_key, declared_by, request_fingerprint)
        if existing:
            return existing, False
    # The same rules as the form, for every interface (form, API, scripts): nothing half-made is stored or sent.
    declaration_validate(
        declared_by=declared_by, response_plan=response_plan, title=title, impact=impact, related_items=related_items
    )
    impact_started_at = declaration_validate_timing(
        impact_started_at=impact_started_at,
        trigger_details=trigger_details,
        response_plan=response_plan,
        is_drill=is_drill,
        title=title,
    )

    client_token = f"portal-{uuid.uuid4().hex}"
    # Files go to S3 before the transaction opens: no network call while holding database locks.
    items = [
        related_item_store(item=item, position=position, client_token=client_token)
        for position, item in enumerate(related_items)
    ]
    declaration = Declaration(
        declared_by=declared_by,
        response_plan=response_plan,
        title=title.strip(),
        impact=impact,
        source=source,
        client_token=client_token,
        idempotency_key=idempotency_key or None,
        request_fingerprint=request_fingerprint,
        trigger_details=trigger_details or None,
        impact_started_at=impact_started_at,
        is_drill=is_drill,
        # Handed to the workers right after the commit below; cleared again if that publish fails.
        dispatched_at=timezone.now(),
    )
    # Uniqueness is left to the database: a concurrent POST with the same key must reach the IntegrityError below
    # (and get the declaration it made), not a validation error.
    declaration.full_clean(exclude=["declared_by", "response_plan"], validate_unique=False)
    try:
        with transaction.atomic():
            declaration.save(force_insert=True)
            for item in items:
                item.declaration = declaration
            RelatedItem.objects.bulk_create(items)
            audit_record(
                action="declaration.queued",
                actor=declared_by,
                declaration=declaration,
                ip_address=ip_address,
                details={
                    "response_plan": response_plan.arn,
                    "title": declaration.title,
                    "impact": declaration.impact,
                    "related_items": len(items),
                    "source": source,
                    "client_token": client_token,
                    **({"trigger_source": trigger_details["source"]} if trigger_details else {}),
                    **({"impact_started_at": impact_started_at.isoformat()} if impact_started_at else {}),
                    **({"drill": True} if is_drill else {}),
                },
            )
            for item in items:
                if item.attachment_state == AttachmentState.PENDING:
                    audit_record(
                        action="attachment.pending",
                        actor=declared_by,
                        declaration=declaration,
                        details={"related_item": item.pk, "file": item.file_name, "reason": item.attachment_error},
                    )
            transaction.on_commit(lambda: metrics.DECLARATIONS_CREATED.labels(source=source).inc())
            transaction.on_commit(lambda: declaration_dispatch(declaration_id=declaration.pk))
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer with its declaration.
        existing = _declaration_for_key(idempotency_key, declared_by, request_fingerprint) if idempotency_key else None
        if not existing:
            raise
        return existing, False
    return declaration, True


def _declaration_for_key(key: str, declared_by, fingerprint: str) -> Declaration | None:
    existing = Declaration.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.declared_by_id != declared_by.pk or (fingerprint and existing.request_fingerprint != fingerprint):
        raise PortalError("This idempotency key was already used for a different declaration.", code="conflict")
    return existing


def declaration_validate(
    *,
    declared_by: User,
    response_plan: ResponsePlan,
    title: str = "",
    impact: int | None = None,
    related_items: list[RelatedItemInput] | tuple = (),
) -> None:
    """Raise PortalError, naming the field, for anything the form would refuse (the API has no form)."""
    if not response_plan_is_available_to(user=declared_by, response_plan=response_plan):
        raise PortalError(
            "Choose one of the response plans listed; that one is not available to you.",
            code="plan_unavailable",
            field="response_plan",
        )
    try:
        validators.reject_control_characters(title)
        validators.validate_title_length(title)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="title") from None
    if impact is not None and (isinstance(impact, bool) or impact not in range(1, 6)):
        raise PortalError("Choose an impact from 1 (critical) to 5 (no impact).", field="impact")
    if len(related_items) > validators.RELATED_ITEMS_MAX:
        message = validators.MESSAGES["too_many_items"]
        raise PortalError(message.format(limit=validators.RELATED_ITEMS_MAX), field="related_items")
    files = sum(1 for item in related_items if item.kind == RelatedItem.Kind.FILE)
    if files > settings.PORTAL_MAX_FILES:
        message = validators.MESSAGES["too_many_files"]
        raise PortalError(message.format(limit=settings.PORTAL_MAX_FILES, count=files), field="related_items")
    for item in related_items:
        try:
            validators.validate_related_item(kind=item.kind, value=item.value, title=item.title, upload=item.upload)
        except ValidationError as exc:
            part, errors = next(iter(exc.error_dict.items()))
            raise PortalError(
                " ".join(message for error in errors for message in error.messages),
                field="file" if part == "file" else "related_items",
                code="invalid_kind" if part == "kind" else "invalid",
            ) from None


def declaration_validate_timing(
    *,
    impact_started_at: datetime | None,
    trigger_details: dict[str, str] | None,
    response_plan: ResponsePlan,
    is_drill: bool,
    title: str,
) -> datetime | None:
    """The impact's start (returned in UTC) and the drill mark, checked for every interface; PortalError names the
    field."""
    if impact_started_at is not None:
        if trigger_details:
            raise PortalError(validators.IMPACT_START_AND_TRIGGER, field="impact_started_at")
        try:
            impact_started_at = validators.validate_impact_started_at(impact_started_at)
        except ValidationError as exc:
            raise PortalError(" ".join(exc.messages), field="impact_started_at") from None
    if response_plan.is_drill != is_drill:
        raise PortalError(
            validators.DRILL_PLAN_ONLY if is_drill else validators.REAL_PLAN_ONLY,
            code="plan_unavailable",
            field="response_plan",
        )
    if is_drill:
        try:
            validators.validate_title_length(title, drill=True)
        except ValidationError as exc:
            raise PortalError(" ".join(exc.messages), field="title") from None
    return impact_started_at


def declaration_dispatch(*, declaration_id: int) -> bool:
    """Hand a declaration to the workers. Never raises: a declaration that could not be published
    stays queued in the database, where the sweeper finds it."""
    context = {"declaration_id": declaration_id, "event": "declaration.dispatch"}
    try:
        current_app.send_task(START_TASK, args=[declaration_id])
    except Exception as exc:  # the broker is down or unreachable; the row is the source of truth
        logger.warning(
            "declaration %s could not be queued now (%s); it stays queued for the sweeper",
            declaration_id,
            type(exc).__name__,
            extra={**context, "error_code": type(exc).__name__},
        )
        Declaration.objects.filter(pk=declaration_id, state=Declaration.State.QUEUED).update(dispatched_at=None)
        return False
    logger.info("declaration %s handed to the workers", declaration_id, extra=context)
    return True


def declaration_retry(*, declaration: Declaration, actor: User, ip_address: str | None = None) -> Declaration:
    """Queue a failed declaration again. It keeps its client token, so AWS never starts it twice."""
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update(of=("self",)).get(pk=declaration.pk)
        if declaration.state != Declaration.State.FAILED:
            raise PortalError("Only a failed declaration can be retried.", code="conflict")
        previous = {
            "code": declaration.failure_code,
            "message": declaration.failure_reason,
            "attempts": declaration.attempts,
        }
        declaration.state = Declaration.State.QUEUED
        declaration.failure_code = declaration.failure_reason = ""
        # A fresh budget of attempts; the audit trail keeps the earlier count.
        declaration.attempts = 0
        declaration.dispatched_at = timezone.now()
        declaration.save(
            update_fields=["state", "failure_code", "failure_reason", "attempts", "dispatched_at", "updated_at"]
        )
        audit_record(
            action="declaration.retried",
            actor=actor,
            declaration=declaration,
            ip_address=ip_address,
            details={"previous_failure": previous, "client_token": declaration.client_token},
        )
        transaction.on_commit(lambda: declaration_dispatch(declaration_id=declaration.pk))
    return declaration
