"""Who may open which page: each view names the role it needs; anonymous visitors are sent to sign in first
(LoginRequiredMiddleware)."""

from collections.abc import Callable
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .. import roles

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
