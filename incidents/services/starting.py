"""The worker's attempt at StartIncident for one declaration, and the record of its outcome.

Safe to run any number of times: the row is locked and checked before the call, the client token is the same on
every attempt, and the outcome is written only while the declaration is not final.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import metrics
from ..aws import client as aws
from ..models import AttachmentState, Declaration, RelatedItem
from ..selectors.declarations import declaration_for_start, declaration_start_request
from .attachments import attachments_dispatch
from .audit import audit_record, jsonable


class StartRetryable(Exception):
    """StartIncident failed in a way worth another attempt later (throttling, 5xx, network)."""

    def __init__(self, error: aws.AwsError):
        super().__init__(str(error))
        self.error = error


def declaration_start(*, declaration_id: int, final_attempt: bool, retry_in: float | None = None) -> Declaration:
    """One attempt at StartIncident for a declaration; safe to run any number of times.

    Raises StartRetryable when AWS failed transiently and more attempts remain; `retry_in` (seconds) is when the
    caller will try again, recorded with the failed attempt so that the declaration's page can say when. The bound
    is counted in the database too, so re-deliveries (worker lost, sweeper) can never make the attempts unbounded.
    """
    with transaction.atomic():
        declaration = declaration_for_start(declaration_id)
        if declaration.is_final:
            # A second delivery of the same task: the first one already finished the work.
            return declaration
        related_items = list(declaration.related_items.defer("pending_content"))
        request = declaration_start_request(declaration, related_items)
        declaration.state = Declaration.State.STARTING
        declaration.attempts += 1
        declaration.aws_request = jsonable(request)
        declaration.save(update_fields=["state", "attempts", "aws_request", "updated_at"])
        audit_record(
            action="declaration.starting",
            declaration=declaration,
            details={"attempt": declaration.attempts, "client_token": declaration.client_token},
        )

    final_attempt = final_attempt or declaration.attempts > settings.PORTAL_START_MAX_RETRIES
    has_files = any(item.kind == RelatedItem.Kind.FILE for item in related_items)
    try:
        result = aws.start_incident(request)
    except aws.AwsError as error:
        if error.retryable and not final_attempt:
            attempt: dict[str, Any] = {"attempt": declaration.attempts, "code": error.code, "message": error.message}
            if retry_in is not None:
                attempt["next_attempt_at"] = (timezone.now() + timedelta(seconds=retry_in)).isoformat()
            audit_record(action="declaration.attempt_failed", declaration=declaration, details=attempt)
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
    changes: dict[str, Any]
    if result is not None:
        changes = {
            "state": Declaration.State.STARTED,
            "incident_record_arn": result.incident_record_arn,
            # StartIncident makes an open incident: the history's AWS status says so before the first read.
            "aws_status": Declaration.AwsStatus.OPEN,
            "started_at": timezone.now(),
            "failure_code": "",
            "failure_reason": "",
            "aws_response": {"incidentRecordArn": result.incident_record_arn, "requestId": result.request_id},
        }
        action = "declaration.started"
        details: dict[str, Any] = {"incident_record_arn": result.incident_record_arn, "request_id": result.request_id}
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
    with transaction.atomic():
        # Written only while the declaration is not final, as one statement: an attempt running at the same time
        # (a re-delivered message) waits for the first one's row lock, then finds the row final and changes nothing.
        changes["updated_at"] = timezone.now()
        written = (
            Declaration.objects.filter(pk=declaration.pk).exclude(state__in=Declaration.FINAL_STATES).update(**changes)
        )
        if not written:
            return Declaration.objects.get(pk=declaration.pk)
        for name, value in changes.items():
            setattr(declaration, name, value)
        audit_record(action=action, declaration=declaration, details=details)
        # Counted once, by the attempt that wrote the outcome (re-deliveries that find it final count nothing).
        transaction.on_commit(
            lambda: metrics.DECLARATIONS_FINISHED.labels(state=changes["state"], source=declaration.source).inc()
        )
        if result is not None:
            elapsed = (changes["started_at"] - declaration.created_at).total_seconds()
            transaction.on_commit(
                lambda: metrics.DECLARATION_TO_STARTED_SECONDS.labels(source=declaration.source).observe(elapsed)
            )
        if result is not None and has_files:
            files = declaration.related_items.filter(kind=RelatedItem.Kind.FILE)
            if files.filter(attachment_state=AttachmentState.PENDING).exists():
                transaction.on_commit(lambda: attachments_dispatch(declaration_id=declaration.pk))
            files.filter(attachment_state=AttachmentState.STORED).update(attachment_state=AttachmentState.ATTACHED)
    return declaration
