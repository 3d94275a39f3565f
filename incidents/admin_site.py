"""Django's admin, open only to active staff accounts that hold the portal's "admins" role."""

from django.contrib.admin import AdminSite
from django.shortcuts import redirect

from . import roles


class PortalAdminSite(AdminSite):
    site_header = "Incident portal administration"

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and roles.is_admin(request.user)

    # One place to change one's own password: the portal's page, which checks the current password against the
    # login throttle and records the change (the admin's own page does neither).
    def password_change(self, request, extra_context=None):
        return redirect("incidents:password-change")

    def password_change_done(self, request, extra_context=None):
        return redirect("incidents:password-change")
