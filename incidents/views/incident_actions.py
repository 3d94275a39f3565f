"""Acting on a started incident from its declaration's page: a note on the timeline, more related items, a new
title / impact / summary, resolving it; and joining it from the declare page instead of declaring it again.

Plain forms (POST, then a redirect to the page); a form with errors comes back on a page of its own with what was
typed. The page's list of actions follows their state (htmx polls it while one is queued).
"""

from dataclasses import dataclass
from typing import cast

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from .. import roles
from ..errors import PortalError
from ..forms.declare import (
    BaseRelatedItemFormSet,
    DeclarationForm,
    RelatedItemFormSet,
    related_items_with_attachments,
)
from ..forms.incident_actions import IncidentUpdateForm, NoteForm, RelatedItemsForm, ResolveForm
from ..http import PortalRequest, client_ip, htmx_target
from ..models import Declaration, IncidentAction
from ..selectors.declarations import declaration_get_for
from ..selectors.impacts import impact_levels
from ..selectors.incident_actions import incident_actions_of
from ..services import actions as services
from .access import declarer_required

FORMS = {"note": NoteForm, "items": RelatedItemsForm, "update": IncidentUpdateForm, "resolve": ResolveForm}
QUEUED_MESSAGES = {
    "note": "Your note is queued for the incident's timeline.",
    "items": "Your related items are queued for the incident.",
    "update": "Your change is queued for the incident.",
    "resolve": "Resolving is queued, with your closing note.",
}


@dataclass(frozen=True)
class ActionFailure:
    what: str
    next: str


def action_failure_explanation(*, code: str) -> ActionFailure:
    """A failed action as a person reads it (AWS's own text is shown under it)."""
    if code in ("AccessDeniedException", "AccessDenied"):
        return ActionFailure(
            "AWS refused: the portal is not allowed to change this incident.",
            "Sending it again will not help until an AWS administrator allows it; use the AWS console meanwhile.",
        )
    if code == "ResourceNotFoundException":
        return ActionFailure(
            "AWS no longer knows this incident (it was deleted in Incident Manager).", "Sending it again will not help."
        )
    if code in ("ValidationException", "ConflictException"):
        return ActionFailure(
            "AWS refused the request as invalid.",
            "Sending the same again will fail the same way; change it, or ask a portal admin to look.",
        )
    return ActionFailure(
        "AWS was busy or could not be reached, and the portal gave up after several tries.",
        "Send it again once AWS answers, or use the AWS console meanwhile.",
    )


def incident_actions_context(request: PortalRequest, declaration: Declaration, bound: dict | None = None) -> dict:
    """What the page's actions section shows: the actions and their states, and the forms (bound ones with errors
    when given)."""
    actions = incident_actions_of(declaration=declaration)
    forms = {name: form_class() for name, form_class in FORMS.items()} | (bound or {})
    return {
        "incident_actions": [
            (action, action_failure_explanation(code=action.failure_code) if action.state == "failed" else None)
            for action in actions
        ],
        "actions_pending": any(action.state == IncidentAction.State.QUEUED for action in actions),
        "may_act": roles.may_act_on(request.user, declaration),
        "action_forms": forms,
        # The same help as the declare page's: each level's meaning and the admins' example (one query).
        "action_impacts": impact_levels(),
    }


def _declaration_to_act_on(request: PortalRequest, declaration_id: int) -> Declaration:
    declaration = declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    if not roles.may_act_on(request.user, declaration):
        raise PermissionDenied("Only the declarer, managers and admins may act on this incident.")
    return declaration


@require_GET
@declarer_required
def incident_actions(request: PortalRequest, declaration_id: int) -> HttpResponse:
    """The actions section alone: its list for the page's polling, or as a page of its own."""
    declaration = declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    context = {"declaration": declaration, **incident_actions_context(request, declaration)}
    if htmx_target(request) == "action-list":
        return render(request, "incidents/declaration_actions.html#action-list", context)
    return render(request, "incidents/declaration_actions_page.html", context)


@require_POST
@declarer_required
def incident_action_request(request: PortalRequest, declaration_id: int, kind: str) -> HttpResponse:
    declaration = _declaration_to_act_on(request, declaration_id)
    form = FORMS[kind](request.POST, request.FILES)
    if form.is_valid():
        try:
            _request(request, declaration, kind, form)
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, QUEUED_MESSAGES[kind])
            return redirect(declaration.get_absolute_url() + "#incident-actions")
    context = {"declaration": declaration, **incident_actions_context(request, declaration, {kind: form})}
    context.update(failed_form=kind, failed=form)
    return render(request, "incidents/declaration_actions_page.html", context, status=400)


def _request(request: PortalRequest, declaration: Declaration, kind: str, form) -> None:
    data = form.cleaned_data
    common = {
        "declaration": declaration,
        "requested_by": request.user,
        "idempotency_key": form.key_for(request.user),
        "ip_address": client_ip(request),
    }
    if kind == "note":
        services.incident_note_add(text=data["text"], **common)
    elif kind == "items":
        services.incident_items_add(items=data["items"], **common)
    elif kind == "update":
        services.incident_record_update(
            title=data["title"] or None, impact=data["impact"], summary=data["summary"] or None, **common
        )
    else:
        services.incident_resolve(note=data["note"], **common)


@require_POST
@declarer_required
def incident_join(request: PortalRequest, declaration_id: int) -> HttpResponse:
    """The declare page's “Add my items and note to that incident instead”: the declare form's related items and
    the join note go to the incident already declared; nothing new is started."""
    declaration = _declaration_to_act_on(request, declaration_id)
    # "Attach files" without JavaScript posts its files in one field: each becomes a file row, as when declaring.
    post, files = related_items_with_attachments(request.POST, request.FILES)
    formset = cast(BaseRelatedItemFormSet, RelatedItemFormSet(post, files, prefix="items"))
    note = request.POST.get("join_note", "")
    key = request.POST.get("idempotency_key", "")
    problems: list[str] = []
    if not formset.is_valid():
        problems = [f"{field}: {' '.join(errors)}" for form in formset for field, errors in form.errors.items()]
        problems += [str(error) for error in formset.non_form_errors()]
    elif not key:
        problems = ["The declare form is damaged; reload the page and submit again."]
    else:
        try:
            services.incident_join(
                declaration=declaration,
                requested_by=request.user,
                note=note,
                items=formset.to_inputs(),
                idempotency_key=f"join:{request.user.pk}:{key[:64]}:{declaration.pk}",
                typed_title=request.POST.get("title", ""),
                is_drill=bool(DeclarationForm.base_fields["drill"].to_python(request.POST.get("drill"))),
                ip_address=client_ip(request),
            )
        except PortalError as exc:
            problems = [exc.message]
    if not problems:
        messages.success(request, "Your items and note are queued for this incident; nothing new was declared.")
        url = declaration.get_absolute_url() + "#incident-actions"
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    # What was typed comes back in the page's own forms, to send from there.
    lines = [
        f"{form.data.get(form.add_prefix('title'), '')} {form.data.get(form.add_prefix('value'), '')}".strip()
        for form in formset.forms
        if form.data.get(form.add_prefix("kind"), "link") != "file" and form.data.get(form.add_prefix("value"))
    ]
    bound = {
        "note": NoteForm(initial={"text": note}),
        "items": RelatedItemsForm(initial={"links": "\n".join(lines)}),
    }
    context = {"declaration": declaration, **incident_actions_context(request, declaration, bound)}
    context["join_problems"] = problems
    if request.htmx:
        # htmx sent the declare form here (the button's formaction): the page replaces the declare page's body.
        response = render(request, "incidents/declaration_actions_page.html", context)
        return reswap(retarget(response, "body"), "innerHTML")
    return render(request, "incidents/declaration_actions_page.html", context, status=400)
