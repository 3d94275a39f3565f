"""Curation, for admins: the response plans mirrored from AWS, what each shows and to whom."""

from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from ..aws.client import AwsError
from ..errors import PortalError
from ..forms.curation import ImpactExamplesForm, ResponsePlanCurationForm
from ..http import PortalRequest, client_ip, htmx_target
from ..models import ResponsePlan
from ..selectors.audit import response_plan_audit_trail
from ..selectors.impacts import impact_levels, impact_levels_audit_trail
from ..selectors.plans import response_plans_for_curation
from ..services.impacts import impact_examples_update
from ..services.plans import response_plan_move as move_plan
from ..services.plans import response_plan_update, response_plans_sync
from .access import admin_required


@require_http_methods(["GET"])
@admin_required
def response_plan_list(request: PortalRequest) -> HttpResponse:
    return _plan_list(request)


def _plan_list(request: PortalRequest, *, status: str = "", focus: tuple[int, str] | None = None) -> HttpResponse:
    """The list, or for htmx only its table (`plan_list.html#plan-table`) with what just happened as `status`.
    `focus`: the plan and the control to focus after the table is swapped (the one just used, where it still is)."""
    query = _query(request)
    rows = _rows(list(response_plans_for_curation(query=query)), reorderable=not query, focus=focus)
    template = "incidents/plan_list.html"
    if htmx_target(request) == "plan-table":
        template += "#plan-table"
    return render(
        request,
        template,
        {
            "rows": rows,
            "query": query,
            "status": status,
            "sync_every": _duration(settings.PORTAL_PLAN_SYNC_INTERVAL),
        },
    )


def _query(request: PortalRequest) -> str:
    """The list's search: in the address, or sent along by a control used on a searched list."""
    source = request.POST if request.method == "POST" else request.GET
    return source.get("q", "").strip()[:100]


@dataclass
class PlanRow:
    """A plan on the list, with the ways it can move and the control to focus after an htmx swap."""

    plan: ResponsePlan
    can_move_up: bool
    can_move_down: bool
    place: int | None = None  # on the declare page (shown plans only; None in a searched list)
    focus: str = ""


def _rows(plans: list[ResponsePlan], *, reorderable: bool, focus: tuple[int, str] | None) -> list[PlanRow]:
    """Plans move among plans of their kind, as response_plan_move allows, and not in a searched list (whose
    neighbours are not the real ones). The control focused after a swap is the one just used, or its twin once
    that one cannot be used any more (a plan moved to the top)."""

    def kind(plan: ResponsePlan | None) -> tuple[bool, bool] | None:
        return (plan.deleted_in_aws, plan.is_visible) if plan else None

    rows = []
    for index, plan in enumerate(plans):
        movable = reorderable and not plan.deleted_in_aws
        above = plans[index - 1] if index else None
        below = plans[index + 1] if index + 1 < len(plans) else None
        row = PlanRow(plan, movable and kind(above) == kind(plan), movable and kind(below) == kind(plan))
        if reorderable and plan.is_visible and not plan.deleted_in_aws:
            row.place = index + 1  # shown plans lead the list
        if focus and focus[0] == plan.pk:
            usable = {"up": row.can_move_up, "down": row.can_move_down, "visibility": True}
            twin = {"up": "down", "down": "up"}.get(focus[1], "visibility")
            row.focus = next(c for c in (focus[1], twin, "visibility") if usable.get(c))
        rows.append(row)
    return rows


def _duration(seconds: int) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


@require_POST
@admin_required
def response_plan_sync(request: PortalRequest) -> HttpResponse:
    try:
        result = response_plans_sync(actor=request.user)
    except AwsError as exc:
        messages.error(request, f"Could not read response plans from AWS: {exc.message}")
    else:
        messages.success(
            request,
            f"Synced from AWS: {len(result.created)} new (hidden until shown), {len(result.updated)} changed, "
            f"{len(result.deleted)} deleted in AWS, {result.unchanged} unchanged.",
        )
    return redirect("incidents:plan-list")


@require_http_methods(["GET", "POST"])
@admin_required
def response_plan_edit(request: PortalRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(ResponsePlan, pk=plan_id)
    if request.method == "POST":
        form = ResponsePlanCurationForm(request.POST, plan=plan)
        if form.is_valid():
            try:
                response_plan_update(plan=plan, actor=request.user, ip_address=client_ip(request), **form.cleaned_data)
            except PortalError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Saved “{plan.label}”.")
                return redirect("incidents:plan-list")
    else:
        form = ResponsePlanCurationForm(plan=plan)
    return render(
        request,
        "incidents/plan_edit.html",
        {"plan": plan, "form": form, "audit_events": response_plan_audit_trail(plan=plan)[:50]},
    )


@require_POST
@admin_required
def response_plan_move(request: PortalRequest, plan_id: int) -> HttpResponse:
    """Up or down one place in the list: a plain form that redirects back, or htmx swapping the table in place."""
    plan = get_object_or_404(ResponsePlan, pk=plan_id)
    direction = request.POST.get("direction", "")
    try:
        move_plan(
            plan=plan,
            direction=cast(Literal["up", "down"], direction),
            actor=request.user,
            ip_address=client_ip(request),
        )
    except PortalError as exc:
        return _answer(request, plan, exc.message, level=messages.ERROR)
    return _answer(request, plan, f"Moved “{plan.label}” {direction}.", control=direction)


@require_POST
@admin_required
def response_plan_visibility(request: PortalRequest, plan_id: int) -> HttpResponse:
    """Show or hide a plan straight from the list."""
    plan = get_object_or_404(ResponsePlan, pk=plan_id)
    shown = request.POST.get("is_visible") == "1"
    try:
        response_plan_update(plan=plan, actor=request.user, ip_address=client_ip(request), is_visible=shown)
    except PortalError as exc:
        return _answer(request, plan, exc.message, level=messages.ERROR)
    said = "now shown to people declaring" if shown else "now hidden: it cannot be chosen"
    return _answer(request, plan, f"“{plan.label}” is {said}.", control="visibility")


def _answer(
    request: PortalRequest, plan: ResponsePlan, text: str, *, level: int = messages.SUCCESS, control: str = ""
) -> HttpResponse:
    if request.htmx:
        return _plan_list(request, status=text, focus=(plan.pk, control or "visibility"))
    messages.add_message(request, level, text)
    query = _query(request)
    return redirect(
        reverse("incidents:plan-list") + (f"?{urlencode({'q': query})}" if query else "") + f"#plan-{plan.pk}"
    )


@require_http_methods(["GET", "POST"])
@admin_required
def impact_level_list(request: PortalRequest) -> HttpResponse:
    """The impact levels' examples, which the declare page shows under each level."""
    form = ImpactExamplesForm(request.POST or None, levels=impact_levels())
    if request.method == "POST" and form.is_valid():
        try:
            changed = impact_examples_update(
                examples=form.examples(), actor=request.user, ip_address=client_ip(request)
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            count = len(changed)
            messages.success(
                request,
                f"Saved: {count} example{'s' if count != 1 else ''} changed." if count else "No example changed.",
            )
            return redirect("incidents:impact-levels")
    return render(
        request,
        "incidents/impact_levels.html",
        {"form": form, "audit_events": impact_levels_audit_trail()[:50]},
    )
