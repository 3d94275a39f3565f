"""Writes: every change to declarations, plans and the audit trail goes through here."""

import hashlib
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
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import aws, roles, selectors
from .models import ApiToken, AuditEvent, Declaration, RelatedItem, ResponsePlan
from .validators import safe_file_name

logger = logging.getLogger(__name__)

SYSTEM_ACTOR = "system"
GENESIS_HASH = "0" * 64
# Any constant: the key of the advisory lock that serialises appends to the audit hash chain.
AUDIT_CHAIN_LOCK = 0x41554449


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
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Appends must be serial, or two events could chain to the same predecessor.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK])
        previous = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            declaration=declaration,
            response_plan=response_plan,
            actor=actor,
            actor_label=actor.get_username() if actor else SYSTEM_ACTOR,
            action=action,
            details=_jsonable(details or {}),
            ip_address=ip_address,
            created_at=timezone.now(),
            previous_hash=previous or GENESIS_HASH,
        )
        event.hash = event.content_hash()
        event.save(force_insert=True)
        return event


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
    if idempotency_key:
        existing = _declaration_for_key(idempotency_key, declared_by, request_fingerprint)
        if existing:
            return existing, False

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
    )
    # Uniqueness is the database's to decide (below): a check here would race a concurrent request with the same key.
    declaration.full_clean(validate_unique=False)
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
                    **({"trigger_source": trigger_details["source"]} if trigger_details else {}),
                },
            )
            transaction.on_commit(lambda: declaration_dispatch(declaration_id=declaration.pk))
    except IntegrityError:
        # A concurrent request with the same idempotency key won the race: answer with its declaration.
        existing = idempotency_key and _declaration_for_key(idempotency_key, declared_by, request_fingerprint)
        if not existing:
            raise
        return existing, False
    logger.info("declaration %s queued by %s", declaration.pk, declared_by.get_username())
    return declaration, True


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
    upload.seek(0)
    try:
        aws.upload_attachment(bucket=bucket, key=key, body=upload, content_type=content_type)
    except aws.AwsError as exc:
        logger.warning("upload of %s to s3://%s/%s failed: %s", file_name, bucket, key, exc)
        raise DeclarationError(
            f"“{file_name}” could not be stored ({exc.message}). Try again in a moment.", field="file"
        ) from exc
    return RelatedItem(
        kind=RelatedItem.Kind.FILE,
        title=item.title.strip() or file_name,
        value=aws.s3_object_arn(bucket=bucket, key=key),
        position=position,
        file_name=file_name,
        content_type=content_type,
        size=upload.size,
        s3_bucket=bucket,
        s3_key=key,
    )


def declaration_dispatch(*, declaration_id: int) -> bool:
    """Hand a declaration to the workers. Never raises: a declaration that could not be published
    stays queued in the database, where the sweeper finds it."""
    from .tasks import start_declaration

    try:
        start_declaration.delay(declaration_id)
    except Exception:  # the broker is down or unreachable; the row is the source of truth
        logger.warning("declaration %s could not be queued now; it stays queued", declaration_id, exc_info=True)
        return False
    Declaration.objects.filter(pk=declaration_id).update(dispatched_at=timezone.now())
    return True


def declaration_start(*, declaration_id: int, final_attempt: bool) -> Declaration:
    """One attempt at StartIncident for a declaration; safe to run any number of times.

    Raises StartRetryable when AWS failed transiently and more attempts remain.
    """
    with transaction.atomic():
        declaration = (
            Declaration.objects.select_for_update(of=("self",))
            .select_related("response_plan", "declared_by")
            .get(pk=declaration_id)
        )
        if declaration.is_final:
            # A second delivery of the same task: the first one already finished the work.
            return declaration
        request = selectors.declaration_start_request(declaration)
        declaration.state = Declaration.State.STARTING
        declaration.attempts += 1
        declaration.aws_request = _jsonable(request)
        declaration.save(update_fields=["state", "attempts", "aws_request", "updated_at"])
        audit_record(
            action="declaration.starting",
            declaration=declaration,
            details={"attempt": declaration.attempts, "client_token": declaration.client_token},
        )

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
        return _declaration_finish(declaration_id=declaration_id, error=error)
    return _declaration_finish(declaration_id=declaration_id, result=result)


def _declaration_finish(
    *, declaration_id: int, result: aws.StartIncidentResult | None = None, error: aws.AwsError | None = None
) -> Declaration:
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update(of=("self",)).get(pk=declaration_id)
        if declaration.is_final:
            return declaration
        if result is not None:
            declaration.state = Declaration.State.STARTED
            declaration.incident_record_arn = result.incident_record_arn
            declaration.started_at = timezone.now()
            declaration.failure_code = declaration.failure_reason = ""
            declaration.aws_response = {
                "incidentRecordArn": result.incident_record_arn,
                "requestId": result.request_id,
            }
            audit_record(
                action="declaration.started",
                declaration=declaration,
                details={"incident_record_arn": result.incident_record_arn, "request_id": result.request_id},
            )
        else:
            assert error is not None
            declaration.state = Declaration.State.FAILED
            declaration.failure_code = error.code
            declaration.failure_reason = error.message
            declaration.aws_response = {
                "error": {"code": error.code, "message": error.message},
                "requestId": error.request_id,
            }
            audit_record(
                action="declaration.failed",
                declaration=declaration,
                details={"code": error.code, "message": error.message, "attempts": declaration.attempts},
            )
        declaration.save()
    log = logger.info if result else logger.warning
    log("declaration %s %s", declaration_id, declaration.state)
    return declaration


def declaration_retry(*, declaration: Declaration, actor, ip_address: str | None = None) -> Declaration:
    """Queue a failed declaration again. It keeps its client token, so AWS never starts it twice."""
    with transaction.atomic():
        declaration = Declaration.objects.select_for_update(of=("self",)).get(pk=declaration.pk)
        if declaration.state != Declaration.State.FAILED:
            raise DeclarationError("Only a failed declaration can be retried.", code="conflict")
        previous = {"code": declaration.failure_code, "message": declaration.failure_reason}
        declaration.state = Declaration.State.QUEUED
        declaration.failure_code = declaration.failure_reason = ""
        declaration.save(update_fields=["state", "failure_code", "failure_reason", "updated_at"])
        audit_record(
            action="declaration.retried",
            actor=actor,
            declaration=declaration,
            ip_address=ip_address,
            details={"previous_failure": previous, "client_token": declaration.client_token},
        )
        transaction.on_commit(lambda: declaration_dispatch(declaration_id=declaration.pk))
    return declaration


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
