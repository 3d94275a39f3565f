"""Writes response plans: the mirror of AWS's plans, and what admins decide about each one."""

from dataclasses import dataclass, field
from typing import Any, Literal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ..aws import client as aws
from ..errors import PortalError
from ..models import ResponsePlan
from .audit import audit_record


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


_SYNCED_FIELDS = (
    "name",
    "aws_display_name",
    "template_title",
    "template_impact",
    "template_summary",
    "template_dedupe_string",
)


def response_plans_sync(*, actor: User | None = None) -> SyncResult:
    """Mirror AWS's response plans: new ones arrive hidden, changed templates are updated, deleted ones flagged."""
    # Every AWS call happens before the transaction opens.
    fetched: dict[str, dict[str, Any]] = {}
    for summary in aws.list_response_plans():
        described = aws.get_response_plan(summary["arn"])
        template = described.get("incidentTemplate", {})
        fetched[summary["arn"]] = {
            "name": described.get("name", summary.get("name", "")),
            "aws_display_name": described.get("displayName", summary.get("displayName", "")) or "",
            "template_title": template.get("title", ""),
            "template_impact": template.get("impact", 3),
            "template_summary": template.get("summary", "") or "",
            "template_dedupe_string": template.get("dedupeString", "") or "",
        }

    result = SyncResult()
    now = timezone.now()
    with transaction.atomic():
        existing = {plan.arn: plan for plan in ResponsePlan.objects.select_for_update()}
        # A new plan goes to the end of the list, so that showing it never pushes the plans people know down.
        last = max((plan.order for plan in existing.values()), default=0)
        for arn, values in fetched.items():
            if arn not in existing:
                last += 1
                created = ResponsePlan.objects.create(arn=arn, synced_at=now, order=last, **values)
                result.created.append(arn)
                audit_record(action="response_plan.discovered", actor=actor, response_plan=created, details=values)
                continue
            plan = existing[arn]
            changes = {
                name: {"from": getattr(plan, name), "to": value}
                for name, value in values.items()
                if getattr(plan, name) != value
            }
            if changes or plan.deleted_in_aws:
                for name, value in values.items():
                    setattr(plan, name, value)
                if plan.deleted_in_aws:
                    changes["deleted_in_aws"] = {"from": True, "to": False}
                plan.deleted_in_aws = False
                result.updated.append(arn)
                audit_record(action="response_plan.changed_in_aws", actor=actor, response_plan=plan, details=changes)
                plan.synced_at = now
                plan.save()
            else:
                result.unchanged += 1
                # Only the sync time: the plan's updated_at keys the cached plan lists (selectors.plans).
                plan.synced_at = now
                plan.save(update_fields=["synced_at"])
        for arn, plan in existing.items():
            if arn not in fetched and not plan.deleted_in_aws:
                plan.deleted_in_aws = True
                plan.synced_at = now
                plan.save(update_fields=["deleted_in_aws", "synced_at", "updated_at"])
                result.deleted.append(arn)
                audit_record(action="response_plan.deleted_in_aws", actor=actor, response_plan=plan)
    return result


def response_plan_update(
    *, plan: ResponsePlan, actor: User | None, ip_address: str | None = None, **changes
) -> ResponsePlan:
    """An admin's curation of a plan (visibility, drill plan or not, wording, order, who may use it); each change is
    audited.

    `allowed_groups` takes an iterable of groups (empty: everyone may use the plan) and is audited by name.
    """
    allowed = {"display_name", "when_to_use", "is_visible", "is_drill", "order", "allowed_groups"}
    unknown = set(changes) - allowed
    if unknown:
        raise PortalError(f"These plan fields cannot be changed here: {', '.join(sorted(unknown))}.")
    if changes.get("is_visible") and plan.deleted_in_aws:
        raise PortalError(
            "This plan was deleted in AWS; it cannot be shown until it exists there again.", field="is_visible"
        )
    groups = changes.pop("allowed_groups", None)
    diff = {
        name: {"from": getattr(plan, name), "to": value}
        for name, value in changes.items()
        if getattr(plan, name) != value
    }
    if groups is not None:
        groups = list(groups)
        before = sorted(plan.allowed_groups.values_list("name", flat=True))
        after = sorted(group.name for group in groups)
        if before != after:
            diff["allowed_groups"] = {"from": before, "to": after}
    if not diff:
        return plan
    with transaction.atomic():
        for name, value in changes.items():
            setattr(plan, name, value)
        plan.full_clean()
        plan.save()
        if "allowed_groups" in diff:
            plan.allowed_groups.set(groups)
        audit_record(
            action="response_plan.curated", actor=actor, response_plan=plan, details=diff, ip_address=ip_address
        )
    return plan


def _curation_group(plan: ResponsePlan) -> tuple[bool, bool]:
    """Plans move among their own kind: shown ones among shown ones (the declare page's order), hidden among hidden."""
    return plan.deleted_in_aws, not plan.is_visible


def response_plan_move(
    *, plan: ResponsePlan, direction: Literal["up", "down"], actor: User | None, ip_address: str | None = None
) -> ResponsePlan:
    """Swap a plan with its neighbour in the curation list (and so on the declare page), renumbering every plan's
    `order` 1, 2, 3… in list order so that no two plans share a place; audited as `response_plan.moved`."""
    if direction not in ("up", "down"):
        raise PortalError("Move a plan up or down.", field="direction")
    with transaction.atomic():
        # Every plan is locked: two admins moving plans at once must not interleave their renumbering.
        plans = list(
            ResponsePlan.objects.select_for_update().order_by("deleted_in_aws", "-is_visible", "order", "name", "id")
        )
        index = next((i for i, candidate in enumerate(plans) if candidate.pk == plan.pk), None)
        if index is None:
            raise PortalError("This response plan no longer exists.")
        moving = plans[index]
        if moving.deleted_in_aws:
            raise PortalError("A plan deleted in AWS is not listed for declaring; it cannot be moved.")
        other = index - 1 if direction == "up" else index + 1
        if not 0 <= other < len(plans) or _curation_group(plans[other]) != _curation_group(moving):
            where = "first" if direction == "up" else "last"
            kind = "shown" if moving.is_visible else "hidden"
            raise PortalError(f"“{moving.label}” is already the {where} of the {kind} plans.", field="direction")
        neighbour = plans[other]
        plans[index], plans[other] = neighbour, moving
        before = moving.order
        now = timezone.now()
        changed = []
        for position, candidate in enumerate(plans, start=1):
            if candidate.order != position:
                candidate.order = position
                # Set by hand: bulk_update() skips auto_now, and updated_at keys the cached plan lists.
                candidate.updated_at = now
                changed.append(candidate)
        ResponsePlan.objects.bulk_update(changed, ["order", "updated_at"])
        audit_record(
            action="response_plan.moved",
            actor=actor,
            response_plan=moving,
            details={
                "direction": direction,
                "order": {"from": before, "to": moving.order},
                "passed": neighbour.label,
            },
            ip_address=ip_address,
        )
    plan.order, plan.updated_at = moving.order, moving.updated_at
    return moving
