"""Django's admin (admins only, see incidents/admin_site.py): the audit trail is readable, never editable, and every
change to an account or a group made here, and every lockout lifted, joins the trail in the same transaction as the
change.

Accounts and groups stay in the admin rather than leave it: with no e-mail, it is where an admin sets a new password
for someone who forgot theirs and grants staff or superuser status, and without it those changes would be made in a
shell, where nothing records them. The portal's own pages (/users/) record their changes themselves
(services/accounts.py); nothing here sees those.
"""

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import router, transaction
from django.http import HttpRequest, HttpResponse

from . import roles
from .forms.accounts import AdminUserChangeForm, AdminUserCreationForm
from .http import client_ip
from .models import AuditEvent
from .selectors.accounts import AccountState, account_state, group_state
from .services.accounts import group_admin_change_record, user_admin_change_record
from .services.authentication import lockout_clear_record


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


class AuditedAdmin(admin.ModelAdmin):
    """Reads the object as stored before and after each change the admin saves (adding, the change form, deleting,
    one by one or in bulk) and records the difference with who made it and from where."""

    def audited_state(self, obj: Any) -> AccountState:
        raise NotImplementedError

    def record(self, request: HttpRequest, before: AccountState | None, after: AccountState | None) -> None:
        raise NotImplementedError

    def stored_state(self, request: HttpRequest, object_id: str) -> AccountState | None:
        obj = self.get_object(request, unquote(object_id))
        return self.audited_state(obj) if obj is not None else None

    def audited_post(self, request: HttpRequest, object_id: str, view, *args) -> HttpResponse:
        """Run one of the admin's views on an object; when it saved a change, record it before the commit."""
        if request.method != "POST":
            return view(request, object_id, *args)
        with transaction.atomic(using=router.db_for_write(self.model)):
            before = self.stored_state(request, object_id)
            response = view(request, object_id, *args)
            self.record(request, before, self.stored_state(request, object_id))
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return self.audited_post(request, object_id, super().change_view, form_url, extra_context)

    def log_addition(self, request, obj, message):
        # Called by the add view once the object and its relations are saved, inside the view's transaction.
        entry = super().log_addition(request, obj, message)
        self.record(request, None, self.audited_state(obj))
        return entry

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(self.model)):
            before = self.audited_state(obj)
            super().delete_model(request, obj)
            self.record(request, before, None)

    def delete_queryset(self, request, queryset):
        with transaction.atomic(using=router.db_for_write(self.model)):
            before = [self.audited_state(obj) for obj in queryset]
            super().delete_queryset(request, queryset)
            for state in before:
                self.record(request, state, None)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    # Accounts made or renamed here follow the portal's username rules (services.accounts.username_check).
    form = AdminUserChangeForm
    add_form = AdminUserCreationForm

    def audited_state(self, obj: User) -> AccountState:
        return account_state(user=obj)

    def record(self, request, before, after) -> None:
        user_admin_change_record(before=before, after=after, actor=request.user, ip_address=client_ip(request))

    def user_change_password(self, request, id, form_url=""):
        return self.audited_post(request, id, super().user_change_password, form_url)


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    # The portal's roles are these groups by name (roles.py): renamed or deleted, everyone in one would lose it.
    def get_readonly_fields(self, request, obj=None):
        return ("name",) if obj is not None and obj.name in roles.ALL else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and not (obj is not None and obj.name in roles.ALL)

    def audited_state(self, obj: Group) -> AccountState:
        return group_state(group=obj)

    def record(self, request, before, after) -> None:
        group_admin_change_record(before=before, after=after, actor=request.user, ip_address=client_ip(request))


if admin.site.is_registered(AccessAttempt):  # django-axes' admin (AXES_ENABLE_ADMIN)
    admin.site.unregister(AccessAttempt)

    @admin.register(AccessAttempt)
    class AuditedAccessAttemptAdmin(AccessAttemptAdmin):
        """Deleting failed sign-ins here lifts a lockout: recorded like the lockout itself."""

        def delete_model(self, request, obj):
            self.delete_queryset(request, AccessAttempt.objects.filter(pk=obj.pk))

        def delete_queryset(self, request, queryset):
            with transaction.atomic(using=router.db_for_write(AccessAttempt)):
                cleared = list(queryset.values_list("username", "ip_address"))
                super().delete_queryset(request, queryset)
                for username, address in cleared:
                    lockout_clear_record(
                        username=username, locked_address=address, actor=request.user, ip_address=client_ip(request)
                    )
