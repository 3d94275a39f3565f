"""Writes: every change to declarations, plans and the audit trail goes through here."""

import functools
import hashlib
import io
import json
import logging
import math
import mimetypes
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone

from portal import database

from . import aws, roles, selectors, validators
from .models import ApiToken, AttachmentState, AuditEvent, Declaration, RelatedItem, ResponsePlan
from .validators import safe_file_name

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
# The "previous hash" of the first audit event (the PostgreSQL trigger of migration 0006 uses the same).
GENESIS_HASH = "0" * 64


class DeclarationError(Exception):
    """A declaration could not be made or changed; `field` names the input at fault, when there is one."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


class StartRetryable(Exception):
    """StartIncident failed in a way worth another attempt later (throttling, 5xx, network)."""

    def __init__(self, error: aws.AwsError):
        super().__init__(str(error))
        self.error = error


@dataclass
class RelatedItemInput:
    kind: str
    title: str = ""
    value: str = ""
    upload: UploadedFile | None = None


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


# --- Audit trail ---------------------------------------------------------------------------------------


# What an audit event's INSERT reads back: its id and the place the database gave it in the chain.
AUDIT_EVENT_RETURNING = ("id", "previous_hash", "hash")


def audit_record(
    *,
    action: str,
    actor=None,
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
        details=_jsonable(details or {}),
        ip_address=ip_address,
        created_at=timezone.now(),
    )
    event.content_hash = event.compute_content_hash()
    alias = router.db_for_write(AuditEvent)
    # No savepoint: an audit trail that cannot be written must undo the whole change it records.
    with transaction.atomic(using=alias, savepoint=False):
        if connections[alias].vendor == "postgresql":
            # The database links the event to the chain's head as it inserts it (trigger incidents_auditevent_chain,
            # serialised by an advisory lock held from here to the commit); the place it gets is read back.
            event.previous_hash = event.hash = ""
        else:
            # SQLite: writers hold the database's lock from the transaction's start (local settings).
            previous = AuditEvent.objects.using(alias).order_by("-id").values_list("hash", flat=True).first()
            event.previous_hash = previous or GENESIS_HASH
            event.hash = AuditEvent.chain_hash(event.previous_hash, event.content_hash)
        database.insert([event], returning=AUDIT_EVENT_RETURNING)
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


def _jsonable(value: Any) -> Any:
    """The value as it will read back from a JSONField, so that hashes and stored requests are stable."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


# --- Declarations --------------------------------------------------------------------------------------


def declaration_create(
    *,
    declared_by,
    response_plan: ResponsePlan,
    title: str = "",
    impact: int | None = None,
    related_items: list[RelatedItemInput] | tuple = (),
    idempotency_key: str | None = None,
    request_fingerprint: str = "",
    source: str = Declaration.Source.WEB,
    ip_address: str | None = None,
    trigger_details: dict[str, str] | None = None,
) -> tuple[Declaration, bool]:
    """Store a declaration and queue its start. Returns (declaration, created).

    A repeated idempotency key returns the declaration it already made instead of making another.
    `trigger_details` (an API caller's own, already validated) replace the portal's in the StartIncident request.
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

    client_token = f"portal-{uuid.uuid4().hex}"
    # Files go to S3 before the transaction opens: no network call while holding database locks.
    items = [_related_item_from_input(item, position, client_token) for position, item in enumerate(related_items)]
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
        # Handed to the workers right after the commit below; cleared again if that publish fails.
        dispatched_at=timezone.now(),
    )
    # Uniqueness is left to the database: a concurrent POST with the same key must reach the IntegrityError below
    # (and get the declaration it made), not a validation error. The plan and the person are model instances
    # checked above, so their existence needs no query either.
    declaration.full_clean(exclude=["declared_by", "response_plan"], validate_unique=False)
    try:
        with transaction.atomic():
            # Inserted with statements built once per process, as the audit event below: building them had cost
            # the ORM more CPU than running them.
            declaration.fill_in_effective()
            database.insert([declaration])
            for item in items:
                item.declaration = declaration
            database.insert(items)
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
            transaction.on_commit(lambda: declaration_dispatch(declaration_id=declaration.pk))
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer with its declaration.
        existing = idempotency_key and _declaration_for_key(idempotency_key, declared_by, request_fingerprint)
        if not existing:
            raise
        return existing, False
    return declaration, True


# The warm-up builds the related items' INSERT for up to this many (a declaration with more builds its own on first
# use; all of StartIncident's 100 would take ~0.35 s at every process's start).
WARM_UP_RELATED_ITEMS = 10


def warm_up_declare() -> None:
    """Build the INSERTs a declaration is stored with (portal.database keeps each for the process): the
    declaration, its related items (a statement for each number of them, ~6 ms in all) and an audit event."""
    database.insert_statement(Declaration, rows=1)
    for rows in range(1, WARM_UP_RELATED_ITEMS + 1):
        database.insert_statement(RelatedItem, rows=rows)
    warm_up_start()


def warm_up_start() -> None:
    """Build the one INSERT the worker's start of a declaration runs: its audit events."""
    database.insert_statement(AuditEvent, rows=1, returning=AUDIT_EVENT_RETURNING)


def _declaration_for_key(key: str, declared_by, fingerprint: str) -> Declaration | None:
    existing = Declaration.objects.filter(idempotency_key=key).first()
    if existing is None:
        return None
    if existing.declared_by_id != declared_by.pk or (fingerprint and existing.request_fingerprint != fingerprint):
        raise DeclarationError("This idempotency key was already used for a different declaration.", code="conflict")
    return existing


def _related_item_from_input(item: RelatedItemInput, position: int, client_token: str) -> RelatedItem:
    if item.kind != RelatedItem.Kind.FILE:
        return RelatedItem(kind=item.kind, title=item.title.strip(), value=item.value.strip(), position=position)
    upload = item.upload
    if upload is None:
        raise DeclarationError("Choose a file to attach.", field="file")
    file_name = safe_file_name(upload.name or "")
    # The type follows the (checked) extension, never the browser's claim.
    content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    bucket = settings.PORTAL_S3_BUCKET
    key = selectors.attachment_key(client_token=client_token, position=position, file_name=file_name)
    related = RelatedItem(
        kind=RelatedItem.Kind.FILE,
        title=item.title.strip() or file_name,
        value=aws.s3_object_arn(bucket=bucket, key=key),
        position=position,
        file_name=file_name,
        content_type=content_type,
        size=upload.size,
        s3_bucket=bucket,
        s3_key=key,
        attachment_state=AttachmentState.STORED,
    )
    # Read once (uploads are limited to PORTAL_MAX_FILE_BYTES): the transfer may close the file when it fails.
    upload.seek(0)
    content = upload.read()
    try:
        aws.upload_attachment(bucket=bucket, key=key, body=io.BytesIO(content), content_type=content_type)
    except aws.AwsError as exc:
        # S3 must never block the incident: keep the bytes in the database, in the same transaction as the
        # declaration, and let a task upload and attach them once the incident exists.
        logger.warning("upload of %s to s3://%s/%s failed, kept for later: %s", file_name, bucket, key, exc)
        related.pending_content = content
        related.attachment_state = AttachmentState.PENDING
        related.attachment_error = f"S3 was unavailable at declaration time ({exc.message})."
    return related


def declaration_dispatch(*, declaration_id: int) -> bool:
    """Hand a declaration to the workers. Never raises: a declaration that could not be published
    stays queued in the database, where the sweeper finds it."""
    from .tasks import start_declaration

    context = {"declaration_id": declaration_id, "event": "declaration.dispatch"}
    try:
        start_declaration.delay(declaration_id)
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


def declaration_start(*, declaration_id: int, final_attempt: bool) -> Declaration:
    """One attempt at StartIncident for a declaration; safe to run any number of times.

    Raises StartRetryable when AWS failed transiently and more attempts remain. The bound is counted in the
    database too, so re-deliveries (worker lost, sweeper) can never make the attempts unbounded.
    """
    with transaction.atomic():
        declaration = selectors.declaration_for_start(declaration_id)
        if declaration.is_final:
            # A second delivery of the same task: the first one already finished the work.
            return declaration
        related_items = selectors.declaration_related_items(declaration)
        request = selectors.declaration_start_request(declaration, related_items)
        declaration.state = Declaration.State.STARTING
        declaration.attempts += 1
        declaration.aws_request = _jsonable(request)
        database.update(declaration, ["state", "attempts", "aws_request", "updated_at"])
        audit_record(
            action="declaration.starting",
            declaration=declaration,
            details={"attempt": declaration.attempts, "client_token": declaration.client_token},
        )

    final_attempt = final_attempt or declaration.attempts > settings.PORTAL_START_MAX_RETRIES
    has_files = any(kind == RelatedItem.Kind.FILE for kind, *_ in related_items)
    try:
        result = aws.start_incident(request)
    except aws.AwsError as error:
        if error.retryable and not final_attempt:
            audit_record(
                action="declaration.attempt_failed",
                declaration=declaration,
                details={"attempt": declaration.attempts, "code": error.code, "message": error.message},
            )
            raise StartRetryable(error) from error
        return _declaration_finish(declaration, has_files=has_files, error=error)
    return _declaration_finish(declaration, has_files=has_files, result=result)


def _declaration_finish(
    declaration: Declaration,
    *,
    has_files: bool,
    result: aws.StartIncidentResult | None = None,
    error: aws.AwsError | None = None,
) -> Declaration:
    """Record the outcome of the attempt that `declaration_start` made for `declaration` (its row as read then)."""
    if result is not None:
        changes = {
            "state": Declaration.State.STARTED,
            "incident_record_arn": result.incident_record_arn,
            "started_at": timezone.now(),
            "failure_code": "",
            "failure_reason": "",
            "aws_response": {"incidentRecordArn": result.incident_record_arn, "requestId": result.request_id},
        }
        action = "declaration.started"
        details = {"incident_record_arn": result.incident_record_arn, "request_id": result.request_id}
    else:
        assert error is not None
        reason = error.message
        if error.retryable:
            # Only transient errors are retried: say that the portal gave up, and after how many attempts.
            reason += f" (gave up after {declaration.attempts} attempts)"
        changes = {
            "state": Declaration.State.FAILED,
            "failure_code": error.code,
            "failure_reason": reason,
            "aws_response": {"error": {"code": error.code, "message": error.message}, "requestId": error.request_id},
        }
        action = "declaration.failed"
        details = {"code": error.code, "message": error.message, "attempts": declaration.attempts}
    for name, value in changes.items():  # database.update writes the object's values
        setattr(declaration, name, value)
    with transaction.atomic():
        # Written only while the declaration is not final, as one statement: an attempt running at the same time
        # (a re-delivered message) waits for the first one's row lock, then finds the row final and changes nothing.
        if not database.update(declaration, [*changes, "updated_at"], unless=("state", Declaration.FINAL_STATES)):
            return Declaration.objects.get(pk=declaration.pk)
        audit_record(action=action, declaration=declaration, details=details)
        if result is not None and has_files:
            files = declaration.related_items.filter(kind=RelatedItem.Kind.FILE)
            if files.filter(attachment_state=AttachmentState.PENDING).exists():
                transaction.on_commit(lambda: attachments_dispatch(declaration_id=declaration.pk))
            files.filter(attachment_state=AttachmentState.STORED).update(attachment_state=AttachmentState.ATTACHED)
    return declaration


def declaration_retry(*, declaration: Declaration, actor, ip_address: str | None = None) -> Declaration:
    """Queue a failed declaration again. It keeps its client token, so AWS never starts it twice."""
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update(of=("self",)).get(pk=declaration.pk)
        if declaration.state != Declaration.State.FAILED:
            raise DeclarationError("Only a failed declaration can be retried.", code="conflict")
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


# --- Declaration rules, for every interface -------------------------------------------------------


def declaration_validate(
    *,
    declared_by,
    response_plan: ResponsePlan,
    title: str = "",
    impact: int | None = None,
    related_items: list[RelatedItemInput] | tuple = (),
) -> None:
    """Raise DeclarationError, naming the field, for anything the form would refuse (the API has no form)."""
    if not selectors.response_plan_is_available_to(user=declared_by, response_plan=response_plan):
        raise DeclarationError(
            "Choose one of the response plans listed; that one is not available to you.",
            code="plan_unavailable",
            field="response_plan",
        )
    _check(validators.reject_control_characters, title, field="title")
    if len(title.strip()) > validators.TITLE_MAX_LENGTH:
        raise DeclarationError(
            f"A title can be at most {validators.TITLE_MAX_LENGTH} characters (it has {len(title.strip())}).",
            field="title",
        )
    if impact is not None and (isinstance(impact, bool) or impact not in range(1, 6)):
        raise DeclarationError("Choose an impact from 1 (critical) to 5 (no impact).", field="impact")
    if len(related_items) > validators.RELATED_ITEMS_MAX:
        raise DeclarationError(
            f"An incident can have at most {validators.RELATED_ITEMS_MAX} related items.", field="related_items"
        )
    files = sum(1 for item in related_items if item.kind == RelatedItem.Kind.FILE)
    if files > settings.PORTAL_MAX_FILES:
        raise DeclarationError(
            f"Attach at most {settings.PORTAL_MAX_FILES} files (there are {files}).", field="related_items"
        )
    for item in related_items:
        try:
            validators.validate_related_item(kind=item.kind, value=item.value, title=item.title, upload=item.upload)
        except ValidationError as exc:
            part, errors = next(iter(exc.error_dict.items()))
            raise DeclarationError(
                " ".join(message for error in errors for message in error.messages),
                field="file" if part == "file" else "related_items",
                code="invalid_kind" if part == "kind" else "invalid",
            ) from None


def _check(validator, value, *, field: str) -> None:
    try:
        validator(value)
    except ValidationError as exc:
        raise DeclarationError(" ".join(exc.messages), field=field) from None


# --- Late attachments ---------------------------------------------------------------------------


class AttachmentRetryable(Exception):
    """Uploading or attaching a kept file failed transiently; the task tries again later."""


def attachments_dispatch(*, declaration_id: int) -> bool:
    """Queue the upload of a declaration's kept files. Never raises: the sweeper finds what stays pending."""
    from .tasks import attach_pending_files

    try:
        attach_pending_files.delay(declaration_id)
    except Exception as exc:  # broker down: the files wait safely in the database
        logger.warning(
            "attachments of declaration %s could not be queued now (%s)",
            declaration_id,
            type(exc).__name__,
            extra={"declaration_id": declaration_id, "event": "attachment.dispatch", "error_code": type(exc).__name__},
        )
        return False
    return True


def declaration_attach_pending_files(*, declaration_id: int, final_attempt: bool) -> list[RelatedItem]:
    """Upload each kept file to S3 and add it to the incident as an ATTACHMENT; safe to run any number of times.

    S3 PUTs to a fixed key and UpdateRelatedItems with a fixed client token are both idempotent, so a repeated or
    concurrent run changes nothing. Raises AttachmentRetryable when a transient error leaves files pending.
    """
    declaration = Declaration.objects.get(pk=declaration_id)
    if declaration.state != Declaration.State.STARTED:
        return []  # attached once the incident exists (after a manager's retry, if it failed)
    pending = list(declaration.related_items.filter(attachment_state=AttachmentState.PENDING).order_by("position"))
    transient = False
    for item in pending:
        try:
            aws.upload_attachment(
                bucket=item.s3_bucket,
                key=item.s3_key,
                body=io.BytesIO(bytes(item.pending_content or b"")),
                content_type=item.content_type,
            )
            aws.add_related_item(
                incident_record_arn=declaration.incident_record_arn,
                item=selectors.related_item_for_aws(kind=item.kind, value=item.value, title=item.title),
                client_token=f"{declaration.client_token}-file-{item.pk}"[:128],
            )
        except aws.AwsError as error:
            give_up = final_attempt or not error.retryable
            _attachment_record_failure(item=item, declaration=declaration, error=error, final=give_up)
            transient = transient or not give_up
            continue
        _attachment_record_success(item=item, declaration=declaration)
    if transient:
        raise AttachmentRetryable(f"declaration {declaration_id} still has files to attach")
    return pending


@transaction.atomic
def _attachment_record_success(*, item: RelatedItem, declaration: Declaration) -> None:
    locked = RelatedItem.objects.select_for_update().get(pk=item.pk)
    if locked.attachment_state != AttachmentState.PENDING:
        return  # a concurrent run got there first
    locked.attachment_state = AttachmentState.ATTACHED
    locked.attachment_error = ""
    locked.attachment_attempts += 1
    # The bytes now live in S3 (encrypted); the database keeps only the pointer.
    locked.pending_content = None
    locked.save(update_fields=["attachment_state", "attachment_error", "attachment_attempts", "pending_content"])
    audit_record(
        action="attachment.attached",
        declaration=declaration,
        details={"related_item": item.pk, "file": item.file_name, "arn": item.value},
    )


@transaction.atomic
def _attachment_record_failure(*, item: RelatedItem, declaration: Declaration, error: aws.AwsError, final: bool):
    locked = RelatedItem.objects.select_for_update().get(pk=item.pk)
    if locked.attachment_state != AttachmentState.PENDING:
        return
    locked.attachment_attempts += 1
    locked.attachment_error = f"{error.code}: {error.message}"
    if final:
        # The bytes stay in the database: nothing the person gave is lost, even when AWS refuses it.
        locked.attachment_state = AttachmentState.FAILED
    locked.save(update_fields=["attachment_state", "attachment_error", "attachment_attempts"])
    audit_record(
        action="attachment.failed" if final else "attachment.attempt_failed",
        declaration=declaration,
        details={
            "related_item": item.pk,
            "file": item.file_name,
            "code": error.code,
            "message": error.message,
            "attempt": locked.attachment_attempts,
        },
    )


# --- The outbox sweeper -------------------------------------------------------------------------


@dataclass
class SweepResult:
    queued: list[int] = field(default_factory=list)
    starting: list[int] = field(default_factory=list)
    attachments: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.queued) + len(self.starting) + len(self.attachments)


def declarations_sweep(*, now=None) -> SweepResult:
    """Re-dispatch work whose message may be lost: the declaration row, not the broker, is the source of truth.

    Picks declarations queued but never (or too long ago) handed to a worker, declarations starting for too long
    (a lost worker or a Redis restart took their message), and started incidents with files still pending.
    `SKIP LOCKED` lets any number of sweepers (and workers) run at once without waiting on or repeating each other.
    """
    now = now or timezone.now()
    queued_before = now - timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER)
    starting_before = now - timedelta(seconds=settings.PORTAL_SWEEP_STARTING_AFTER)
    result = SweepResult()
    with transaction.atomic():
        stuck = list(
            Declaration.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                Q(
                    state=Declaration.State.QUEUED,
                    created_at__lt=queued_before,
                )
                & (Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=queued_before))
                | Q(state=Declaration.State.STARTING, updated_at__lt=starting_before)
            )
            .order_by("created_at", "id")[: settings.PORTAL_SWEEP_BATCH]
        )
        for declaration in stuck:
            if declaration.state == Declaration.State.QUEUED:
                since = declaration.dispatched_at or declaration.created_at
                result.queued.append(declaration.pk)
            else:
                since = declaration.updated_at
                result.starting.append(declaration.pk)
            audit_record(
                action="declaration.redispatched",
                declaration=declaration,
                details={
                    "state": declaration.state,
                    "attempt": declaration.attempts,
                    "client_token": declaration.client_token,
                    "stuck_since": since,
                },
            )
        # Claimed: the next sweep leaves them alone until the threshold passes again.
        Declaration.objects.filter(pk__in=[d.pk for d in stuck]).update(dispatched_at=now, updated_at=now)
        for declaration_id in result.queued + result.starting:
            transaction.on_commit(functools.partial(declaration_dispatch, declaration_id=declaration_id))

        waiting = (
            RelatedItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                attachment_state=AttachmentState.PENDING,
                declaration__state=Declaration.State.STARTED,
                declaration__updated_at__lt=queued_before,
            )
            .values_list("declaration_id", flat=True)
        )
        result.attachments = sorted(set(waiting))
        Declaration.objects.filter(pk__in=result.attachments).update(updated_at=now)
        for declaration_id in result.attachments:
            transaction.on_commit(functools.partial(attachments_dispatch, declaration_id=declaration_id))
    if result.total:
        logger.info(
            "sweeper re-dispatched %s queued, %s starting, %s with pending files",
            len(result.queued),
            len(result.starting),
            len(result.attachments),
            extra={"event": "declarations.swept", "count": result.total},
        )
    return result


# --- Response plans ------------------------------------------------------------------------------------

_SYNCED_FIELDS = (
    "name",
    "aws_display_name",
    "template_title",
    "template_impact",
    "template_summary",
    "template_dedupe_string",
)


def response_plans_sync(*, actor=None) -> SyncResult:
    """Mirror AWS's response plans: new ones arrive hidden, changed templates are updated, deleted ones flagged."""
    # Every AWS call happens before the transaction opens.
    fetched = {}
    for summary in aws.list_response_plans():
        plan = aws.get_response_plan(summary["arn"])
        template = plan.get("incidentTemplate", {})
        fetched[summary["arn"]] = {
            "name": plan.get("name", summary.get("name", "")),
            "aws_display_name": plan.get("displayName", summary.get("displayName", "")) or "",
            "template_title": template.get("title", ""),
            "template_impact": template.get("impact", 3),
            "template_summary": template.get("summary", "") or "",
            "template_dedupe_string": template.get("dedupeString", "") or "",
        }

    result = SyncResult()
    now = timezone.now()
    with transaction.atomic():
        existing = {plan.arn: plan for plan in ResponsePlan.objects.select_for_update()}
        for arn, values in fetched.items():
            plan = existing.get(arn)
            if plan is None:
                plan = ResponsePlan.objects.create(arn=arn, synced_at=now, **values)
                result.created.append(arn)
                audit_record(action="response_plan.discovered", actor=actor, response_plan=plan, details=values)
                continue
            changes = {
                name: {"from": getattr(plan, name), "to": value}
                for name, value in values.items()
                if getattr(plan, name) != value
            }
            if changes or plan.deleted_in_aws:
                for name, value in values.items():
                    setattr(plan, name, value)
                if plan.deleted_in_aws:
                    changes["deleted_in_aws"] = {"from": True, "to": False}
                plan.deleted_in_aws = False
                result.updated.append(arn)
                audit_record(action="response_plan.changed_in_aws", actor=actor, response_plan=plan, details=changes)
            else:
                result.unchanged += 1
            plan.synced_at = now
            plan.save()
        for arn, plan in existing.items():
            if arn not in fetched and not plan.deleted_in_aws:
                plan.deleted_in_aws = True
                plan.synced_at = now
                plan.save(update_fields=["deleted_in_aws", "synced_at", "updated_at"])
                result.deleted.append(arn)
                audit_record(action="response_plan.deleted_in_aws", actor=actor, response_plan=plan)
    return result


def response_plan_update(*, plan: ResponsePlan, actor, ip_address: str | None = None, **changes) -> ResponsePlan:
    """An admin's curation of a plan (visibility, wording, order, who may use it); each change is audited.

    `allowed_groups` takes an iterable of groups (empty: everyone may use the plan) and is audited by name.
    """
    allowed = {"display_name", "when_to_use", "is_visible", "order", "allowed_groups"}
    unknown = set(changes) - allowed
    if unknown:
        raise DeclarationError(f"These plan fields cannot be changed here: {', '.join(sorted(unknown))}.")
    groups = changes.pop("allowed_groups", None)
    diff = {
        name: {"from": getattr(plan, name), "to": value}
        for name, value in changes.items()
        if getattr(plan, name) != value
    }
    if groups is not None:
        groups = list(groups)
        before = sorted(plan.allowed_groups.values_list("name", flat=True))
        after = sorted(group.name for group in groups)
        if before != after:
            diff["allowed_groups"] = {"from": before, "to": after}
    if not diff:
        return plan
    with transaction.atomic():
        for name, value in changes.items():
            setattr(plan, name, value)
        plan.full_clean()
        plan.save()
        if "allowed_groups" in diff:
            plan.allowed_groups.set(groups)
        audit_record(
            action="response_plan.curated", actor=actor, response_plan=plan, details=diff, ip_address=ip_address
        )
    return plan


# --- Attachments -----------------------------------------------------------------------------------------


def related_item_download_url(*, item: RelatedItem, actor, ip_address: str | None = None) -> str:
    """A presigned link to one attached file, valid for minutes; who fetched which file is audited."""
    if item.kind != RelatedItem.Kind.FILE or not item.s3_key:
        raise DeclarationError("Only attached files can be downloaded.", code="not_found")
    if item.attachment_state not in (AttachmentState.STORED, AttachmentState.ATTACHED):
        raise DeclarationError("This file is not in S3 yet; it can be downloaded once it is stored.", code="not_found")
    url = aws.presigned_download_url(
        bucket=item.s3_bucket,
        key=item.s3_key,
        file_name=item.file_name,
        expires_in=settings.PORTAL_DOWNLOAD_URL_SECONDS,
    )
    audit_record(
        action="declaration.file_downloaded",
        actor=actor,
        declaration=item.declaration,
        ip_address=ip_address,
        details={"file_name": item.file_name, "s3_key": item.s3_key},
    )
    return url


# --- Users and roles -------------------------------------------------------------------------------------


def _role_groups(role_names) -> list[Group]:
    names = set(role_names)
    unknown = names - set(roles.ALL)
    if unknown:
        raise DeclarationError(f"Unknown roles: {', '.join(sorted(unknown))}.", field="roles")
    return list(Group.objects.filter(name__in=names))


@transaction.atomic
def user_create(
    *, username: str, email: str = "", password: str, role_names, actor, ip_address: str | None = None
) -> AbstractBaseUser:
    """An admin adds an account with its roles; the password must pass the configured validators."""
    User = get_user_model()
    user = User(username=username.strip(), email=email.strip())
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DeclarationError(" ".join(messages), field=field) from exc
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise DeclarationError(" ".join(exc.messages), field="password") from exc
    user.set_password(password)
    user.save()
    groups = _role_groups(role_names)
    user.groups.set(groups)
    audit_record(
        action="user.created",
        actor=actor,
        ip_address=ip_address,
        details={"user": user.get_username(), "roles": sorted(group.name for group in groups)},
    )
    return user


@transaction.atomic
def user_update(*, user, actor, role_names, is_active: bool, ip_address: str | None = None):
    """An admin changes someone's roles or disables the account; each change is audited."""
    if user.pk == actor.pk and (not is_active or roles.ADMIN not in set(role_names)) and not user.is_superuser:
        raise DeclarationError("You cannot remove your own admin role or disable your own account.", field="roles")
    groups = _role_groups(role_names)
    before = sorted(user.groups.filter(name__in=roles.ALL).values_list("name", flat=True))
    after = sorted(group.name for group in groups)
    diff: dict[str, Any] = {}
    if before != after:
        diff["roles"] = {"from": before, "to": after}
    if user.is_active != is_active:
        diff["is_active"] = {"from": user.is_active, "to": is_active}
    if not diff:
        return user
    # Groups that are not portal roles are left as they are.
    user.groups.remove(*Group.objects.filter(name__in=roles.ALL))
    user.groups.add(*groups)
    if "is_active" in diff:
        user.is_active = is_active
        user.save(update_fields=["is_active"])
    audit_record(
        action="user.updated", actor=actor, ip_address=ip_address, details={"user": user.get_username(), **diff}
    )
    return user


# --- API tokens ----------------------------------------------------------------------------------------

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
        raise DeclarationError("Your account has no role in the portal yet; ask an admin.", code="forbidden")
    if expires_at is not None and expires_at <= timezone.now():
        raise DeclarationError("Choose an expiry date in the future.", field="expires_at")
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
        raise DeclarationError("Only the token's owner or an admin can revoke it.", code="forbidden")
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

    Raises DeclarationError(code="unauthenticated") with a reason the caller can act on.
    """
    token = None
    if secret.startswith(API_TOKEN_PREFIX):
        token = ApiToken.objects.select_related("owner").filter(secret_hash=_api_token_hash(secret)).first()
    if token is None:
        raise DeclarationError("This API token is not valid.", code="unauthenticated")
    if token.revoked_at is not None:
        raise DeclarationError("This API token has been revoked; create a new one.", code="unauthenticated")
    now = timezone.now()
    if token.is_expired(now):
        raise DeclarationError("This API token has expired; create a new one.", code="unauthenticated")
    if not token.owner.is_active:
        raise DeclarationError("The account this API token belongs to is disabled.", code="unauthenticated")
    if token.last_used_at is None or token.last_used_at < now - API_TOKEN_LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- API rate limit ------------------------------------------------------------------------------------

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
