"""The declare page: one view serving the whole page and, for htmx, the fragment that changed
(`declare.html#fragment`); every fragment has a plain-HTML path too, so the page works without JavaScript."""

import json
import math
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from .. import roles, validators
from ..errors import PortalError
from ..forms.declare import (
    DeclarationForm,
    RelatedItemFormSet,
    declaration_fingerprint,
    declaration_initial_from_query,
    related_items_with_attachments,
)
from ..http import PortalRequest, client_ip, htmx_target
from ..models import IMPACT_DESCRIPTIONS, Declaration, Impact, RelatedItem, ResponsePlan
from ..selectors.declarations import (
    ASSIGNED_ON_SUBMIT,
    PreviewItem,
    declaration_latest_by,
    declaration_made_with_key,
    declaration_preview_request,
    declarations_recent_for_plan_seen_by,
)
from ..selectors.impacts import impact_levels
from ..selectors.plans import response_plans_search, response_plans_version
from ..services.declarations import declaration_create
from ..services.rate_limits import rate_limit_hit, rate_limit_parse
from .access import declarer_required

# The declare page's submit buttons: declaring, and re-rendering what was entered (without JavaScript).
ACTION_DECLARE, ACTION_ADD_ROW, ACTION_PREVIEW = "declare", "add-row", "preview"
# Declaring the same plan again this soon asks first (a page restored by Back gets a new form key when re-fetched).
ACTION_DECLARE_AGAIN = "declare-again"
REPEAT_WINDOW = timedelta(minutes=10)
# The duplicate warning lists the newest few in full (each a Tab stop before the title) and links to the rest.
DUPLICATES_SHOWN = 3
# Enter in a field submits a form through its first submit button: on this page that one never declares.
ACTION_ENTER = "enter"


def home(request: PortalRequest) -> HttpResponse:
    return redirect("incidents:declare")


@require_http_methods(["GET", "POST"])
@declarer_required
def declare(request: PortalRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    prefill_notes: list[str] = []
    show_errors = False
    files_dropped = False
    enter_pressed = False
    repeat_of: Declaration | None = None
    action = ""
    files = request.FILES
    if request.method == "POST":
        action = request.POST.get("action") or ACTION_DECLARE
        post, files = related_items_with_attachments(request.POST, request.FILES)
        if action in (ACTION_DECLARE, ACTION_DECLARE_AGAIN):
            form = DeclarationForm(post, user=request.user)
            formset = RelatedItemFormSet(post, files, prefix="items")
            show_errors = True
            if form.is_valid() and formset.is_valid():
                if action != ACTION_DECLARE_AGAIN:
                    repeat_of = _declared_a_moment_ago(request, form)
                if repeat_of is None:
                    response = _declare(request, form, formset)
                    if response:
                        return response
            # The page comes back with everything typed; only chosen files cannot be kept by a browser.
            files_dropped = bool(request.FILES) and not request.htmx
        else:
            # Re-render what was entered, with one more row when asked; errors wait for the real submit.
            data = post.copy()
            rows = _int(data.get("items-TOTAL_FORMS"))
            enter_pressed = action == ACTION_ENTER
            if action == ACTION_ADD_ROW or (enter_pressed and _rows_all_used(data, rows)):
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
    now = timezone.now()
    declared_lately = declaration_latest_by(user=request.user, since=now - REPEAT_WINDOW)
    context = {
        # Declared a moment ago: said at the top of the page, and asked about before declaring that plan again.
        "declared_lately": declared_lately,
        "declared_lately_age": _age(now - declared_lately.created_at) if declared_lately else "",
        "repeat_of": repeat_of,
        "repeat_age": _age(now - repeat_of.created_at) if repeat_of else "",
        "form": form,
        "formset": formset,
        "show_errors": show_errors,
        "files_dropped": files_dropped,
        "enter_pressed": enter_pressed,
        "preview_open": action == ACTION_PREVIEW,
        "prefill_notes": prefill_notes,
        "query": query,
        "plans": response_plans_search(
            user=request.user, query=query, keep_pk=plan.pk if plan else None, drill=form.is_drill
        ),
        "drill": form.is_drill,
        "impact_zone": form.zone_name,
        "impact_start_max_days": settings.PORTAL_IMPACT_START_MAX_DAYS,
        # The key of the cached plan list (declare.html): it changes with any plan and differs by group.
        "plans_version": response_plans_version(),
        "plan_groups": "all" if request.user.is_superuser else roles.group_ids(request.user),
        "plan": plan,
        **_plan_context(request, plan),
        **_value_sources(form, plan),
        **_declare_summary(form, plan),
        **_preview_context(request, form, formset, plan, files),
        "impacts": impact_levels(),
        "rules": validators.client_rules(),
        "max_file_size": validators.human_size(settings.PORTAL_MAX_FILE_BYTES),
        "max_files": settings.PORTAL_MAX_FILES,
        "max_items": validators.RELATED_ITEMS_MAX,
        "allowed_extensions": validators.allowed_extensions_label(),
        "accept": ",".join("." + extension for extension in settings.PORTAL_ALLOWED_FILE_EXTENSIONS),
    }
    template = "incidents/declare.html"
    target = htmx_target(request)
    if request.method == "GET" and target in ("plan-options", "plan-summary"):
        template += "#" + target
    elif request.method == "POST" and request.htmx:
        template += "#preview" if target == "preview" else "#declare-body"
    return render(request, template, context)


def _declare(request: PortalRequest, form: DeclarationForm, formset) -> HttpResponse | None:
    data = form.cleaned_data
    retry_after = rate_limit_hit(
        key=f"declare-person:{request.user.pk}",
        rate=settings.PORTAL_DECLARE_RATE_LIMIT,
        setting="PORTAL_DECLARE_RATE_LIMIT",
    )
    if retry_after is not None:
        # A second click on a form that already declared is answered with its declaration, limit or not.
        made = declaration_made_with_key(user=request.user, idempotency_key=data["idempotency_key"])
        if made is None:
            form.add_error(None, _declare_again_message(retry_after))
            return None
        return HttpResponseClientRedirect(made.get_absolute_url()) if request.htmx else redirect(made)
    try:
        declaration, _created = declaration_create(
            declared_by=request.user,
            response_plan=data["response_plan"],
            title=data["title"],
            impact=data["impact"],
            related_items=formset.to_inputs(),
            idempotency_key=data["idempotency_key"],
            request_fingerprint=declaration_fingerprint(form, formset),
            ip_address=client_ip(request),
            impact_started_at=data["impact_started_at"],
            is_drill=data["drill"],
        )
    except PortalError as exc:
        if exc.code == "conflict":
            form.add_error(
                None,
                "This form was already used to declare an incident with other values. "
                "Open “Declare” again to start a separate declaration.",
            )
        else:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None
    url = declaration.get_absolute_url()
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _declared_a_moment_ago(request: PortalRequest, form: DeclarationForm) -> Declaration | None:
    """The person's declaration of the same plan from a moment ago, made with another form (the same form's key
    answers with its own declaration): a second one within minutes is a choice, not a click on a restored page."""
    data = form.cleaned_data
    earlier = declaration_latest_by(
        user=request.user, since=timezone.now() - REPEAT_WINDOW, response_plan=data["response_plan"]
    )
    if earlier is None or earlier.idempotency_key == data["idempotency_key"]:
        return None
    return earlier


def _declare_again_message(retry_after: int) -> str:
    limit, period = rate_limit_parse(settings.PORTAL_DECLARE_RATE_LIMIT, setting="PORTAL_DECLARE_RATE_LIMIT")
    per = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[period]
    at = timezone.now() + timedelta(seconds=retry_after)
    minutes = math.ceil(retry_after / 60)
    wait = f"{minutes} minute{pluralize(minutes)}" if retry_after >= 60 else f"{retry_after} s"
    return (
        f"You have declared {limit} incident{pluralize(limit)} in the last {per}, the most one person may declare "
        f"here. You can declare this one in {wait} (at {timezone.localtime(at):%H:%M:%S %Z}); everything you "
        "entered is kept below. If it cannot wait, ask a manager to declare it."
    )


def _rows_all_used(data, rows: int) -> bool:
    """Whether every related-item row has something in it (Enter then adds the next one, as the script does)."""
    return all(
        data.get(f"items-{index}-value", "").strip() or data.get(f"items-{index}-kind", "") not in ("", "link")
        for index in range(rows)
    )


def _int(value) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def _chosen_plan(form: DeclarationForm) -> ResponsePlan | None:
    """The plan chosen so far, if it is one the person may use (the form is not cleaned before the real submit)."""
    value = form["response_plan"].value()
    try:
        plan = form.fields["response_plan"].clean(value) if value else None
    except ValidationError:
        return None
    # A drill plan is no choice for a real incident, nor the other way round.
    return plan if plan is None or plan.is_drill == form.is_drill else None


@dataclass(frozen=True)
class RecentDeclaration:
    """A declaration of the chosen plan made a moment ago that the person may open, as the duplicate warning shows
    it."""

    declaration: Declaration
    age: str

    @property
    def joinable(self) -> bool:
        """Started, not resolved, and a drill only for a drill (the page's mode is the chosen plan's, which an admin
        may have changed since): the person may add to it instead (services/actions.incident_join)."""
        return (
            self.declaration.state == Declaration.State.STARTED
            and self.declaration.aws_status != Declaration.AwsStatus.RESOLVED
            and self.declaration.is_drill == self.declaration.response_plan.is_drill
        )


def _age(elapsed: timedelta) -> str:
    minutes = int(elapsed.total_seconds() // 60)
    return "just now" if minutes < 1 else f"{minutes} minute{pluralize(minutes)} ago"


def _plan_context(request: PortalRequest, plan: ResponsePlan | None) -> dict:
    """The duplicate warning: recent declarations of the plan the person may open, with titles, names and links;
    the others (support staff cannot open other people's) only as a count, how recent the latest is and how many
    already started an incident — enough to stop and look for that incident instead of declaring it again, without
    showing titles or names that only managers may read."""
    if plan is None:
        return {"recent_declarations": [], "duplicate_window": settings.PORTAL_DUPLICATE_WINDOW_MINUTES}
    recent = declarations_recent_for_plan_seen_by(response_plan=plan, user=request.user)
    now = timezone.now()
    shown = [
        RecentDeclaration(declaration=declaration, age=_age(now - declaration.created_at))
        for declaration in recent.openable[:DUPLICATES_SHOWN]
    ]
    return {
        "recent_declarations": shown,
        "recent_not_shown": max(len(recent.openable) - DUPLICATES_SHOWN, 0),
        # The history leaves drills out unless asked: a drill plan's older declarations are all drills.
        "recent_history_url": reverse("incidents:declaration-list")
        + "?"
        + urlencode({"plan": plan.pk, **({"drills": "only"} if plan.is_drill else {})}),
        "recent_total": recent.total,
        # Started ones can be joined instead (views/incident_actions.incident_join).
        "recent_joinable": any(entry.joinable for entry in shown),
        "recent_others": recent.others,
        "recent_others_started": recent.others_started,
        "recent_others_age": _age(now - recent.others_latest) if recent.others_latest else "",
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


def _declare_summary(form: DeclarationForm, plan: ResponsePlan | None) -> dict:
    """What the bar beside the Declare button says will be declared, as the page stands (the script keeps it up to
    date as the person types): the plan, the impact and the title, each the person's own or else the plan's."""
    if plan is None:
        return {"summary_title": "", "summary_impact": ""}
    title = (form["title"].value() or "").strip() or plan.template_title
    impact = str(form["impact"].value() or "")
    level = int(impact) if impact in {str(choice.value) for choice in Impact} else plan.template_impact
    return {"summary_title": title, "summary_impact": f"{level} – {Impact(level).label}"}


def _preview_context(request: PortalRequest, form: DeclarationForm, formset, plan: ResponsePlan | None, files) -> dict:
    """The StartIncident request this form would make now, built by the selector the worker uses."""
    if plan is None:
        return {"preview": None, "preview_left_out": 0}
    impact_started_at = None
    if form.is_bound:
        form.is_valid()
        data = getattr(form, "cleaned_data", {})
        title, impact = data.get("title", ""), data.get("impact")
        impact_started_at = data.get("impact_started_at") if "impact_started_at" not in form.errors else None
    else:
        title, impact = form.initial.get("title", ""), form.initial.get("impact")
        # As the form's clean() does: the plan's own values are left to the plan.
        title = "" if title == plan.template_title else title
        impact = None if impact == plan.template_impact else impact
    items: list[PreviewItem] = []
    left_out = 0
    for item_form in formset.forms if formset.is_bound else []:
        if not item_form.has_changed():
            continue
        item_form.is_valid()
        cleaned = getattr(item_form, "cleaned_data", {})
        kind = cleaned.get("kind")
        if kind == RelatedItem.Kind.FILE:
            upload = files.get(item_form.add_prefix("file"))
            # The page's script sends the chosen file's name instead of the file itself.
            name = upload.name if upload else request.POST.get(item_form.add_prefix("file_name"), "")
            if name and "title" in cleaned:
                items.append(PreviewItem(kind=kind, title=cleaned["title"], file_name=validators.safe_file_name(name)))
                continue
        elif kind and not item_form.errors:
            items.append(PreviewItem(kind=kind, value=cleaned["value"], title=cleaned["title"]))
            continue
        left_out += 1
    request_body = declaration_preview_request(
        response_plan=plan,
        title=title,
        impact=impact,
        items=items,
        declared_by=request.user.get_username(),
        impact_started_at=impact_started_at,
    )
    return {
        "preview": json.dumps(request_body, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder),
        "preview_left_out": left_out,
        "assigned_on_submit": ASSIGNED_ON_SUBMIT,
    }
