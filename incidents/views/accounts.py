"""Accounts: the admins' pages for people and their roles, each person's password and API tokens."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from .. import roles
from ..errors import PortalError
from ..forms.accounts import ApiTokenForm, PasswordChangeForm, UserCreateForm, UserUpdateForm
from ..http import PortalRequest, client_ip
from ..selectors.accounts import api_token_get_for, api_tokens_of, users_for_administration
from ..selectors.accounts import api_tokens_all as all_api_tokens
from ..services.accounts import user_create as create_user
from ..services.accounts import user_password_change
from ..services.accounts import user_update as update_user
from ..services.api_tokens import api_token_create
from ..services.api_tokens import api_token_revoke as revoke_api_token
from .access import admin_required, declarer_required


@require_http_methods(["GET"])
@admin_required
def user_list(request: PortalRequest) -> HttpResponse:
    page = Paginator(users_for_administration(), 100).get_page(request.GET.get("page"))
    return render(request, "incidents/user_list.html", {"page": page, "roles": roles.ALL})


@require_http_methods(["GET", "POST"])
@admin_required
def user_create(request: PortalRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = create_user(
                username=data["username"],
                email=data["email"],
                password=data["password"],
                role_names=data["roles"],
                actor=request.user,
                ip_address=client_ip(request),
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Account “{user.get_username()}” created.")
            return redirect("incidents:user-list")
    return render(request, "incidents/user_form.html", {"form": form, "subject": None})


@require_http_methods(["GET", "POST"])
@admin_required
def user_edit(request: PortalRequest, user_id: int) -> HttpResponse:
    subject = get_object_or_404(get_user_model(), pk=user_id)
    current = [name for name in subject.groups.values_list("name", flat=True) if name in roles.ALL]
    form = UserUpdateForm(request.POST or None, initial={"roles": current, "is_active": subject.is_active})
    if request.method == "POST" and form.is_valid():
        try:
            update_user(
                user=subject,
                actor=request.user,
                role_names=form.cleaned_data["roles"],
                is_active=form.cleaned_data["is_active"],
                ip_address=client_ip(request),
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Saved “{subject.get_username()}”.")
            return redirect("incidents:user-list")
    return render(request, "incidents/user_form.html", {"form": form, "subject": subject})


@sensitive_post_parameters()
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request: PortalRequest) -> HttpResponse:
    """Anyone signed in, with or without a role, changes their own password (the only way besides an admin setting
    one in the Django admin: the portal sends no e-mail, so it offers no password reset)."""
    if not request.user.has_usable_password():
        # Single sign-on made this account without a password: there is none here to change (and setting one would
        # open a second way in that the identity provider does not control).
        status = 403 if request.method == "POST" else 200
        return render(request, "registration/password_change_form.html", {"form": None}, status=status)
    form = PasswordChangeForm(request, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user_password_change(
                user=request.user, password=form.cleaned_data["new_password1"], ip_address=client_ip(request)
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            # This session stays signed in; the account's other sessions end (they carry the old password's hash).
            update_session_auth_hash(request, request.user)
            messages.success(request, "Your password has been changed. Any other session of yours has been signed out.")
            return redirect("incidents:password-change")
    return render(request, "registration/password_change_form.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
@declarer_required
def api_tokens(request: PortalRequest) -> HttpResponse:
    """The person's own tokens; a new token's secret appears in this one response and never again."""
    created_secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, created_secret = api_token_create(
                owner=request.user,
                name=form.cleaned_data["name"],
                expires_at=form.expires_at(),
                ip_address=client_ip(request),
            )
        except PortalError as exc:
            form.add_error(None, exc.message)
        else:
            form = ApiTokenForm()
    return render(
        request,
        "incidents/api_tokens.html",
        {
            "form": form,
            "tokens": api_tokens_of(user=request.user),
            "created_secret": created_secret,
            "is_admin": roles.is_admin(request.user),
            "api_base": request.build_absolute_uri("/api/"),
            "max_tokens": settings.PORTAL_API_MAX_TOKENS,
        },
    )


def api_tokens_all(request: PortalRequest) -> HttpResponse:
    if not roles.is_admin(request.user):
        raise PermissionDenied("Only admins can see everyone's API tokens.")
    return render(request, "incidents/api_tokens_all.html", {"tokens": all_api_tokens()})


@require_POST
def api_token_revoke(request: PortalRequest, token_id: int) -> HttpResponse:
    token = api_token_get_for(user=request.user, token_id=token_id)
    if token is None:
        raise Http404("No API token with that number is yours to revoke.")
    try:
        revoke_api_token(token=token, actor=request.user, ip_address=client_ip(request))
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Revoked “{token.name}” ({token.prefix}…); it stops working at once.")
    if token.owner_id != request.user.pk:
        return redirect("incidents:api-tokens-all")
    return redirect("incidents:api-tokens")
