"""Writes response plans: the mirror of AWS's plans, and what admins decide about each one."""

from dataclasses import dataclass, field
from typing import Any

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
        for arn, values in fetched.items():
            if arn not in existing:
                created = ResponsePlan.objects.create(arn=arn, synced_at=now, **values)
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
