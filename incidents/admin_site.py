"""Django's admin, open only to active staff accounts that hold the portal's "admins" role."""

from django.contrib.admin import AdminSite

from . import roles


class PortalAdminSite(AdminSite):
    site_header = "Incident portal administration"

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and roles.is_admin(request.user)
