"""Curation, for admins: the response plans mirrored from AWS, what each shows and to whom."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ..aws.client import AwsError
from ..errors import PortalError
from ..forms.curation import ResponsePlanCurationForm
from ..http import PortalRequest, client_ip
from ..models import ResponsePlan
from ..selectors.audit import response_plan_audit_trail
from ..selectors.plans import response_plans_for_curation
from ..services.plans import response_plan_update, response_plans_sync
from .access import admin_required


@require_http_methods(["GET"])
@admin_required
def response_plan_list(request: PortalRequest) -> HttpResponse:
    return render(
        request,
        "incidents/plan_list.html",
        {
            "plans": response_plans_for_curation(),
            "sync_every": _duration(settings.PORTAL_PLAN_SYNC_INTERVAL),
        },
    )


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
