"""Reads declarations: the ones a person may open, the one a worker starts and the request it sends, recent ones
of a plan (likely the same outage), and the declare page's preview of a declaration not yet made."""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from .. import roles
from ..aws.requests import attachment_key, s3_object_arn, start_incident_request
from ..models import AttachmentState, Declaration, RelatedItem, ResponsePlan


def declarations_visible_to(*, user) -> QuerySet[Declaration]:
    declarations = Declaration.objects.select_related("response_plan", "declared_by")
    if roles.is_manager(user):
        return declarations
    return declarations.filter(declared_by=user)


def declaration_get_for(*, user, declaration_id: int) -> Declaration | None:
    return declarations_visible_to(user=user).filter(pk=declaration_id).first()


def declaration_url(declaration: Declaration) -> str:
    path = reverse("incidents:declaration-detail", kwargs={"declaration_id": declaration.pk})
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def declaration_for_start(declaration_id: int) -> Declaration:
    """The declaration to start, locked until the transaction ends, with its plan and its declarer."""
    return (
        Declaration.objects.select_for_update(of=("self",))
        .select_related("response_plan", "declared_by")
        .get(pk=declaration_id)
    )


def declaration_start_request(
    declaration: Declaration, related_items: Iterable[RelatedItem] | None = None
) -> dict[str, Any]:
    """The exact StartIncident request for a declaration — identical on every attempt. `related_items` are the
    declaration's, when the caller has read them already."""
    if related_items is None:
        related_items = declaration.related_items.defer("pending_content")
    return start_incident_request(
        response_plan_arn=declaration.response_plan.arn,
        client_token=declaration.client_token,
        title=declaration.title,
        impact=declaration.impact,
        # Files still waiting for S3 are left out: the incident must not wait for them (they are attached later).
        related_items=[
            (item.kind, item.value, item.title)
            for item in related_items
            if item.attachment_state not in (AttachmentState.PENDING, AttachmentState.FAILED)
        ],
        declared_by=declaration.declared_by.get_username(),
        declaration_id=declaration.pk,
        declaration_url=declaration_url(declaration),
        created_at=declaration.created_at,
        trigger_details=declaration.trigger_details,
        impact_started_at=declaration.impact_started_at,
        drill_of=declaration.effective_title if declaration.is_drill else None,
    )


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


@dataclass(frozen=True)
class RecentForPlan:
    """Recent declarations of a plan as one person may see them: the ones they may open, in full; the others only
    counted, so that the duplicate warning still works without showing titles or names they may not read."""

    openable: list[Declaration]
    others: int = 0
    others_started: int = 0
    others_latest: datetime | None = None

    @property
    def total(self) -> int:
        return len(self.openable) + self.others


def declarations_recent_for_plan_seen_by(*, response_plan: ResponsePlan, user, limit: int = 10) -> RecentForPlan:
    """declarations_recent_for_plan as `user` may see it (newest first, at most `limit` in full)."""
    recent = declarations_recent_for_plan(response_plan=response_plan)
    if roles.is_manager(user):
        return RecentForPlan(openable=list(recent[:limit]))
    visible = declarations_visible_to(user=user).values("pk")
    others = (
        recent.exclude(pk__in=visible)
        .order_by()
        .aggregate(
            count=Count("pk"),
            started=Count("pk", filter=Q(state=Declaration.State.STARTED)),
            latest=Max("created_at"),
        )
    )
    return RecentForPlan(
        openable=list(recent.filter(pk__in=visible)[:limit]),
        others=others["count"],
        others_started=others["started"],
        others_latest=others["latest"],
    )


def declaration_made_with_key(*, user, idempotency_key: str) -> Declaration | None:
    """The declaration this person already made with this form (its idempotency key), if any."""
    return Declaration.objects.filter(declared_by=user, idempotency_key=idempotency_key).first()


def declaration_latest_by(*, user, since, response_plan: ResponsePlan | None = None) -> Declaration | None:
    """This person's latest declaration since a moment ago (of one plan, if given): a page opened again after
    declaring — Back, a reload, a second tab — says so before a second incident is started by mistake."""
    declarations = Declaration.objects.filter(declared_by=user, created_at__gte=since)
    if response_plan is not None:
        declarations = declarations.filter(response_plan=response_plan)
    return declarations.select_related("response_plan").order_by("-created_at").first()


# Stand-ins in the preview for what exists only once the declaration is stored.
ASSIGNED_ON_SUBMIT = "<assigned on submit>"


@dataclass(frozen=True)
class PreviewItem:
    kind: str
    value: str = ""
    title: str = ""
    file_name: str = ""


def declaration_preview_request(
    *,
    response_plan: ResponsePlan,
    title: str,
    impact: int | None,
    items: list[PreviewItem],
    declared_by: str,
    impact_started_at: datetime | None = None,
) -> dict[str, Any]:
    """What StartIncident will receive for a declaration not yet made, with `ASSIGNED_ON_SUBMIT` stand-ins."""
    related = []
    for position, item in enumerate(items):
        if item.kind == RelatedItem.Kind.FILE:
            key = attachment_key(client_token=ASSIGNED_ON_SUBMIT, position=position, file_name=item.file_name)
            # As the service stores it: a file's title defaults to its name.
            related.append(
                (item.kind, s3_object_arn(bucket=settings.PORTAL_S3_BUCKET, key=key), item.title or item.file_name)
            )
        else:
            related.append((item.kind, item.value, item.title))
    return start_incident_request(
        response_plan_arn=response_plan.arn,
        client_token=ASSIGNED_ON_SUBMIT,
        title=title,
        impact=impact,
        related_items=related,
        declared_by=declared_by,
        declaration_id=ASSIGNED_ON_SUBMIT,
        declaration_url=settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("incidents:declaration-detail", kwargs={"declaration_id": 0}).replace("/0/", "/<number>/"),
        created_at=timezone.now(),
        impact_started_at=impact_started_at,
        drill_of=(title or response_plan.template_title) if response_plan.is_drill else None,
    )


def declaration_final_within(*, declaration_id: int, seconds: float, every: float = 0.02) -> bool:
    """Whether the declaration is final now or becomes so within `seconds` (checked every `every` seconds): the page
    a person lands on right after declaring waits this long, once, so that it can already say "Started"."""
    deadline = time.monotonic() + seconds
    final = Declaration.objects.filter(pk=declaration_id, state__in=Declaration.FINAL_STATES)
    while not final.exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True
