"""Signing in and out, as Django and django-axes announce it, into the audit trail and the metrics: an interface
like the tasks, each receiver a thin call to one service. Connected when the app is ready (apps.py)."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from . import metrics
from .http import client_ip
from .services.authentication import lockout_record, sign_in_failure_record, sign_in_record, sign_out_record
from .sso import sign_in_method


def _address(request: HttpRequest | None) -> str | None:
    return client_ip(request) if request is not None else None


def _page(request: HttpRequest | None) -> str | None:
    """The page the person used, by its URL name ("login", "admin:login", …); None outside a routed request."""
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None else None


@receiver(user_logged_in, dispatch_uid="incidents.audit.signed_in")
def signed_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    sign_in_record(user=user, ip_address=_address(request), via=_page(request), method=sign_in_method(user))


@receiver(user_login_failed, dispatch_uid="incidents.audit.sign_in_failed")
def sign_in_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    # The identity provider's callback records its refusals itself, with their reason (incidents/sso.py).
    if _page(request) == "sso-callback":
        return
    # Django has already masked the password in `credentials`; only the username is read.
    sign_in_failure_record(username=credentials.get("username"), ip_address=_address(request), via=_page(request))


@receiver(user_locked_out, dispatch_uid="incidents.audit.locked_out")
def locked_out(sender, request: HttpRequest | None, username: str | None, **kwargs) -> None:
    lockout_record(username=username, ip_address=_address(request), via=_page(request))


@receiver(user_logged_out, dispatch_uid="incidents.audit.signed_out")
def signed_out(sender, request: HttpRequest | None, user, **kwargs) -> None:
    if user is not None:  # signing out without having signed in changes nothing
        sign_out_record(user=user, ip_address=_address(request), via=_page(request))


# The metrics count sign-ins by outcome; django-axes' refusals of a locked-out account arrive as user_login_failed.
user_logged_in.connect(metrics.sign_in_succeeded, dispatch_uid="incidents.metrics.sign_in")
user_login_failed.connect(metrics.sign_in_refused, dispatch_uid="incidents.metrics.sign_in_refused")
