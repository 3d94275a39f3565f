"""The incident as AWS sees it, read back by the worker for the declaration's page (never by a page view).

A refresh reads GetIncidentRecord, ListRelatedItems and ListTimelineEvents (plus GetTimelineEvent for the text of new
events, and the plan's engagements once) through the read budget of aws/client.py, then stores one IncidentSnapshot
and the declaration's aws_status / resolved_at. A failed read keeps the last good snapshot and records the failure.

Refreshes are asked for in two ways, both de-duplicated by IncidentSnapshot.refresh_requested_at:
- the declaration's page while someone watches it (incident_refresh_request), at most one per
  PORTAL_INCIDENT_WATCH_REFRESH_AFTER seconds however many people watch;
- beat's round over the open incidents (incidents_refresh_due), as many per round as the budget allows.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.db.models.functions import Greatest
from django.utils import timezone

from ..aws import client as aws
from ..aws.client import AwsError
from ..models import Declaration, IncidentSnapshot
from .audit import audit_record

logger = logging.getLogger(__name__)

REFRESH_TASK = "incidents.tasks.refresh_incident"
# What the page keeps of the timeline, and how many events' text one refresh reads (GetTimelineEvent each).
TIMELINE_LIMIT = 50
EVENT_TEXTS_PER_REFRESH = 5
# GetIncidentRecord + ListRelatedItems + ListTimelineEvents: what beat's round plans each refresh to cost.
CALLS_PER_REFRESH = 3
# The portal's own slowness, not AWS's answer: the refresh is simply asked for again later.
_NOT_SENT = {"PortalRateLimited", "RateLimiterUnavailable"}


@dataclass(frozen=True)
class RefreshOutcome:
    outcome: str  # "read", "failed" (AWS answered with an error; the last good snapshot stays), "deferred", "skipped"
    error: AwsError | None = None


def incident_refresh(*, declaration_id: int) -> RefreshOutcome:
    """Read the declaration's incident from AWS and store what it says (the worker's task)."""
    declaration = Declaration.objects.select_related("response_plan").get(pk=declaration_id)
    if declaration.state != Declaration.State.STARTED or not declaration.incident_record_arn:
        return RefreshOutcome("skipped")
    previous = IncidentSnapshot.objects.filter(declaration_id=declaration_id).first()
    arn = declaration.incident_record_arn
    # "Read at" is when the reads began: whatever changed in AWS before that moment is in what they return.
    began = timezone.now()
    # Every AWS call happens before the transaction opens.
    try:
        record = _jsonable(aws.get_incident_record(arn))
        related_items = _jsonable(aws.list_related_items(arn))
        events, truncated = aws.list_timeline_events(arn, limit=TIMELINE_LIMIT)
        timeline = _with_event_texts(arn, _jsonable(events), previous.timeline if previous else [])
        engagements = previous.engagements if previous and previous.engagements is not None else None
        if engagements is None:
            engagements = _engagements(declaration.response_plan.arn)
    except AwsError as exc:
        if exc.code in _NOT_SENT:
            IncidentSnapshot.objects.filter(declaration_id=declaration_id).update(refresh_requested_at=None)
            return RefreshOutcome("deferred", exc)
        _record_failure(declaration_id=declaration_id, error=exc)
        return RefreshOutcome("failed", exc)

    status = record["status"]
    resolved_at = _datetime(record.get("resolvedTime"))
    with transaction.atomic():
        snapshot, _ = IncidentSnapshot.objects.select_for_update().get_or_create(declaration_id=declaration_id)
        snapshot.record = record
        snapshot.related_items = related_items
        snapshot.timeline = timeline
        snapshot.timeline_truncated = truncated
        snapshot.engagements = engagements
        snapshot.read_at = began
        snapshot.failed_at = None
        snapshot.failure_code = snapshot.failure_message = ""
        snapshot.refresh_requested_at = None
        snapshot.save()
        current = Declaration.objects.select_for_update().only("aws_status", "resolved_at").get(pk=declaration_id)
        # Resolved from the portal (services/action_sending.py) after these reads began: they are older than that
        # change, which asked for a read of its own; an older read does not reopen the incident.
        resolved_since = (
            current.aws_status == Declaration.AwsStatus.RESOLVED
            and current.resolved_at is not None
            and current.resolved_at > began
        )
        if (current.aws_status != status or current.resolved_at != resolved_at) and not resolved_since:
            # update(), not save(): only these two columns, whatever else another writer is changing.
            Declaration.objects.filter(pk=declaration_id).update(aws_status=status, resolved_at=resolved_at)
            if current.aws_status and current.aws_status != status:
                audit_record(
                    action="declaration.aws_status_changed",
                    declaration=declaration,
                    details={"from": current.aws_status, "to": status, "lastModifiedBy": record.get("lastModifiedBy")},
                )
    return RefreshOutcome("read")


def _engagements(plan_arn: str) -> list[str] | None:
    """The plan's engagements, read once per incident; None (asked again next time) when the plan cannot be read."""
    try:
        return aws.get_response_plan_engagements(plan_arn)
    except AwsError as exc:
        if exc.retryable:
            return None
        return []  # the plan is gone or not ours to read: nobody to name


def _with_event_texts(arn: str, events: list[dict[str, Any]], previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events (newest first), each with its eventData: kept from the last snapshot when the event has not changed
    since, otherwise read with GetTimelineEvent, the newest few per refresh (the rest on the next ones)."""
    known = {(event["eventId"], event["eventUpdatedTime"]): event.get("eventData") for event in previous}
    reads = 0
    for event in events:
        data = known.get((event["eventId"], event["eventUpdatedTime"]))
        if data is None and reads < EVENT_TEXTS_PER_REFRESH:
            data = aws.get_timeline_event(arn, event["eventId"]).get("eventData")
            reads += 1
        if data is not None:
            event["eventData"] = data
    return events


def _record_failure(*, declaration_id: int, error: AwsError) -> None:
    logger.warning(
        "incident of declaration %s not read: %s",
        declaration_id,
        error,
        extra={"declaration_id": declaration_id, "event": "incident.refresh_failed", "error_code": error.code},
    )
    with transaction.atomic():
        snapshot, _ = IncidentSnapshot.objects.select_for_update().get_or_create(declaration_id=declaration_id)
        snapshot.failed_at = timezone.now()
        snapshot.failure_code = error.code
        snapshot.failure_message = error.message
        snapshot.refresh_requested_at = None
        snapshot.save()


def incident_refresh_request(*, declaration: Declaration, snapshot: IncidentSnapshot | None) -> IncidentSnapshot | None:
    """Someone is looking at the declaration's page: queue a refresh when the last read is older than
    PORTAL_INCIDENT_WATCH_REFRESH_AFTER and none was asked for within it. Sends a task; never calls AWS, never
    raises. Returns the snapshot as the page should show it (with the refresh asked for, when this call asked)."""
    if declaration.state != Declaration.State.STARTED or not declaration.incident_record_arn:
        return snapshot
    now = timezone.now()
    horizon = now - dt.timedelta(seconds=settings.PORTAL_INCIDENT_WATCH_REFRESH_AFTER)
    if snapshot is not None and any(
        _after(moment, horizon) for moment in (snapshot.read_at, snapshot.failed_at, snapshot.refresh_requested_at)
    ):
        return snapshot  # read, failed or asked for a moment ago: answered from what the page loaded, no query
    if snapshot is None:
        IncidentSnapshot.objects.bulk_create([IncidentSnapshot(declaration_id=declaration.pk)], ignore_conflicts=True)
    # One conditional UPDATE: of ten watchers polling at once, one matches the row; the others change nothing.
    claimed = (
        IncidentSnapshot.objects.filter(declaration_id=declaration.pk)
        .filter(_not_since(horizon))
        .update(refresh_requested_at=now)
    )
    if claimed:
        _dispatch([declaration.pk], spacing=0)
    shown = snapshot or IncidentSnapshot(declaration_id=declaration.pk)
    shown.refresh_requested_at = now  # asked for now, by this view or another one a moment ago
    return shown


def incident_refresh_after_action(*, declaration_id: int) -> None:
    """The portal has just changed the incident (an action of services/action_sending.py was sent): read it back now,
    however recent the last read, so that the page shows the person's note, items, change or resolving within a
    moment (the read still goes through the read budget). Sends a task; never calls AWS; never raises."""
    try:
        IncidentSnapshot.objects.bulk_create([IncidentSnapshot(declaration_id=declaration_id)], ignore_conflicts=True)
        IncidentSnapshot.objects.filter(declaration_id=declaration_id).update(refresh_requested_at=timezone.now())
    except DatabaseError as exc:  # the action is sent either way; the page's polls or beat's round read it later
        logger.warning("refresh of declaration %s not asked for: %s", declaration_id, type(exc).__name__)
        return
    _dispatch([declaration_id], spacing=0)


def incidents_refresh_due() -> list[int]:
    """Beat's round: queue the refresh of the open incidents read longest ago (older than
    PORTAL_INCIDENT_REFRESH_MAX_AGE), as many as the read budget allows in one PORTAL_INCIDENT_REFRESH_INTERVAL,
    each sent to arrive at the budget's pace, less the refreshes still waiting from earlier rounds or watchers (so the
    queue never grows beyond one interval of the budget). The others wait for the next rounds. Returns the
    declarations queued."""
    rate = settings.PORTAL_AWS_READ_RATE
    interval = settings.PORTAL_INCIDENT_REFRESH_INTERVAL
    spacing = CALLS_PER_REFRESH / rate if rate > 0 else 0.0
    batch = max(1, int(interval / spacing)) if spacing else 1000
    now = timezone.now()
    horizon = now - dt.timedelta(seconds=settings.PORTAL_INCIDENT_REFRESH_MAX_AGE)
    batch -= IncidentSnapshot.objects.filter(refresh_requested_at__gt=horizon).count()
    if batch <= 0:
        return []
    due = list(
        Declaration.objects.filter(state=Declaration.State.STARTED)
        .exclude(incident_record_arn="")
        .exclude(aws_status=Declaration.AwsStatus.RESOLVED)
        .filter(_not_since(horizon, prefix="incident_snapshot__"))
        # Longest since the last attempt first; one that keeps failing waits its turn like the others.
        .order_by(Greatest("incident_snapshot__read_at", "incident_snapshot__failed_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:batch]
    )
    if not due:
        return []
    IncidentSnapshot.objects.bulk_create([IncidentSnapshot(declaration_id=pk) for pk in due], ignore_conflicts=True)
    with transaction.atomic():
        # Rows a watcher's request holds right now are theirs: skipped, not waited for.
        claimable = set(
            IncidentSnapshot.objects.select_for_update(skip_locked=True)
            .filter(declaration_id__in=due)
            .filter(_not_since(horizon))
            .values_list("declaration_id", flat=True)
        )
        IncidentSnapshot.objects.filter(declaration_id__in=claimable).update(refresh_requested_at=now)
    claimed = [pk for pk in due if pk in claimable]
    _dispatch(claimed, spacing=spacing)
    return claimed


def _dispatch(declaration_ids: Iterable[int], *, spacing: float) -> None:
    for position, declaration_id in enumerate(declaration_ids):
        try:
            current_app.send_task(REFRESH_TASK, args=[declaration_id], countdown=position * spacing or None)
        except Exception as exc:  # the broker is away: the request lapses and the next poll or round asks again
            logger.warning("refresh of declaration %s not queued: %s", declaration_id, type(exc).__name__)
            return


def _not_since(horizon: dt.datetime, *, prefix: str = "") -> Q:
    """Nothing happened to the snapshot since `horizon`: no read, no failed read, no refresh asked for."""
    condition = Q()
    for name in ("read_at", "failed_at", "refresh_requested_at"):
        condition &= Q(**{f"{prefix}{name}__isnull": True}) | Q(**{f"{prefix}{name}__lte": horizon})
    return condition


def _after(moment: dt.datetime | None, horizon: dt.datetime) -> bool:
    return moment is not None and moment > horizon


def _datetime(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC) if epoch is not None else None


def _jsonable(value: Any) -> Any:
    """AWS's answer as JSON: botocore's datetimes become epoch seconds again, as they travel on the wire."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return value
