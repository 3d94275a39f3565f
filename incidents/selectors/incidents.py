"""The incident as AWS last described it (the worker's IncidentSnapshot), shaped for the declaration's page."""

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from ..models import Declaration, Impact, IncidentSnapshot


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    text: str
    references: list[str]


@dataclass(frozen=True)
class IncidentItem:
    kind: str
    title: str
    url: str
    value: str


@dataclass(frozen=True)
class IncidentView:
    """What the page says; `record` is None until the first read succeeded."""

    record: dict[str, Any] | None
    read_at: dt.datetime | None
    failed_at: dt.datetime | None
    failure_code: str
    failure_message: str
    refresh_pending: bool
    related_items: list[IncidentItem] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    timeline_truncated: bool = False
    engagements: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.record["status"] if self.record else ""

    @property
    def is_open(self) -> bool:
        return self.status == Declaration.AwsStatus.OPEN

    @property
    def impact_label(self) -> str:
        return Impact(self.record["impact"]).label if self.record else ""

    @property
    def chat_channels(self) -> list[str]:
        return ((self.record or {}).get("chatChannel") or {}).get("chatbotSns", [])

    @property
    def notification_targets(self) -> list[str]:
        return [target.get("snsTopicArn", "") for target in (self.record or {}).get("notificationTargets", [])]

    @property
    def runbooks(self) -> list[str]:
        return [run.get("ssmExecutionArn", "") for run in (self.record or {}).get("automationExecutions", [])]

    @property
    def resolved_at(self) -> dt.datetime | None:
        return _at((self.record or {}).get("resolvedTime"))

    @property
    def last_modified_at(self) -> dt.datetime | None:
        return _at((self.record or {}).get("lastModifiedTime"))

    @property
    def last_read_failed(self) -> bool:
        return self.failed_at is not None and (self.read_at is None or self.failed_at > self.read_at)

    @property
    def read_ago(self) -> str:
        return _ago(self.read_at)

    @property
    def failed_ago(self) -> str:
        return _ago(self.failed_at)


def incident_snapshot_of(*, declaration: Declaration) -> IncidentSnapshot | None:
    return IncidentSnapshot.objects.filter(declaration_id=declaration.pk).first()


def incident_view(*, snapshot: IncidentSnapshot | None) -> IncidentView | None:
    if snapshot is None:
        return None
    return IncidentView(
        record=snapshot.record,
        read_at=snapshot.read_at,
        failed_at=snapshot.failed_at,
        failure_code=snapshot.failure_code,
        failure_message=snapshot.failure_message,
        refresh_pending=snapshot.refresh_requested_at is not None,
        related_items=[_item(item) for item in snapshot.related_items],
        timeline=[_entry(event) for event in snapshot.timeline],
        timeline_truncated=snapshot.timeline_truncated,
        engagements=snapshot.engagements or [],
    )


def _item(item: dict[str, Any]) -> IncidentItem:
    identifier = item.get("identifier", {})
    value = identifier.get("value", {})
    url = value.get("url", "")
    shown = url or value.get("arn") or value.get("metricDefinition") or json.dumps(value, sort_keys=True)
    return IncidentItem(kind=identifier.get("type", ""), title=item.get("title", ""), url=url, value=shown)


def _entry(event: dict[str, Any]) -> TimelineEntry:
    references = [value for reference in event.get("eventReferences", []) for value in reference.values()]
    return TimelineEntry(
        at=_at(event["eventTime"]) or timezone.now(),
        kind=event.get("eventType", ""),
        text=_event_text(event.get("eventData")),
        references=references,
    )


def _event_text(data: str | None) -> str:
    """eventData is free text or a JSON string; a JSON object's own words (content, note, text…) when it has some."""
    if not data:
        return ""
    try:
        parsed = json.loads(data)
    except ValueError:
        return data
    if isinstance(parsed, dict):
        for key in ("content", "note", "text", "message", "summary"):
            if isinstance(parsed.get(key), str):
                return parsed[key]
        return json.dumps(parsed, sort_keys=True, ensure_ascii=False)
    if isinstance(parsed, str):  # a note as the console and the portal write it: a JSON string
        return parsed
    return data


def _at(epoch: float | None) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC) if epoch is not None else None


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
