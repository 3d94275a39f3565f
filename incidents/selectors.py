"""Reads: every query the interfaces need, in one place."""

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.urls import reverse

from . import aws, roles
from .models import ApiToken, AuditEvent, Declaration, RelatedItem, ResponsePlan

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
    An API caller's own triggerDetails (say, the alarm that fired) are sent as given; otherwise the portal names
    itself as the source and the declarer and declaration in rawData.
    """
    request: dict[str, Any] = {
        "responsePlanArn": declaration.response_plan.arn,
        "clientToken": declaration.client_token,
    }
    if declaration.title:
        request["title"] = declaration.title
    if declaration.impact:
        request["impact"] = declaration.impact
    items = []
    for item in declaration.related_items.all():
        item_type, value_key = RELATED_ITEM_TYPES[item.kind]
        related = {"identifier": {"type": item_type, "value": {value_key: item.value}}}
        if item.title:
            related["title"] = item.title
        items.append(related)
    if items:
        request["relatedItems"] = items
    if declaration.trigger_details:
        trigger = dict(declaration.trigger_details)
        trigger["timestamp"] = datetime.fromisoformat(trigger["timestamp"])
        request["triggerDetails"] = trigger
        return request
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


# --- API tokens ----------------------------------------------------------------------------------------


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(owner=user).select_related("revoked_by")


def api_tokens_all() -> QuerySet[ApiToken]:
    """Every token of every user, for admins."""
    return ApiToken.objects.select_related("owner", "revoked_by")


def api_token_get_for(*, user, token_id: int) -> ApiToken | None:
    """A token its owner may manage; admins may manage anyone's."""
    tokens = api_tokens_all() if roles.is_admin(user) else api_tokens_of(user=user)
    return tokens.filter(pk=token_id).first()
