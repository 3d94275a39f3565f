"""Django's admin (admins only, see portal/admin_site.py): the audit trail is readable, never editable."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from . import roles
from .forms.accounts import AdminUserChangeForm, AdminUserCreationForm
from .models import AuditEvent

# Accounts made or renamed here follow the portal's username rules (services.accounts.username_check).
admin.site.unregister(User)


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    form = AdminUserChangeForm
    add_form = AdminUserCreationForm


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at", "actor_label", "action", "declaration", "response_plan", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_label", "action")
    ordering = ("-id",)
    show_full_result_count = False
    list_select_related = ("declaration", "response_plan")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    # The site already admits admins only; they may read the trail without per-model permissions.
    def has_module_permission(self, request) -> bool:
        return roles.is_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return roles.is_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
