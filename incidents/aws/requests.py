"""What the portal sends to Incident Manager, built in one place for the worker, the declare page's preview and the
late attachments: the StartIncident request and related items in AWS's shape."""

import json
from datetime import datetime
from typing import Any

from django.conf import settings

from .client import start_incident_limits

RELATED_ITEM_TYPES = {
    "link": ("OTHER", "url"),
    "resource": ("INVOLVED_RESOURCE", "arn"),
    "file": ("ATTACHMENT", "arn"),
}


def related_item_for_aws(*, kind: str, value: str, title: str = "") -> dict[str, Any]:
    """One related item as StartIncident and UpdateRelatedItems take it."""
    item_type, value_key = RELATED_ITEM_TYPES[kind]
    related: dict[str, Any] = {"identifier": {"type": item_type, "value": {value_key: value}}}
    if title:
        related["title"] = title
    return related


def start_incident_request(
    *,
    response_plan_arn: str,
    client_token: str,
    title: str,
    impact: int | None,
    related_items: list[tuple[str, str, str]],
    declared_by: str,
    declaration_id: int | str,
    declaration_url: str,
    created_at: datetime,
    trigger_details: dict[str, str] | None = None,
    impact_started_at: datetime | None = None,
    drill_of: str | None = None,
) -> dict[str, Any]:
    """StartIncident's request from its parts; `related_items` are (kind, value, title).

    Title and impact are sent only where the person set them: AWS then takes the plan's own. The declare page's
    preview calls this too, with stand-ins for what only exists once the declaration is stored.
    triggerDetails always name the portal as the source and the declarer in rawData; an API caller's own trigger
    (say, the alarm that fired) keeps its timestamp and triggerArn, and its source and rawData travel inside the
    portal's rawData (`trigger_raw_data`). `impact_started_at` (when the declarer says customers began to be hurt)
    is the trigger's timestamp, so that Incident Manager's metrics count from then.

    A drill (`drill_of`: the title in effect, the plan's when the person left it empty) always sends its title with
    DRILL_TITLE_PREFIX in front: the responders it pages read the title first (in the page, the chat channel, the
    console), and must know at once that no customer is hurt. rawData says `"drill": true` for tools.
    """
    request: dict[str, Any] = {"responsePlanArn": response_plan_arn, "clientToken": client_token}
    if drill_of is not None:
        title = drill_title(drill_of)
    if title:
        request["title"] = title
    if impact:
        request["impact"] = impact
    items = [
        related_item_for_aws(kind=kind, value=value, title=item_title) for kind, value, item_title in related_items
    ]
    if items:
        request["relatedItems"] = items
    trigger = dict(trigger_details or {})
    caller: dict[str, str] = {key: trigger[key] for key in ("source", "rawData") if key in trigger}
    portal_trigger: dict[str, Any] = {
        # Always the portal's own source: what AWS shows as the incident's origin is the portal, and the declarer
        # named in rawData is the person the portal authenticated, never a name a caller wrote.
        "source": settings.PORTAL_TRIGGER_SOURCE,
        "timestamp": impact_started_at
        or (datetime.fromisoformat(trigger["timestamp"]) if "timestamp" in trigger else created_at),
        "rawData": trigger_raw_data(
            declared_by=declared_by,
            declaration_id=declaration_id,
            declaration_url=declaration_url,
            caller=caller or None,
            drill=drill_of is not None,
        ),
    }
    if "triggerArn" in trigger:
        portal_trigger["triggerArn"] = trigger["triggerArn"]
    request["triggerDetails"] = portal_trigger
    return request


def trigger_raw_data(
    *,
    declared_by: str,
    declaration_id: int | str,
    declaration_url: str,
    caller: dict[str, str] | None,
    drill: bool = False,
) -> str:
    """The portal's rawData: the declarer and the declaration first, then an API caller's own trigger source and
    rawData as strings inside `caller`, where they cannot stand in for the portal's fields. The caller's room is
    checked before anything is stored (validators.validate_trigger_fits), so nothing is ever cut off here."""
    data: dict[str, Any] = {
        "declaredBy": declared_by,
        "declarationId": declaration_id,
        "declarationUrl": declaration_url,
    }
    if drill:
        data["drill"] = True
    if caller:
        data["caller"] = caller
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# In front of a drill's title in AWS; a plan title that already starts with it is left as it is.
DRILL_TITLE_PREFIX = "[DRILL] "


def drill_title(title: str) -> str:
    """A drill's title as AWS receives it. A person's own title leaves room for the prefix (validators check it);
    a plan's title that does not is shortened, never the prefix dropped."""
    if title.upper().startswith(DRILL_TITLE_PREFIX.strip()):
        return title
    limit = start_incident_limits()["title_max_length"]
    title = DRILL_TITLE_PREFIX + title
    return title if len(title) <= limit else title[: limit - 1] + "…"


def attachment_key(*, client_token: str, position: int, file_name: str) -> str:
    """Where an attached file is stored in S3."""
    return f"declarations/{client_token}/{position:03d}-{file_name}"


def s3_object_arn(*, bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


# --- What is sent to a started incident (services/action_sending.py) ----------------------------------------

# The event type AWS's console gives the notes people write on the timeline.
NOTE_EVENT_TYPE = "Custom Event"


def timeline_note_request(
    *, incident_record_arn: str, client_token: str, text: str, author: str, at: datetime
) -> dict[str, Any]:
    """CreateTimelineEvent for a person's note: a custom event naming its author, at the moment it was written (the
    same on every attempt, so that the client token always carries the same request). eventData is a JSON string."""
    return {
        "incidentRecordArn": incident_record_arn,
        "clientToken": client_token,
        "eventTime": at,
        "eventType": NOTE_EVENT_TYPE,
        "eventData": json.dumps(f"{text.strip()}\n— {author}, via the incident portal", ensure_ascii=False),
    }


def incident_update_request(*, arn: str, client_token: str, changes: dict[str, Any]) -> dict[str, Any]:
    """UpdateIncidentRecord for the fields that change (title, impact, summary, status)."""
    return {"arn": arn, "clientToken": client_token, **changes}
