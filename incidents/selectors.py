"""Reads: every query the interfaces need, in one place."""

import json
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse

from . import aws, roles
from .models import AttachmentState, AuditEvent, Declaration, RelatedItem, ResponsePlan

RELATED_ITEM_TYPES = {
    RelatedItem.Kind.LINK: ("OTHER", "url"),
    RelatedItem.Kind.RESOURCE: ("INVOLVED_RESOURCE", "arn"),
    RelatedItem.Kind.FILE: ("ATTACHMENT", "arn"),
}


def response_plans_available_to(*, user) -> QuerySet[ResponsePlan]:
    """The plans this person may declare with: shown, still in AWS, and open to one of their groups."""
    plans = ResponsePlan.objects.filter(is_visible=True, deleted_in_aws=False)
    if user.is_superuser:
        return plans
    return plans.filter(Q(allowed_groups=None) | Q(allowed_groups__in=user.groups.all())).distinct()


def declarations_visible_to(*, user) -> QuerySet[Declaration]:
    declarations = Declaration.objects.select_related("response_plan", "declared_by")
    if roles.is_manager(user):
        return declarations
    return declarations.filter(declared_by=user)


def declaration_get_for(*, user, declaration_id: int) -> Declaration | None:
    return declarations_visible_to(user=user).filter(pk=declaration_id).first()


def declaration_audit_trail(*, declaration: Declaration) -> QuerySet[AuditEvent]:
    return declaration.audit_events.order_by("id")


def declaration_url(declaration: Declaration) -> str:
    path = reverse("incidents:declaration-detail", kwargs={"declaration_id": declaration.pk})
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def declaration_start_request(declaration: Declaration) -> dict[str, Any]:
    """The exact StartIncident request for a declaration — identical on every attempt.

    Title and impact are sent only where the person set them: AWS then takes the plan's own.
    """
    request: dict[str, Any] = {
        "responsePlanArn": declaration.response_plan.arn,
        "clientToken": declaration.client_token,
    }
    if declaration.title:
        request["title"] = declaration.title
    if declaration.impact:
        request["impact"] = declaration.impact
    # Files still waiting for S3 are left out: the incident must not wait for them (they are attached later).
    items = [
        related_item_for_aws(item)
        for item in declaration.related_items.exclude(
            attachment_state__in=[AttachmentState.PENDING, AttachmentState.FAILED]
        )
    ]
    if items:
        request["relatedItems"] = items
    raw_data = json.dumps(
        {
            "declaredBy": declaration.declared_by.get_username(),
            "declarationId": declaration.pk,
            "declarationUrl": declaration_url(declaration),
        },
        separators=(",", ":"),
    )
    request["triggerDetails"] = {
        "source": settings.PORTAL_TRIGGER_SOURCE,
        "timestamp": declaration.created_at,
        "rawData": raw_data[: aws.start_incident_limits()["trigger_raw_data_max_length"]],
    }
    return request


# --- Issue 6: attachments -------------------------------------------------------------------------------


def related_item_for_aws(item: RelatedItem) -> dict[str, Any]:
    """One related item as StartIncident and UpdateRelatedItems take it."""
    item_type, value_key = RELATED_ITEM_TYPES[item.kind]
    related: dict[str, Any] = {"identifier": {"type": item_type, "value": {value_key: item.value}}}
    if item.title:
        related["title"] = item.title
    return related


def declaration_files(*, declaration: Declaration) -> QuerySet[RelatedItem]:
    return declaration.related_items.filter(kind=RelatedItem.Kind.FILE).defer("pending_content").order_by("position")


def declaration_file_get_for(*, user, declaration_id: int, item_id: int) -> RelatedItem | None:
    """A file of a declaration the person may see, only once it is in S3."""
    declaration = declaration_get_for(user=user, declaration_id=declaration_id)
    if declaration is None:
        return None
    return (
        declaration_files(declaration=declaration)
        .filter(pk=item_id, attachment_state__in=[AttachmentState.STORED, AttachmentState.ATTACHED])
        .first()
    )


def file_download_url(*, item: RelatedItem) -> str:
    """A presigned GET valid for at most PORTAL_DOWNLOAD_URL_SECONDS (≤ 5 minutes); the bucket stays private."""
    return aws.presigned_download_url(
        bucket=item.s3_bucket,
        key=item.s3_key,
        file_name=item.file_name,
        expires_in=min(settings.PORTAL_DOWNLOAD_URL_SECONDS, 300),
    )
