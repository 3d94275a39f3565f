"""The history: every declaration a person may see, filtered, sorted and paged; its CSV export and summary."""

import dataclasses
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from .. import charts, roles
from ..forms.history import SORT_CHOICES, HistoryFilterForm, SummaryRangeForm
from ..http import PortalRequest
from ..models import Impact
from ..selectors.history import DEFAULT_SORT, declarations_export_csv, declarations_page
from ..selectors.plans import response_plans_version
from ..selectors.summary import declarations_summary
from .access import declarer_required, manager_required


@require_http_methods(["GET"])
@declarer_required
def declaration_list(request: PortalRequest) -> HttpResponse:
    is_manager = roles.is_manager(request.user)
    form = HistoryFilterForm(request.GET, user=request.user)
    page = None
    if form.is_valid():
        filters = form.filters()
        if not is_manager:
            # Support staff see only their own declarations: the filter would be meaningless.
            filters = dataclasses.replace(filters, declared_by="")
        page = declarations_page(
            user=request.user,
            filters=filters,
            cursor=request.GET.get("cursor", ""),
            backwards=request.GET.get("dir") == "back",
            page_size=settings.PORTAL_HISTORY_PAGE_SIZE,
        )
    current_sort = (form.cleaned_data.get("sort") if form.is_valid() else "") or DEFAULT_SORT
    return render(
        request,
        "incidents/declaration_list.html",
        {
            "form": form,
            "page": page,
            "is_manager": is_manager,
            "current_sort": current_sort,
            "current_sort_label": dict(SORT_CHOICES)[current_sort],
            # What each sortable column header switches to: the other direction when it is the current sort.
            "sort_next": {
                "created": "created" if current_sort == "-created" else "-created",
                "impact": "-impact" if current_sort == "impact" else "impact",
                "state": "-state" if current_sort == "state" else "state",
            },
            "filtered": any(request.GET.get(name) for name in form.fields if name != "sort"),
            "time_zone": timezone.get_current_timezone_name(),
            # The key of the plan filter's cached <select> (declaration_list.html): the plans' last change, and which
            # plans this person's list holds (every plan for managers; for others, it differs from person to person).
            "plans_version": response_plans_version(),
            "plan_filter_scope": "all" if is_manager else ",".join(str(pk) for pk, _label in form.plan_choices),
        },
    )


@require_http_methods(["GET"])
@manager_required
def declaration_export(request: PortalRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered history as CSV, streamed as the database writes it: constant memory."""
    form = HistoryFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[name].label or name}: {' '.join(map(str, messages))}"
            for name, messages in form.errors.items()
        )
        return HttpResponse(f"Fix the filters first. {errors}", status=400, content_type="text/plain")
    lines = declarations_export_csv(
        user=request.user,
        filters=form.filters(),
        chunk_size=settings.PORTAL_EXPORT_CHUNK_SIZE,
        site_url=request.build_absolute_uri("/"),
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="declarations-{stamp}.csv"'
    return response


@require_http_methods(["GET"])
@manager_required
def declaration_summary(request: PortalRequest) -> HttpResponse:
    today = timezone.localdate()
    start, end = today - timedelta(days=29), today
    # The default period (the last 30 days) is shown in the form too, so that it can be adjusted.
    form = SummaryRangeForm(request.GET or None, initial={"date_from": start, "date_to": end})
    include_drills = False
    if form.is_valid():
        end = form.cleaned_data.get("date_to") or end
        start = form.cleaned_data.get("date_from") or end - timedelta(days=29)
        include_drills = form.cleaned_data["drills"]
    summary = declarations_summary(user=request.user, start=start, end=end, include_drills=include_drills)
    return render(
        request,
        "incidents/summary.html",
        {
            "form": form,
            "summary": summary,
            "impacts": [(impact.value, impact.label) for impact in Impact],
            "time_chart": charts.columns_over_time(summary.periods, summary.by_period, bucket=summary.bucket),
            "plan_chart": charts.bars_per_plan(summary.by_plan),
            # Drawn for a phone's width, so that its text is as large on screen as it is in the drawing (the wide
            # chart shrunk to 360 px had 5 px labels); the stylesheet shows one or the other.
            "time_chart_narrow": charts.columns_over_time(
                summary.periods, summary.by_period, bucket=summary.bucket, width=360, height=240, max_x_labels=4
            ),
            "plan_chart_narrow": charts.bars_per_plan(
                summary.by_plan, width=360, row_height=34, label_width=140, label_length=18
            ),
            "time_rows": [
                (period, [summary.by_period[period].get(impact.value, 0) for impact in Impact])
                for period in summary.periods
            ],
            "plan_rows": [
                (label, [impacts.get(impact.value, 0) for impact in Impact], total)
                for label, impacts, total in summary.by_plan
            ],
            "duration_rows": [
                (
                    row,
                    [
                        human_duration(span)
                        for span in (row.impact_to_declared, row.declared_to_started, row.started_to_resolved)
                    ],
                )
                for row in summary.durations
            ],
        },
    )


def human_duration(span: timedelta | None) -> str:
    """A median as people read it: "45 s", "12 min", "3 h 05 min", "2 d 4 h"; an em dash when there is none."""
    if span is None:
        return "—"
    seconds = round(span.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days} d {hours % 24} h"
