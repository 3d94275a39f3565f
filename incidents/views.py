"""Views: validate input, call one service or selector, render."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import health, roles, selectors, services, validators
from .forms import DeclarationForm, RelatedItemFormSet
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
            "related_items": declaration.related_items.defer("pending_content"),
            "files": selectors.declaration_files(declaration=declaration),
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


# --- Issue 6: file downloads and health ---------------------------------------------------------------


@require_GET
def declaration_file(request: HttpRequest, declaration_id: int, item_id: int) -> HttpResponse:
    """Send the person to a presigned S3 link valid for at most 5 minutes; the bucket itself is never public."""
    item = selectors.declaration_file_get_for(user=request.user, declaration_id=declaration_id, item_id=item_id)
    if item is None:
        raise Http404("No such file is visible to you.")
    response = redirect(selectors.file_download_url(item=item))
    response["Cache-Control"] = "no-store"
    return response


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, Redis, worker heartbeat and AWS reachability, for load balancers and monitors (no login)."""
    healthy, report = health.health_report()
    return JsonResponse(report, status=200 if healthy else 503)
