"""The worker's attempt at one incident action (services/actions.py stores them), and the record of its outcome.

Safe to run any number of times: the row is checked under a lock before the calls, every call carries a client
token derived from the action's own (the same on every attempt), and the outcome is written only while the action
is still queued.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..aws import client as aws
from ..aws.requests import incident_update_request, related_item_for_aws, timeline_note_request
from ..models import AttachmentState, Declaration, IncidentAction, RelatedItem
from .audit import audit_record
from .incident_refresh import incident_refresh_after_action

Kind = IncidentAction.Kind


class ActionRetryable(Exception):
    """An AWS call of the action failed in a way worth another attempt later (throttling, 5xx, network)."""

    def __init__(self, error: aws.AwsError):
        super().__init__(str(error))
        self.error = error


def incident_action_send(*, action_id: int, final_attempt: bool, retry_in: float | None = None) -> IncidentAction:
    """One attempt at the AWS calls of an action. Raises ActionRetryable when AWS failed transiently and more
    attempts remain (bounded in the database too, as for StartIncident)."""
    with transaction.atomic():
        action = (
            IncidentAction.objects.select_for_update(of=("self",))
            .select_related("declaration", "requested_by")
            .get(pk=action_id)
        )
        if action.is_final:
            return action  # a second delivery: the first one finished the work
        action.attempts += 1
        # The sweeper leaves an action alone while attempts keep coming.
        action.dispatched_at = timezone.now()
        action.save(update_fields=["attempts", "dispatched_at", "updated_at"])
    final_attempt = final_attempt or action.attempts > settings.PORTAL_START_MAX_RETRIES
    try:
        _send(action)
    except aws.AwsError as error:
        if error.retryable and not final_attempt:
            attempt: dict[str, Any] = {
                "action": action.pk,
                "attempt": action.attempts,
                "code": error.code,
                "message": error.message,
            }
            if retry_in is not None:
                attempt["next_attempt_at"] = (timezone.now() + timedelta(seconds=retry_in)).isoformat()
            audit_record(action="incident_action.attempt_failed", declaration=action.declaration, details=attempt)
            raise ActionRetryable(error) from error
        return _action_finish(action, error=error)
    return _action_finish(action)


def _send(action: IncidentAction) -> None:
    arn = action.declaration.incident_record_arn
    token = action.client_token
    payload = action.payload
    if action.kind in (Kind.NOTE, Kind.RESOLVE):
        aws.create_timeline_event(
            request=timeline_note_request(
                incident_record_arn=arn,
                client_token=f"{token}-note",
                text=payload["text"] if action.kind == Kind.NOTE else payload["note"],
                author=action.requested_by.get_username(),
                at=action.created_at,
            )
        )
    if action.kind == Kind.RESOLVE:
        aws.update_incident_record(
            request=incident_update_request(arn=arn, client_token=f"{token}-resolve", changes={"status": "RESOLVED"})
        )
    elif action.kind == Kind.UPDATE:
        aws.update_incident_record(
            request=incident_update_request(arn=arn, client_token=f"{token}-update", changes=payload)
        )
    elif action.kind == Kind.RELATED_ITEMS:
        # Files S3 refused when they were added wait in the database; the late-attachment task adds them.
        waiting = set(
            RelatedItem.objects.filter(
                pk__in=[item["id"] for item in payload["items"]],
                attachment_state__in=[AttachmentState.PENDING, AttachmentState.FAILED],
            ).values_list("pk", flat=True)
        )
        for item in payload["items"]:
            if item["id"] in waiting:
                continue
            aws.add_related_item(
                incident_record_arn=arn,
                item=related_item_for_aws(kind=item["kind"], value=item["value"], title=item["title"]),
                client_token=f"{token}-item-{item['id']}",
            )


def _action_finish(action: IncidentAction, *, error: aws.AwsError | None = None) -> IncidentAction:
    now = timezone.now()
    changes: dict[str, Any]
    if error is None:
        changes = {"state": IncidentAction.State.SENT, "sent_at": now, "failure_code": "", "failure_reason": ""}
        event, details = "incident_action.sent", {"action": action.pk, "kind": action.kind, "attempts": action.attempts}
    else:
        reason = error.message
        if error.retryable:
            reason += f" (gave up after {action.attempts} attempts)"
        changes = {"state": IncidentAction.State.FAILED, "failure_code": error.code, "failure_reason": reason}
        event = "incident_action.failed"
        details = {
            "action": action.pk,
            "kind": action.kind,
            "code": error.code,
            "message": error.message,
            "attempts": action.attempts,
        }
    with transaction.atomic():
        changes["updated_at"] = now
        written = IncidentAction.objects.filter(pk=action.pk, state=IncidentAction.State.QUEUED).update(**changes)
        if not written:
            return IncidentAction.objects.get(pk=action.pk)
        for name, value in changes.items():
            setattr(action, name, value)
        audit_record(action=event, declaration=action.declaration, details=details)
        if error is None and action.kind == Kind.RESOLVE:
            Declaration.objects.filter(pk=action.declaration_id).update(
                aws_status=Declaration.AwsStatus.RESOLVED, resolved_at=now, updated_at=now
            )
        if error is None and action.kind == Kind.RELATED_ITEMS:
            RelatedItem.objects.filter(
                pk__in=[item["id"] for item in action.payload["items"]], attachment_state=AttachmentState.STORED
            ).update(attachment_state=AttachmentState.ATTACHED)
        if error is None:
            # Read the incident back, so that the page's AWS section shows what the person just did.
            transaction.on_commit(lambda: incident_refresh_after_action(declaration_id=action.declaration_id))
    return action
