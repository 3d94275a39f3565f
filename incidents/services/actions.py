"""Writes what people ask the portal to do to a started incident — a note on its timeline, more related items, a
new title, impact or summary, resolving it — and joining an incident instead of declaring it again.

Each action is stored first (the row is the source of truth, as for declarations), audited, and handed to the
workers by task name after the commit; `services.action_sending` is the worker's side.
"""

import functools
import hashlib
import json
import logging
import uuid
from typing import Any

from celery import current_app
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from .. import roles, validators
from ..aws.requests import drill_title
from ..errors import PortalError
from ..models import AttachmentState, Declaration, IncidentAction, RelatedItem
from .attachments import RelatedItemInput, attachments_dispatch, related_item_store
from .audit import audit_record

logger = logging.getLogger(__name__)

SEND_TASK = "incidents.tasks.send_incident_action"
Kind = IncidentAction.Kind


def incident_note_add(
    *,
    declaration: Declaration,
    requested_by: User,
    text: str,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> tuple[IncidentAction, bool]:
    """Queue a note for the incident's timeline (a custom event naming the person). Returns (action, created)."""
    _checked(validators.validate_note, text, field="text")
    return _action_store(
        declaration=declaration,
        requested_by=requested_by,
        kind=Kind.NOTE,
        payload={"text": text.strip()},
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def incident_items_add(
    *,
    declaration: Declaration,
    requested_by: User,
    items: list[RelatedItemInput],
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> tuple[IncidentAction, bool]:
    """Queue links, resource ARNs and files for the incident's related items; files go to S3 first, as at
    declaration time (kept in the database for a task when S3 is down)."""
    if not items:
        raise PortalError("Add at least one link, ARN or file.", field="related_items")
    if len(items) > validators.RELATED_ITEMS_MAX:
        raise PortalError(
            validators.MESSAGES["too_many_items"].format(limit=validators.RELATED_ITEMS_MAX), field="related_items"
        )
    for item in items:
        try:
            validators.validate_related_item(kind=item.kind, value=item.value, title=item.title, upload=item.upload)
        except ValidationError as exc:
            raise PortalError(" ".join(exc.messages), field="related_items") from None
    return _action_store(
        declaration=declaration,
        requested_by=requested_by,
        kind=Kind.RELATED_ITEMS,
        payload={"items": []},
        items=items,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def incident_record_update(
    *,
    declaration: Declaration,
    requested_by: User,
    title: str | None = None,
    impact: int | None = None,
    summary: str | None = None,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> tuple[IncidentAction, bool]:
    """Queue a change of the incident's title, impact or summary (only the ones given). A drill's new title goes to
    AWS with "[DRILL] " in front, as its first one did (aws/requests.drill_title)."""
    changes: dict[str, Any] = {}
    if title is not None and title.strip():
        _checked(validators.reject_control_characters, title, field="title")
        _checked(functools.partial(validators.validate_title_length, drill=declaration.is_drill), title, field="title")
        changes["title"] = drill_title(title.strip()) if declaration.is_drill else title.strip()
    if impact is not None:
        if impact not in range(1, 6):
            raise PortalError("Choose an impact from 1 (critical) to 5 (no impact).", field="impact")
        changes["impact"] = impact
    if summary is not None and summary.strip():
        _checked(validators.validate_summary, summary, field="summary")
        changes["summary"] = summary.strip()
    if not changes:
        raise PortalError("Change at least one of the title, the impact or the summary.", field="title")
    return _action_store(
        declaration=declaration,
        requested_by=requested_by,
        kind=Kind.UPDATE,
        payload=changes,
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def incident_resolve(
    *,
    declaration: Declaration,
    requested_by: User,
    note: str,
    idempotency_key: str | None = None,
    ip_address: str | None = None,
) -> tuple[IncidentAction, bool]:
    """Queue resolving the incident, with a closing note on its timeline."""
    _checked(validators.validate_note, note, field="note")
    return _action_store(
        declaration=declaration,
        requested_by=requested_by,
        kind=Kind.RESOLVE,
        payload={"note": note.strip()},
        idempotency_key=idempotency_key,
        ip_address=ip_address,
    )


def incident_join(
    *,
    declaration: Declaration,
    requested_by: User,
    note: str,
    items: list[RelatedItemInput],
    idempotency_key: str,
    typed_title: str = "",
    is_drill: bool = False,
    ip_address: str | None = None,
) -> list[IncidentAction]:
    """Add what a person was about to declare to the incident already declared: their note (or one saying that
    they joined) and their related items. Nothing new is started. Only an open incident is joined, and only a
    drill from a drill (`is_drill`: what the person was declaring), a real incident from a real one."""
    if declaration.is_drill != is_drill:
        raise PortalError(
            "That declaration is a drill and this is a real incident: declare it instead."
            if declaration.is_drill
            else "That declaration is a real incident and this is a drill: a drill never joins one.",
            code="conflict",
        )
    if declaration.aws_status == Declaration.AwsStatus.RESOLVED:
        raise PortalError(
            "That incident is resolved in Incident Manager: if this is happening again, declare a new one.",
            code="conflict",
        )
    if not note.strip():
        note = "Was about to declare this incident again and joined it from the portal instead" + (
            f" (their title: “{typed_title.strip()}”)." if typed_title.strip() else "."
        )
    actions = [
        incident_note_add(
            declaration=declaration,
            requested_by=requested_by,
            text=note,
            idempotency_key=f"{idempotency_key}:note",
            ip_address=ip_address,
        )[0]
    ]
    if items:
        actions.append(
            incident_items_add(
                declaration=declaration,
                requested_by=requested_by,
                items=items,
                idempotency_key=f"{idempotency_key}:items",
                ip_address=ip_address,
            )[0]
        )
    return actions


def incident_action_dispatch(*, action_id: int) -> bool:
    """Hand an action to the workers. Never raises: an action that could not be published stays queued in the
    database, where the sweeper finds it."""
    try:
        current_app.send_task(SEND_TASK, args=[action_id])
    except Exception as exc:  # the broker is down or unreachable; the row is the source of truth
        logger.warning(
            "incident action %s could not be queued now (%s); it stays queued for the sweeper",
            action_id,
            type(exc).__name__,
            extra={"action_id": action_id, "event": "incident_action.dispatch", "error_code": type(exc).__name__},
        )
        IncidentAction.objects.filter(pk=action_id, state=IncidentAction.State.QUEUED).update(dispatched_at=None)
        return False
    return True


def _checked(check, value: str, *, field: str) -> None:
    try:
        check(value)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field=field) from None


def _fingerprint(declaration: Declaration, kind: str, payload: dict[str, Any], items: list[RelatedItemInput]) -> str:
    described = [
        [item.kind, item.value.strip(), item.title.strip(), item.upload and [item.upload.name, item.upload.size]]
        for item in items
    ]
    canonical = [declaration.pk, kind, payload, described]
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


def _action_for_key(key: str, *, requested_by: User, fingerprint: str) -> IncidentAction | None:
    existing = IncidentAction.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.requested_by_id != requested_by.pk or existing.request_fingerprint != fingerprint:
        raise PortalError("This idempotency key was already used for a different request.", code="conflict")
    return existing


def _action_store(
    *,
    declaration: Declaration,
    requested_by: User,
    kind: str,
    payload: dict[str, Any],
    items: list[RelatedItemInput] | None = None,
    idempotency_key: str | None,
    ip_address: str | None,
) -> tuple[IncidentAction, bool]:
    items = items or []
    if not roles.may_act_on(requested_by, declaration):
        raise PortalError("Only the declarer, managers and admins may act on this incident.", code="forbidden")
    fingerprint = _fingerprint(declaration, kind, payload, items)
    if idempotency_key:
        # Looked up before anything is uploaded, so that a repeated request stores its files once.
        existing = _action_for_key(idempotency_key, requested_by=requested_by, fingerprint=fingerprint)
        if existing:
            return existing, False
    if declaration.state != Declaration.State.STARTED or not declaration.incident_record_arn:
        raise PortalError("The incident has not started yet; act on it once it has.", code="conflict")
    if kind == Kind.RESOLVE and (
        declaration.aws_status == Declaration.AwsStatus.RESOLVED
        or declaration.actions.filter(kind=Kind.RESOLVE, state=IncidentAction.State.QUEUED).exists()
    ):
        raise PortalError("This incident is already resolved (or being resolved).", code="conflict")

    client_token = f"act-{uuid.uuid4().hex}"
    first = (declaration.related_items.aggregate(last=Max("position"))["last"] or 0) + 1
    # Files go to S3 before the transaction opens: no network call while holding database locks.
    stored = [
        related_item_store(item=item, position=first + index, client_token=client_token)
        for index, item in enumerate(items)
    ]
    try:
        with transaction.atomic():
            for item in stored:
                item.declaration = declaration
            RelatedItem.objects.bulk_create(stored)
            if stored:
                payload = {"items": [{"id": i.pk, "kind": i.kind, "value": i.value, "title": i.title} for i in stored]}
            action = IncidentAction.objects.create(
                declaration=declaration,
                kind=kind,
                payload=payload,
                client_token=client_token,
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
                requested_by=requested_by,
                dispatched_at=timezone.now(),
            )
            audit_record(
                action="incident_action.queued",
                actor=requested_by,
                declaration=declaration,
                ip_address=ip_address,
                details={"action": action.pk, "kind": kind, "client_token": client_token, "payload": payload},
            )
            pending = [item for item in stored if item.attachment_state == AttachmentState.PENDING]
            for item in pending:
                audit_record(
                    action="attachment.pending",
                    actor=requested_by,
                    declaration=declaration,
                    details={"related_item": item.pk, "file": item.file_name, "reason": item.attachment_error},
                )
            transaction.on_commit(lambda: incident_action_dispatch(action_id=action.pk))
            if pending:
                # S3 was down: the existing late-attachment task uploads and attaches these once it answers.
                transaction.on_commit(lambda: attachments_dispatch(declaration_id=declaration.pk))
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its action.
        existing = (
            _action_for_key(idempotency_key, requested_by=requested_by, fingerprint=fingerprint)
            if idempotency_key
            else None
        )
        if existing is None:
            raise
        return existing, False
    return action, True
