from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from . import roles


def portal_roles(request: HttpRequest) -> dict:
    """What the navigation may offer this person (the views check again on every request)."""
    # Error pages for requests refused before authentication ran (a bad Host header, say) have no user yet.
    user = getattr(request, "user", None) or AnonymousUser()
    return {
        "portal_roles": {
            "can_declare": roles.can_declare(user),
            "is_manager": roles.is_manager(user),
            "is_admin": roles.is_admin(user),
        }
    }


def single_sign_on(request: HttpRequest) -> dict:
    """Whether the login page offers the identity provider (and names it)."""
    return {"sso": {"enabled": settings.PORTAL_SSO_ENABLED, "provider_name": settings.PORTAL_SSO_PROVIDER_NAME}}
