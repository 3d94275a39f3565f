"""Views: validate input, call one service or selector, render.

The declare page is one view serving the whole page and, for htmx, the fragment that changed
(`declare.html#fragment`); every fragment has a plain-HTML path too, so the page works without JavaScript.
"""

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from . import aws, charts, health, roles, selectors, services, validators
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
    declaration_fingerprint,
    declaration_initial_from_query,
)
from .http import client_ip
from .models import IMPACT_DESCRIPTIONS, AttachmentState, Declaration, Impact, RelatedItem, ResponsePlan

AWS_CONSOLE_URL = "https://console.aws.amazon.com/systems-manager/incidents/home"
NO_ROLE = "Your account has no role in the portal yet; ask an admin."
# The declare page's submit buttons: declaring, and re-rendering what was entered (without JavaScript).
ACTION_DECLARE, ACTION_ADD_ROW, ACTION_PREVIEW = "declare", "add-row", "preview"


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


def home(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:declare")


def _htmx_target(request: HttpRequest) -> str | None:
    return request.htmx.target if request.htmx else None


@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    query = request.GET.get("q", "").strip()[:100]
    prefill_notes: list[str] = []
    show_errors = False
    files_dropped = False
    action = ""
    if request.method == "POST":
        action = request.POST.get("action") or ACTION_DECLARE
        if action == ACTION_DECLARE:
            form = DeclarationForm(request.POST, user=request.user)
            formset = RelatedItemFormSet(request.POST, request.FILES, prefix="items")
            show_errors = True
            if form.is_valid() and formset.is_valid():
                response = _declare(request, form, formset)
                if response:
                    return response
        else:
            # Re-render what was entered, with one more row when asked; errors wait for the real submit.
            data = request.POST.copy()
            if action == ACTION_ADD_ROW:
                rows = _int(data.get("items-TOTAL_FORMS"))
                data["items-TOTAL_FORMS"] = str(min(rows + 1, validators.RELATED_ITEMS_MAX))
            form = DeclarationForm(data, user=request.user)
            formset = RelatedItemFormSet(data, prefix="items")
            # A browser cannot be told to keep a chosen file across a page load.
            files_dropped = bool(request.FILES) and not request.htmx
    else:
        initial, prefill_notes = declaration_initial_from_query(request.GET, user=request.user)
        form = DeclarationForm(user=request.user, initial=initial)
        formset = RelatedItemFormSet(prefix="items")

    plan = _chosen_plan(form)
    context = {
        "form": form,
        "formset": formset,
        "show_errors": show_errors,
        "files_dropped": files_dropped,
        "preview_open": action == ACTION_PREVIEW,
        "prefill_notes": prefill_notes,
        "query": query,
        "plans": selectors.response_plans_search(user=request.user, query=query, keep_pk=plan and plan.pk),
        "plan": plan,
        **_plan_context(request, plan),
        **_value_sources(form, plan),
        **_preview_context(request, form, formset, plan),
        "impacts": [
            {"value": impact.value, "label": impact.label, "description": IMPACT_DESCRIPTIONS[impact.value]}
            for impact in Impact
        ],
        "rules": validators.client_rules(),
        "max_file_size": validators.human_size(settings.PORTAL_MAX_FILE_BYTES),
        "max_files": settings.PORTAL_MAX_FILES,
        "max_items": validators.RELATED_ITEMS_MAX,
        "allowed_extensions": validators.allowed_extensions_label(),
        "accept": ",".join("." + extension for extension in settings.PORTAL_ALLOWED_FILE_EXTENSIONS),
    }
    template = "incidents/declare.html"
    target = _htmx_target(request)
    if request.method == "GET" and target in ("plan-options", "plan-summary"):
        template += "#" + target
    elif request.method == "POST" and request.htmx:
        template += "#preview" if target == "preview" else "#declare-body"
    return render(request, template, context)


def _declare(request: HttpRequest, form: DeclarationForm, formset) -> HttpResponse | None:
    data = form.cleaned_data
    try:
        declaration, _created = services.declaration_create(
            declared_by=request.user,
            response_plan=data["response_plan"],
            title=data["title"],
            impact=data["impact"],
            related_items=formset.to_inputs(),
            idempotency_key=data["idempotency_key"],
            request_fingerprint=declaration_fingerprint(form, formset),
            ip_address=client_ip(request),
        )
    except services.DeclarationError as exc:
        if exc.code == "conflict":
            form.add_error(
                None,
                "This form was already used to declare an incident with other values. "
                "Open “Declare” again to start a separate declaration.",
            )
        else:
            form.add_error(None, exc.message)
        return None
    url = declaration.get_absolute_url()
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _int(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _chosen_plan(form: DeclarationForm) -> ResponsePlan | None:
    value = form["response_plan"].value()
    return form.fields["response_plan"].available_plan(value) if value else None


def _plan_context(request: HttpRequest, plan: ResponsePlan | None) -> dict:
    if plan is None:
        return {"recent_declarations": [], "duplicate_window": settings.PORTAL_DUPLICATE_WINDOW_MINUTES}
    recent = list(selectors.declarations_recent_for_plan(response_plan=plan)[:10])
    openable = set(
        selectors.declarations_visible_to(user=request.user)
        .filter(pk__in=[declaration.pk for declaration in recent])
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    for declaration in recent:
        declaration.viewer_may_open = declaration.pk in openable
        minutes = int((now - declaration.created_at).total_seconds() // 60)
        declaration.age = "just now" if minutes < 1 else f"{minutes} minute{pluralize(minutes)} ago"
    return {
        "recent_declarations": recent,
        "duplicate_window": settings.PORTAL_DUPLICATE_WINDOW_MINUTES,
        "plan_impact_description": IMPACT_DESCRIPTIONS[plan.template_impact],
    }


def _value_sources(form: DeclarationForm, plan: ResponsePlan | None) -> dict:
    """Whether the title and impact shown come from the plan or overwrite it (the page marks each)."""
    title = (form["title"].value() or "").strip()
    impact = form["impact"].value()
    impact = str(impact) if impact not in (None, "") else ""
    if plan is None:
        return {"title_source": "", "impact_source": "", "chosen_impact": impact}
    title_source = "plan" if title in ("", plan.template_title) else "override"
    impact_source = "plan" if impact in ("", str(plan.template_impact)) else "override"
    return {"title_source": title_source, "impact_source": impact_source, "chosen_impact": impact}


def _preview_context(request: HttpRequest, form: DeclarationForm, formset, plan: ResponsePlan | None) -> dict:
    """The StartIncident request this form would make now, built by the selector the worker uses."""
    if plan is None:
        return {"preview": None, "preview_left_out": 0}
    if form.is_bound:
        form.is_valid()
        data = getattr(form, "cleaned_data", {})
        title, impact = data.get("title", ""), data.get("impact")
    else:
        title, impact = form.initial.get("title", ""), form.initial.get("impact")
        # As the form's clean() does: the plan's own values are left to the plan.
        title = "" if title == plan.template_title else title
        impact = None if impact == plan.template_impact else impact
    items: list[selectors.PreviewItem] = []
    left_out = 0
    for item_form in formset.forms if formset.is_bound else []:
        if not item_form.has_changed():
            continue
        item_form.is_valid()
        cleaned = getattr(item_form, "cleaned_data", {})
        kind = cleaned.get("kind")
        if kind == RelatedItem.Kind.FILE:
            upload = request.FILES.get(item_form.add_prefix("file"))
            # The page's script sends the chosen file's name instead of the file itself.
            name = upload.name if upload else request.POST.get(item_form.add_prefix("file_name"), "")
            if name and "title" in cleaned:
                items.append(
                    selectors.PreviewItem(kind=kind, title=cleaned["title"], file_name=validators.safe_file_name(name))
                )
                continue
        elif kind and not item_form.errors:
            items.append(selectors.PreviewItem(kind=kind, value=cleaned["value"], title=cleaned["title"]))
            continue
        left_out += 1
    request_body = selectors.declaration_preview_request(
        response_plan=plan, title=title, impact=impact, items=items, declared_by=request.user.get_username()
    )
    return {
        "preview": json.dumps(request_body, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder),
        "preview_left_out": left_out,
        "assigned_on_submit": selectors.ASSIGNED_ON_SUBMIT,
    }


# --- Declarations --------------------------------------------------------------------------------------


def declaration_detail(request: HttpRequest, declaration_id: int) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied(NO_ROLE)
    declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    related_items = list(declaration.related_items.defer("pending_content"))
    files = [item for item in related_items if item.kind == RelatedItem.Kind.FILE]
    files_pending = sum(item.attachment_state == AttachmentState.PENDING for item in files)
    context = {
        "declaration": declaration,
        "aws_request_json": _pretty_json(declaration.aws_request),
        "aws_response_json": _pretty_json(declaration.aws_response),
        "related_items": related_items,
        # Files reach the incident after it started when S3 was down: keep polling until each has landed.
        "files_pending": files_pending,
        "keep_polling": not declaration.is_final or files_pending > 0,
        # A file's state changes only while polling; the answer that stops it carries their final states too.
        "refresh_items": bool(files),
        "audit_events": selectors.declaration_audit_trail(declaration=declaration),
        "impact_description": IMPACT_DESCRIPTIONS[declaration.effective_impact],
        "impact_label": Impact(declaration.effective_impact).label,
        "console_url": AWS_CONSOLE_URL,
        "can_retry": declaration.state == declaration.State.FAILED
        and (roles.is_manager(request.user) or declaration.declared_by_id == request.user.pk),
        "steps": _state_steps(declaration),
    }
    if _htmx_target(request) == "status":
        # The live status: re-rendered without its polling trigger once the declaration is final and no file is
        # waiting; the audit trail and the related items ride along out of band.
        return render(request, "incidents/declaration_detail.html#status", {**context, "refresh_audit": True})
    return render(request, "incidents/declaration_detail.html", context)


def _state_steps(declaration: Declaration) -> list[dict]:
    """The journey queued → starting → started (or failed), each step done, current or still to come."""
    State = Declaration.State
    last = ("Failed", "failed") if declaration.state == State.FAILED else ("Started", "started")
    names = [("Queued", State.QUEUED), ("Starting", State.STARTING), last]
    position = {State.QUEUED: 0, State.STARTING: 1, State.STARTED: 2, State.FAILED: 2}[declaration.state]
    steps = []
    for index, (label, key) in enumerate(names):
        if index < position or (index == position and declaration.state == State.STARTED):
            status = "done"
        elif index == position:
            status = "failed" if declaration.state == State.FAILED else "current"
        else:
            status = "todo"
        steps.append({"label": label, "key": key, "status": status})
    return steps


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


@require_http_methods(["GET"])
@manager_required
def declaration_export(request: HttpRequest) -> HttpResponse:
    """The filtered history as CSV, streamed as the database writes it: constant memory."""
    form = HistoryFilterForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[name].label or name}: {' '.join(e)}" for name, e in form.errors.items())
        return HttpResponse(f"Fix the filters first. {errors}", status=400, content_type="text/plain")
    lines = selectors.declarations_export_csv(
        user=request.user, filters=form.filters(), chunk_size=settings.PORTAL_EXPORT_CHUNK_SIZE
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
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


# --- Health ----------------------------------------------------------------------------------------------


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, Redis, worker heartbeat and AWS reachability, for load balancers and monitors (no login)."""
    healthy, report = health.health_report()
    return JsonResponse(report, status=200 if healthy else 503)
