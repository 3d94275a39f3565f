"""Reads: every query the interfaces need, in one place."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from . import aws, roles
from .models import AuditEvent, Declaration, RelatedItem, ResponsePlan

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
    """The exact StartIncident request for a declaration — identical on every attempt."""
    return start_incident_request(
        response_plan=declaration.response_plan,
        client_token=declaration.client_token,
        title=declaration.title,
        impact=declaration.impact,
        related_items=[(item.kind, item.value, item.title) for item in declaration.related_items.all()],
        declared_by=declaration.declared_by.get_username(),
        declaration_id=declaration.pk,
        declaration_url=declaration_url(declaration),
        created_at=declaration.created_at,
    )


def start_incident_request(
    *,
    response_plan: ResponsePlan,
    client_token: str,
    title: str,
    impact: int | None,
    related_items: list[tuple[str, str, str]],
    declared_by: str,
    declaration_id: int | str,
    declaration_url: str,
    created_at: datetime,
) -> dict[str, Any]:
    """StartIncident's request from its parts; `related_items` are (kind, value, title).

    Title and impact are sent only where the person set them: AWS then takes the plan's own. The declare page's
    preview calls this too, with stand-ins for what only exists once the declaration is stored.
    """
    request: dict[str, Any] = {"responsePlanArn": response_plan.arn, "clientToken": client_token}
    if title:
        request["title"] = title
    if impact:
        request["impact"] = impact
    items = []
    for kind, value, item_title in related_items:
        item_type, value_key = RELATED_ITEM_TYPES[kind]
        related: dict[str, Any] = {"identifier": {"type": item_type, "value": {value_key: value}}}
        if item_title:
            related["title"] = item_title
        items.append(related)
    if items:
        request["relatedItems"] = items
    raw_data = json.dumps(
        {"declaredBy": declared_by, "declarationId": declaration_id, "declarationUrl": declaration_url},
        separators=(",", ":"),
    )
    request["triggerDetails"] = {
        "source": settings.PORTAL_TRIGGER_SOURCE,
        "timestamp": created_at,
        "rawData": raw_data[: aws.start_incident_limits()["trigger_raw_data_max_length"]],
    }
    return request


# --- The declare page ----------------------------------------------------------------------------------

# Stand-ins in the preview for what exists only once the declaration is stored.
ASSIGNED_ON_SUBMIT = "<assigned on submit>"


@dataclass(frozen=True)
class PreviewItem:
    kind: str
    value: str = ""
    title: str = ""
    file_name: str = ""


def response_plans_search(*, user, query: str = "", keep_pk: int | None = None) -> QuerySet[ResponsePlan]:
    """The available plans matching every word of `query` in any of their names or notes.

    `keep_pk` (the plan already chosen) stays in the list whatever the query, so that searching never unchoses it.
    """
    plans = response_plans_available_to(user=user)
    words = query.split()
    if not words:
        return plans
    matches = Q()
    for word in words[:8]:
        matches &= (
            Q(name__icontains=word)
            | Q(display_name__icontains=word)
            | Q(aws_display_name__icontains=word)
            | Q(when_to_use__icontains=word)
            | Q(template_title__icontains=word)
            | Q(template_summary__icontains=word)
        )
    if keep_pk:
        matches |= Q(pk=keep_pk)
    return plans.filter(matches)


def response_plan_find_for(*, user, reference: str) -> ResponsePlan | None:
    """An available plan by its portal number or its AWS name (as runbooks and bookmarks name it)."""
    plans = response_plans_available_to(user=user)
    reference = reference.strip()
    if reference.isdigit():
        found = plans.filter(pk=int(reference)).first()
        if found:
            return found
    return plans.filter(Q(name=reference) | Q(arn=reference)).first()


def declarations_recent_for_plan(*, response_plan: ResponsePlan) -> QuerySet[Declaration]:
    """Declarations of this plan still queued, starting or started within the duplicate window: likely the same
    outage, declared by someone else a moment ago."""
    since = timezone.now() - timedelta(minutes=settings.PORTAL_DUPLICATE_WINDOW_MINUTES)
    return (
        Declaration.objects.filter(
            response_plan=response_plan,
            state__in=[Declaration.State.QUEUED, Declaration.State.STARTING, Declaration.State.STARTED],
            created_at__gte=since,
        )
        .select_related("declared_by", "response_plan")
        .order_by("-created_at", "-id")
    )


def attachment_key(*, client_token: str, position: int, file_name: str) -> str:
    """Where an attached file is stored in S3."""
    return f"declarations/{client_token}/{position:03d}-{file_name}"


def declaration_preview_request(
    *, response_plan: ResponsePlan, title: str, impact: int | None, items: list[PreviewItem], declared_by: str
) -> dict[str, Any]:
    """What StartIncident will receive for a declaration not yet made, with `ASSIGNED_ON_SUBMIT` stand-ins."""
    related = []
    for position, item in enumerate(items):
        if item.kind == RelatedItem.Kind.FILE:
            key = attachment_key(client_token=ASSIGNED_ON_SUBMIT, position=position, file_name=item.file_name)
            # As the service stores it: a file's title defaults to its name.
            related.append(
                (item.kind, aws.s3_object_arn(bucket=settings.PORTAL_S3_BUCKET, key=key), item.title or item.file_name)
            )
        else:
            related.append((item.kind, item.value, item.title))
    return start_incident_request(
        response_plan=response_plan,
        client_token=ASSIGNED_ON_SUBMIT,
        title=title,
        impact=impact,
        related_items=related,
        declared_by=declared_by,
        declaration_id=ASSIGNED_ON_SUBMIT,
        declaration_url=settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("incidents:declaration-detail", kwargs={"declaration_id": 0}).replace("/0/", "/<number>/"),
        created_at=timezone.now(),
    )
