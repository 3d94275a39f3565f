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
) -> dict[str, Any]:
    """StartIncident's request from its parts; `related_items` are (kind, value, title).

    Title and impact are sent only where the person set them: AWS then takes the plan's own. The declare page's
    preview calls this too, with stand-ins for what only exists once the declaration is stored.
    An API caller's own triggerDetails (say, the alarm that fired) are sent as given; otherwise the portal names
    itself as the source and the declarer and declaration in rawData.
    """
    request: dict[str, Any] = {"responsePlanArn": response_plan_arn, "clientToken": client_token}
    if title:
        request["title"] = title
    if impact:
        request["impact"] = impact
    items = [
        related_item_for_aws(kind=kind, value=value, title=item_title) for kind, value, item_title in related_items
    ]
    if items:
        request["relatedItems"] = items
    if trigger_details:
        trigger: dict[str, Any] = dict(trigger_details)
        trigger["timestamp"] = datetime.fromisoformat(trigger["timestamp"])
        request["triggerDetails"] = trigger
        return request
    raw_data = json.dumps(
        {"declaredBy": declared_by, "declarationId": declaration_id, "declarationUrl": declaration_url},
        separators=(",", ":"),
    )
    request["triggerDetails"] = {
        "source": settings.PORTAL_TRIGGER_SOURCE,
        "timestamp": created_at,
        "rawData": raw_data[: start_incident_limits()["trigger_raw_data_max_length"]],
    }
    return request


def attachment_key(*, client_token: str, position: int, file_name: str) -> str:
    """Where an attached file is stored in S3."""
    return f"declarations/{client_token}/{position:03d}-{file_name}"


def s3_object_arn(*, bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"
