"""How a session becomes a person: Django's ModelBackend, reading the person's groups in the same query."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from . import roles


class PortalBackend(ModelBackend):
    """`get_user` runs on every request with a session, and nearly every view then checks the person's role:
    read both in one query (a row per group membership, the person joined in) instead of two."""

    def get_user(self, user_id):
        memberships = list(
            get_user_model()
            .groups.through.objects.filter(user_id=user_id)
            .select_related("user", "group")
            .order_by("group_id")
        )
        if not memberships:
            return super().get_user(user_id)  # no group, so no role: the plain lookup
        user = memberships[0].user
        roles.memberships_known(user, {membership.group_id: membership.group.name for membership in memberships})
        return user if self.user_can_authenticate(user) else None
