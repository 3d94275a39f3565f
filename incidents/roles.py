"""The portal's three roles, as Django groups created by a migration."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

SUPPORT = "support staff"
MANAGER = "managers"
ADMIN = "admins"
ALL = (SUPPORT, MANAGER, ADMIN)


def _groups(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    if not hasattr(user, "_portal_groups"):
        user._portal_groups = set(user.groups.values_list("name", flat=True))
    return user._portal_groups


def is_manager(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user) & {MANAGER, ADMIN}))


def is_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or ADMIN in _groups(user))


def can_declare(user: AbstractBaseUser | AnonymousUser) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user)))
