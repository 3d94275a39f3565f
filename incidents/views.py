"""Views: validate input, call one service or selector, render."""

import csv
import dataclasses
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import aws, charts, roles, selectors, services, validators
from .forms import (
    SORT_CHOICES,
    ApiTokenForm,
    DeclarationForm,
    HistoryFilterForm,
    RelatedItemFormSet,
    ResponsePlanCurationForm,
    SummaryRangeForm,
    UserCreateForm,
    UserUpdateForm,
)
from .models import IMPACT_DESCRIPTIONS, Impact, RelatedItem, ResponsePlan

AWS_CONSOLE_URL = "https://console.aws.amazon.com/systems-manager/incidents/home"
NO_ROLE = "Your account has no role in the portal yet; ask an admin."


def role_required(check: Callable[..., bool], message: str = "This page is for another role."):
    """Refuse (403) people whose role does not pass `check`; anonymous visitors never get here (login first)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


manager_required = role_required(roles.is_manager, "Only managers may see this page.")
admin_required = role_required(roles.is_admin, "Only portal admins may do this.")


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def home(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:declare")


@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    if request.method == "POST":
        form = DeclarationForm(request.POST, user=request.user)
        formset = RelatedItemFormSet(request.POST, request.FILES, prefix="items")
        if form.is_valid() and formset.is_valid():
            data = form.cleaned_data
            try:
                declaration, _created = services.declaration_create(
                    declared_by=request.user,
                    response_plan=data["response_plan"],
                    title=data["title"],
                    impact=data["impact"],
                    related_items=formset.to_inputs(),
                    idempotency_key=data["idempotency_key"],
                    ip_address=client_ip(request),
                )
            except services.DeclarationError as exc:
                form.add_error(None, exc.message)
            else:
                return redirect(declaration)
    else:
        form = DeclarationForm(user=request.user)
        formset = RelatedItemFormSet(prefix="items")
    return render(
        request,
        "incidents/declare.html",
        {
            "form": form,
            "formset": formset,
            "plans": form.fields["response_plan"].queryset,
            "max_file_size": validators.human_size(settings.PORTAL_MAX_FILE_BYTES),
            "max_files": settings.PORTAL_MAX_FILES,
            "allowed_extensions": ", ".join("." + ext for ext in settings.PORTAL_ALLOWED_FILE_EXTENSIONS),
        },
    )


def declaration_detail(request: HttpRequest, declaration_id: int) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    return render(
        request,
        "incidents/declaration_detail.html",
        {
            "declaration": declaration,
            "aws_request_json": _pretty_json(declaration.aws_request),
            "aws_response_json": _pretty_json(declaration.aws_response),
            "related_items": declaration.related_items.all(),
            "audit_events": selectors.declaration_audit_trail(declaration=declaration),
            "impact_description": IMPACT_DESCRIPTIONS[declaration.effective_impact],
            "impact_label": Impact(declaration.effective_impact).label,
            "console_url": AWS_CONSOLE_URL,
            "can_retry": declaration.state == declaration.State.FAILED
            and (roles.is_manager(request.user) or declaration.declared_by_id == request.user.pk),
        },
    )


@require_POST
def declaration_retry(request: HttpRequest, declaration_id: int) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    if not (roles.is_manager(request.user) or declaration.declared_by_id == request.user.pk):
        raise PermissionDenied
    try:
        services.declaration_retry(declaration=declaration, actor=request.user, ip_address=client_ip(request))
    except services.DeclarationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Queued again with the same client token; AWS will not start it twice.")
    return redirect(declaration)


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) if value is not None else ""


@require_http_methods(["GET"])
def related_item_download(request: HttpRequest, declaration_id: int, item_id: int) -> HttpResponse:
    """Checks who is asking, then redirects to a presigned S3 link that expires within minutes."""
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    item = get_object_or_404(RelatedItem, pk=item_id, declaration=declaration, kind=RelatedItem.Kind.FILE)
    try:
        url = services.related_item_download_url(item=item, actor=request.user, ip_address=client_ip(request))
    except (services.DeclarationError, aws.AwsError) as exc:
        raise Http404(str(exc)) from exc
    response = redirect(url)
    response["Cache-Control"] = "no-store"
    return response


# --- History (managers: everything; support staff: their own) ---------------------------------------------


@require_http_methods(["GET"])
def declaration_list(request: HttpRequest) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    is_manager = roles.is_manager(request.user)
    form = HistoryFilterForm(request.GET)
    page = None
    if form.is_valid():
        filters = form.filters()
        if not is_manager:
            # Support staff see only their own declarations: the filter would be meaningless.
            filters = dataclasses.replace(filters, declared_by="")
        page = selectors.declarations_page(
            user=request.user,
            filters=filters,
            cursor=request.GET.get("cursor", ""),
            backwards=request.GET.get("dir") == "back",
            page_size=settings.PORTAL_HISTORY_PAGE_SIZE,
        )
    current_sort = (form.cleaned_data.get("sort") if form.is_valid() else "") or selectors.DEFAULT_SORT
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
        },
    )


class _Echo:
    """A file-like object that hands back what csv.writer writes, so rows can be streamed."""

    def write(self, value: str) -> str:
        return value


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value) -> str | int:
    """A cell that a spreadsheet will never run as a formula (OWASP's CSV injection advice)."""
    if value is None:
        return ""
    if isinstance(value, int):
        return value
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_lines(rows: Iterator[tuple], batch: int = 500) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow([header for header, _ in selectors.EXPORT_COLUMNS])
    lines = []
    for row in rows:
        lines.append(writer.writerow([csv_safe(cell) for cell in row]))
        if len(lines) >= batch:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


@require_http_methods(["GET"])
@manager_required
def declaration_export(request: HttpRequest) -> HttpResponse:
    """The filtered history as CSV, streamed row by row from a server-side cursor: constant memory."""
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[name].label or name}: {' '.join(e)}" for name, e in form.errors.items())
        return HttpResponse(f"Fix the filters first. {errors}", status=400, content_type="text/plain")
    rows = selectors.declarations_export_rows(
        user=request.user, filters=form.filters(), chunk_size=settings.PORTAL_EXPORT_CHUNK_SIZE
    )
    response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="declarations-{stamp}.csv"'
    return response


@require_http_methods(["GET"])
@manager_required
def declaration_summary(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    start, end = today - timedelta(days=29), today
    # The default period (the last 30 days) is shown in the form too, so that it can be adjusted.
    form = SummaryRangeForm(request.GET or None, initial={"date_from": start, "date_to": end})
    if form.is_valid():
        end = form.cleaned_data.get("date_to") or end
        start = form.cleaned_data.get("date_from") or end - timedelta(days=29)
    summary = selectors.declarations_summary(user=request.user, start=start, end=end)
    return render(
        request,
        "incidents/summary.html",
        {
            "form": form,
            "summary": summary,
            "impacts": [(impact.value, impact.label) for impact in Impact],
            "time_chart": charts.columns_over_time(summary.periods, summary.by_period, bucket=summary.bucket),
            "plan_chart": charts.bars_per_plan(summary.by_plan),
            "time_rows": [
                (period, [summary.by_period[period].get(impact.value, 0) for impact in Impact])
                for period in summary.periods
            ],
            "plan_rows": [
                (label, [impacts.get(impact.value, 0) for impact in Impact], total)
                for label, impacts, total in summary.by_plan
            ],
        },
    )


# --- Curation (admins) ---------------------------------------------------------------------------------------


@require_http_methods(["GET"])
@admin_required
def response_plan_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "incidents/plan_list.html",
        {
            "plans": selectors.response_plans_for_curation(),
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
def response_plan_sync(request: HttpRequest) -> HttpResponse:
    try:
        result = services.response_plans_sync(actor=request.user)
    except aws.AwsError as exc:
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
def response_plan_edit(request: HttpRequest, plan_id: int) -> HttpResponse:
    plan = get_object_or_404(ResponsePlan, pk=plan_id)
    if request.method == "POST":
        form = ResponsePlanCurationForm(request.POST, plan=plan)
        if form.is_valid():
            try:
                services.response_plan_update(
                    plan=plan, actor=request.user, ip_address=client_ip(request), **form.cleaned_data
                )
            except services.DeclarationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Saved “{plan.label}”.")
                return redirect("incidents:plan-list")
    else:
        form = ResponsePlanCurationForm(plan=plan)
    return render(
        request,
        "incidents/plan_edit.html",
        {"plan": plan, "form": form, "audit_events": selectors.response_plan_audit_trail(plan=plan)[:50]},
    )


@require_http_methods(["GET"])
@admin_required
def user_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.users_for_administration(), 100).get_page(request.GET.get("page"))
    return render(request, "incidents/user_list.html", {"page": page, "roles": roles.ALL})


@require_http_methods(["GET", "POST"])
@admin_required
def user_create(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.user_create(
                username=data["username"],
                email=data["email"],
                password=data["password"],
                role_names=data["roles"],
                actor=request.user,
                ip_address=client_ip(request),
            )
        except services.DeclarationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Account “{user.get_username()}” created.")
            return redirect("incidents:user-list")
    return render(request, "incidents/user_form.html", {"form": form, "subject": None})


@require_http_methods(["GET", "POST"])
@admin_required
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    subject = get_object_or_404(get_user_model(), pk=user_id)
    current = [name for name in subject.groups.values_list("name", flat=True) if name in roles.ALL]
    form = UserUpdateForm(request.POST or None, initial={"roles": current, "is_active": subject.is_active})
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(
                user=subject,
                actor=request.user,
                role_names=form.cleaned_data["roles"],
                is_active=form.cleaned_data["is_active"],
                ip_address=client_ip(request),
            )
        except services.DeclarationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Saved “{subject.get_username()}”.")
            return redirect("incidents:user-list")
    return render(request, "incidents/user_form.html", {"form": form, "subject": subject})


# --- API tokens ----------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The person's own tokens; a new token's secret appears in this one response and never again."""
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    created_secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, created_secret = services.api_token_create(
                owner=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(),
                ip_address=client_ip(request),
            )
        except services.DeclarationError as exc:
            form.add_error(None, exc.message)
        else:
            form = ApiTokenForm()
    return render(
        request,
        "incidents/api_tokens.html",
        {
            "form": form,
            "tokens": selectors.api_tokens_of(user=request.user),
            "created_secret": created_secret,
            "is_admin": roles.is_admin(request.user),
            "api_base": request.build_absolute_uri("/api/"),
        },
    )


def api_tokens_all(request: HttpRequest) -> HttpResponse:
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only admins can see everyone's API tokens.")
    return render(request, "incidents/api_tokens_all.html", {"tokens": selectors.api_tokens_all()})


@require_POST
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = selectors.api_token_get_for(user=request.user, token_id=token_id)
    if token is None:
        raise Http404("No API token with that number is yours to revoke.")
    try:
        services.api_token_revoke(token=token, actor=request.user, ip_address=client_ip(request))
    except services.DeclarationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked “{token.name}” ({token.prefix}…); it stops working at once.")
    if token.owner_id != request.user.pk:
        return redirect("incidents:api-tokens-all")
    return redirect("incidents:api-tokens")
