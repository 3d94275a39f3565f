"""Signing in through the identity provider, and signing out (of the provider too): mozilla-django-oidc's views,
told the provider's endpoints from its discovery document, answering with a page of the portal's own (that offers
the break-glass sign-in) when the provider is down or refuses."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView, OIDCLogoutView

from ..sso import ProviderUnavailable, discovery, refuse


def _problem(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    return render(
        request,
        "registration/sso_problem.html",
        {"title": title, "message": message, "provider_name": settings.PORTAL_SSO_PROVIDER_NAME},
        status=status,
    )


def provider_unavailable(request: HttpRequest) -> HttpResponse:
    return _problem(
        request,
        title="The sign-in service is not answering",
        message=(
            f"The portal cannot reach {settings.PORTAL_SSO_PROVIDER_NAME} to sign you in right now. Try again in a "
            "minute. If an incident cannot wait, sign in with a break-glass account."
        ),
        status=503,
    )


@method_decorator([login_not_required, never_cache], name="dispatch")
class SignInStart(OIDCAuthenticationRequestView):
    """Sends the person to the provider (state, nonce and a PKCE challenge kept in their session)."""

    def __init__(self, *args, **kwargs):
        # Read at each sign-in rather than when the view is made: the endpoint comes from the discovery document.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not settings.PORTAL_SSO_ENABLED:
            raise Http404("Single sign-on is not configured.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = discovery()["authorization_endpoint"]
        except ProviderUnavailable:
            return provider_unavailable(request)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


@method_decorator([login_not_required, never_cache], name="dispatch")
class SignInCallback(OIDCAuthenticationCallbackView):
    """Where the provider sends the person back: the code is exchanged and the ID token verified (ProviderBackend)."""

    def get(self, request):
        if not settings.PORTAL_SSO_ENABLED:
            raise Http404("Single sign-on is not configured.")
        self.provider_error = request.GET.get("error")
        if self.provider_error:
            description = request.GET.get("error_description", "")[:300]
            refuse(request, reason=f"The identity provider answered {self.provider_error[:100]}: {description}")
        return super().get(request)

    def login_success(self):
        response = super().login_success()
        # Bounded: after this the person signs in again, and their groups are read again.
        self.request.session.set_expiry(timezone.now() + timedelta(seconds=settings.PORTAL_SSO_MAX_SESSION_AGE))
        return response

    def login_failure(self):
        return _problem(
            self.request,
            title="You could not be signed in",
            message=(
                f"{settings.PORTAL_SSO_PROVIDER_NAME} did not sign you in to the portal, or the portal refused the "
                "sign-in (your account may be disabled, or no group of yours gives you a role here). Ask an admin "
                "if you think you should have access."
            ),
            status=403,
        )


@method_decorator(never_cache, name="dispatch")
class SignOut(OIDCLogoutView):
    """Signs out of the portal and, after a provider's sign-in, of the provider too (sso.provider_logout_url)."""

    http_method_names = ["post"]
