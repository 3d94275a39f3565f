"""Writes attached files: into S3 as a declaration is stored, later (when S3 was down then) into the incident, and
who downloaded which file."""

import io
import logging
import mimetypes
from dataclasses import dataclass

from celery import current_app
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from ..aws import client as aws
from ..aws.requests import attachment_key, related_item_for_aws, s3_object_arn
from ..errors import PortalError
from ..models import AttachmentState, Declaration, RelatedItem
from ..validators import safe_file_name
from .audit import audit_record

logger = logging.getLogger(__name__)

ATTACH_TASK = "incidents.tasks.attach_pending_files"


@dataclass
class RelatedItemInput:
    """A related item as a person or a script gave it: a link's URL or a resource's ARN in `value`, or an upload."""

    kind: str
    title: str = ""
    value: str = ""
    upload: UploadedFile | None = None


def related_item_store(*, item: RelatedItemInput, position: int, client_token: str) -> RelatedItem:
    """The related item to save with a declaration; a file is uploaded to S3 first (before any transaction opens),
    or, when S3 fails, kept in the database for a task to upload once the incident exists."""
    if item.kind != RelatedItem.Kind.FILE:
        return RelatedItem(kind=item.kind, title=item.title.strip(), value=item.value.strip(), position=position)
    upload = item.upload
    if upload is None:
        raise PortalError("Choose a file to attach.", field="file")
    file_name = safe_file_name(upload.name or "")
    # The type follows the (checked) extension, never the browser's claim.
    content_type = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    bucket = settings.PORTAL_S3_BUCKET
    key = attachment_key(client_token=client_token, position=position, file_name=file_name)
    related = RelatedItem(
        kind=RelatedItem.Kind.FILE,
        title=item.title.strip() or file_name,
        value=s3_object_arn(bucket=bucket, key=key),
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


class AttachmentRetryable(Exception):
    """Uploading or attaching a kept file failed transiently; the task tries again later."""


def attachments_dispatch(*, declaration_id: int) -> bool:
    """Queue the upload of a declaration's kept files. Never raises: the sweeper finds what stays pending."""
    try:
        current_app.send_task(ATTACH_TASK, args=[declaration_id])
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
                item=related_item_for_aws(kind=item.kind, value=item.value, title=item.title),
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


def related_item_download_url(*, item: RelatedItem, actor: User, ip_address: str | None = None) -> str:
    """A presigned link to one attached file, valid for minutes; who fetched which file is audited."""
    if item.kind != RelatedItem.Kind.FILE or not item.s3_key:
        raise PortalError("Only attached files can be downloaded.", code="not_found")
    if item.attachment_state not in (AttachmentState.STORED, AttachmentState.ATTACHED):
        raise PortalError("This file is not in S3 yet; it can be downloaded once it is stored.", code="not_found")
    try:
        url = aws.presigned_download_url(
            bucket=item.s3_bucket,
            key=item.s3_key,
            file_name=item.file_name,
            expires_in=settings.PORTAL_DOWNLOAD_URL_SECONDS,
        )
    except aws.AwsError as exc:
        raise PortalError(f"No download link could be made: {exc.message}", code="unavailable") from exc
    audit_record(
        action="declaration.file_downloaded",
        actor=actor,
        declaration=item.declaration,
        ip_address=ip_address,
        details={"file_name": item.file_name, "s3_key": item.s3_key},
    )
    return url
