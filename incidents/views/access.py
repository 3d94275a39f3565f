"""Who may open which page: each view names the role it needs; anonymous visitors are sent to sign in first
(LoginRequiredMiddleware). The operators' pages (readiness, metrics) need no account but an operator's token or
address instead."""

import hmac
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from .. import roles
from ..http import address_in, client_ip, forwarded_by_unknown_peer

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


def declarer_required(view):
    """Refuse (403) people without any of the portal's roles: every page but the admins' needs one."""
    return role_required(roles.can_declare, NO_ROLE)(view)


OPERATORS_ONLY = (
    "For operators only: send “Authorization: Bearer <PORTAL_OPERATOR_TOKEN>”, "
    "or ask from an address in PORTAL_OPERATOR_NETWORKS.\n"
)


def is_operator(request: HttpRequest) -> bool:
    """The operator's bearer token (PORTAL_OPERATOR_TOKEN, when set), or a request from PORTAL_OPERATOR_NETWORKS.

    The address is the client's as client_ip() finds it through the configured proxy. A request that carries a
    forwarding header no configured proxy vouches for is never let in by address: behind a proxy the settings do
    not name, everyone would arrive from the proxy's (often loopback) address."""
    expected = settings.PORTAL_OPERATOR_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode()):
        return True
    if forwarded_by_unknown_peer(request):
        return False
    return address_in(client_ip(request), settings.PORTAL_OPERATOR_NETWORKS)


def operator_required(view):
    """Open a view to operators only (is_operator), without a login: monitors and load balancers have no session.
    Everyone else gets a bare 403 that says how to get in and nothing about what the view shows."""

    @login_not_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not is_operator(request):
            return HttpResponse(OPERATORS_ONLY, status=403, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapped
