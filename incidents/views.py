"""Views: validate input, call one service or selector, render."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from . import roles, selectors, services, validators
from .forms import ApiTokenForm, DeclarationForm, RelatedItemFormSet
from .models import IMPACT_DESCRIPTIONS, Impact

AWS_CONSOLE_URL = "https://console.aws.amazon.com/systems-manager/incidents/home"


def client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def home(request: HttpRequest) -> HttpResponse:
    return redirect("incidents:declare")


@require_http_methods(["GET", "POST"])
def declare(request: HttpRequest) -> HttpResponse:
    if not roles.can_declare(request.user):
        raise PermissionDenied("Your account has no role in the portal yet; ask an admin.")
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
    declaration = selectors.declaration_get_for(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No declaration with that number is visible to you.")
    return render(
        request,
        "incidents/declaration_detail.html",
        {
            "declaration": declaration,
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


# --- API tokens ----------------------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The person's own tokens; a new token's secret appears in this one response and never again."""
    if not roles.can_declare(request.user):
        raise PermissionDenied("Your account has no role in the portal yet; ask an admin.")
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
