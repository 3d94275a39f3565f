"""Accounts: an admin's forms for people and roles, a person's forms for a new password and a new API token."""

from datetime import datetime, timedelta

from django import forms
from django.contrib.auth import authenticate, password_validation
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.forms import PasswordChangeForm as DjangoPasswordChangeForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from .. import roles, validators
from ..http import PersonRequest
from ..services.accounts import username_check

ROLE_CHOICES = [(role, role.capitalize()) for role in roles.ALL]


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        label="Initial password",
        help_text="Tell the person over a separate channel; they can change it later.",
    )
    roles = forms.MultipleChoiceField(
        choices=ROLE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Give the account at least one role."},
    )


class UserUpdateForm(forms.Form):
    roles = forms.MultipleChoiceField(required=False, choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple)
    is_active = forms.BooleanField(required=False, label="Account active (may log in)")


class PasswordChangeForm(DjangoPasswordChangeForm):
    """Django's form for a new password (the current one, the new one twice, the configured validators), with the
    current password checked by signing in again: django-axes counts a wrong one like a failed sign-in and locks
    the page and the login alike, so a borrowed session cannot guess passwords here without limit."""

    error_messages = {
        **DjangoPasswordChangeForm.error_messages,
        "password_incorrect": "That is not your current password.",
    }

    def __init__(self, request: PersonRequest, *args, **kwargs) -> None:
        self.request = request
        super().__init__(request.user, *args, **kwargs)
        self.fields["old_password"].label = "Current password"
        self.fields["new_password2"].label = "New password again"
        # The validators' rules as one plain sentence (Django's own help text is an HTML list).
        self.fields["new_password1"].help_text = " ".join(password_validation.password_validators_help_texts())

    @sensitive_variables("old_password")
    def clean_old_password(self) -> str:
        old_password = self.cleaned_data["old_password"]
        user = authenticate(self.request, username=self.user.get_username(), password=old_password)
        if user is None or user.pk != self.user.pk:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        validators=[validators.reject_control_characters],
        help_text="What will use it, such as “alerting runbook”. Shown in your list of tokens.",
        error_messages={
            "required": "Name the token after what will use it, such as “alerting runbook”.",
            "max_length": "A name can be at most %(limit_value)d characters (it has %(show_value)d).",
        },
    )
    expires_in_days = forms.TypedChoiceField(
        label="Expires",
        choices=[("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year"), ("", "Never")],
        coerce=int,
        empty_value=None,
        required=False,
        initial="90",
        widget=forms.RadioSelect,
    )

    def expires_at(self) -> datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None


# --- Django's admin: its own user forms, with the portal's username rules ----------------------------------


class UsernameRulesMixin(forms.BaseForm):
    """The username must not pass for another account's: the same check as the portal's /users/ page."""

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        instance = getattr(self, "instance", None)
        # Django normalises usernames (NFKC) when it saves them; checked as they will be stored.
        normalized = instance.normalize_username(username) if instance is not None else username
        try:
            username_check(username=normalized, exclude_user_id=instance.pk if instance is not None else None)
        except ValidationError as exc:
            raise ValidationError(exc.messages, code="unique") from None
        return username


class AdminUserCreationForm(UsernameRulesMixin, auth_forms.AdminUserCreationForm):
    pass


class AdminUserChangeForm(UsernameRulesMixin, auth_forms.UserChangeForm):
    pass
