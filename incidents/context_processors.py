from django.http import HttpRequest

from . import roles


def portal_roles(request: HttpRequest) -> dict:
    """What the navigation may offer this person (the views check again on every request)."""
    user = request.user
    return {
        "portal_roles": {
            "can_declare": roles.can_declare(user),
            "is_manager": roles.is_manager(user),
            "is_admin": roles.is_admin(user),
        }
    }
