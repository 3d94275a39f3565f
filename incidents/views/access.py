"""Who may open which page: each view names the role it needs; anonymous visitors are sent to sign in first
(LoginRequiredMiddleware)."""

import hmac
import ipaddress
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .. import roles
from ..http import client_ip

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


def _is_operator(request: HttpRequest) -> bool:
    token = settings.PORTAL_OPERATOR_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(client_ip(request) or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(network, strict=False) for network in settings.PORTAL_OPERATOR_NETWORKS)


def operator_required(view):
    """For monitors, not people (no login): open to a request bearing `Authorization: Bearer <PORTAL_OPERATOR_TOKEN>`
    or coming from PORTAL_OPERATOR_NETWORKS (loopback by default); 403 to anyone else, signed in or not."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not _is_operator(request):
            raise PermissionDenied("This page is for the portal's operators and their monitoring.")
        return view(request, *args, **kwargs)

    return login_not_required(wrapped)
