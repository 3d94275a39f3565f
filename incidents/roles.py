"""The portal's three roles, as Django groups created by a migration."""

from django.contrib.auth.models import AnonymousUser, User

# Who may be asked about: a signed-in person or the anonymous visitor (the portal uses Django's own User model).
Person = User | AnonymousUser

SUPPORT = "support staff"
MANAGER = "managers"
ADMIN = "admins"
ALL = (SUPPORT, MANAGER, ADMIN)


def _memberships(user) -> dict[int, str]:
    """The person's groups by id, read once per request (the user object lives as long as the request)."""
    if not user.is_authenticated:
        return {}
    if not hasattr(user, "_portal_groups"):
        user._portal_groups = dict(user.groups.values_list("id", "name"))
    return user._portal_groups


def _groups(user) -> set[str]:
    return set(_memberships(user).values())


def group_ids(user: Person) -> list[int]:
    return list(_memberships(user))


def is_manager(user: Person) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user) & {MANAGER, ADMIN}))


def is_admin(user: Person) -> bool:
    return user.is_authenticated and (user.is_superuser or ADMIN in _groups(user))


def can_declare(user: Person) -> bool:
    return user.is_authenticated and (user.is_superuser or bool(_groups(user)))


def may_act_on(user: Person, declaration) -> bool:
    """Who may act on a declaration and its incident (retry it, add notes and items, change or resolve it): its
    declarer, managers and admins."""
    return user.is_authenticated and (is_manager(user) or declaration.declared_by_id == user.pk)
