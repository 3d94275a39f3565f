"""The declare form: every rule is checked here, at the field, before anything is stored or sent."""

import uuid

from django import forms
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from . import roles, selectors, validators
from .models import IMPACT_DESCRIPTIONS, Declaration, Impact, RelatedItem, ResponsePlan
from .selectors import DEFAULT_SORT, HistoryFilters
from .services import RelatedItemInput


class ResponsePlanChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ResponsePlan) -> str:
        return obj.label


def impact_choices() -> list[tuple[str, str]]:
    return [("", "Use the response plan's impact")] + [
        (str(impact.value), f"{impact.value} – {impact.label}: {IMPACT_DESCRIPTIONS[impact.value]}")
        for impact in Impact
    ]


class DeclarationForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    response_plan = ResponsePlanChoiceField(
        queryset=ResponsePlan.objects.none(),
        empty_label="Choose a response plan…",
        error_messages={
            "required": "Choose the response plan that fits this incident.",
            "invalid_choice": "Choose one of the response plans listed; that one is not available to you.",
        },
    )
    title = forms.CharField(
        required=False,
        max_length=validators.TITLE_MAX_LENGTH,
        validators=[validators.reject_control_characters],
        help_text="Leave empty to use the response plan's title.",
        error_messages={"max_length": "A title can be at most %(limit_value)d characters (it has %(show_value)d)."},
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=impact_choices,
        widget=forms.RadioSelect,
        help_text="Leave on the plan's impact unless you know better.",
        error_messages={"invalid_choice": "Choose an impact from 1 (critical) to 5 (no impact)."},
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["response_plan"].queryset = selectors.response_plans_available_to(user=user)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        try:
            return uuid.UUID(key).hex
        except ValueError:
            raise ValidationError("This form is damaged; reload the page and submit again.") from None


class RelatedItemForm(forms.Form):
    kind = forms.ChoiceField(choices=RelatedItem.Kind.choices, initial=RelatedItem.Kind.LINK)
    # Its length limit depends on the kind, so clean() checks it with the kind's own message.
    value = forms.CharField(required=False, label="Link or ARN", strip=True)
    file = forms.FileField(required=False, allow_empty_file=True)
    title = forms.CharField(
        required=False,
        max_length=validators.RELATED_ITEM_TITLE_MAX_LENGTH,
        validators=[validators.reject_control_characters],
        error_messages={"max_length": "A title can be at most %(limit_value)d characters (it has %(show_value)d)."},
    )

    def clean(self):
        cleaned = super().clean()
        kind, value, upload = cleaned.get("kind"), cleaned.get("value", ""), cleaned.get("file")
        if kind == RelatedItem.Kind.FILE:
            if not upload:
                self.add_error("file", "Choose a file to attach, or remove this row.")
            else:
                try:
                    validators.validate_upload(upload)
                except ValidationError as exc:
                    self.add_error("file", exc)
        elif kind in (RelatedItem.Kind.LINK, RelatedItem.Kind.RESOURCE):
            validate = (
                validators.validate_link_url if kind == RelatedItem.Kind.LINK else validators.validate_resource_arn
            )
            if not value:
                self.add_error("value", "Enter the link or ARN, or remove this row.")
            else:
                try:
                    validate(value)
                except ValidationError as exc:
                    self.add_error("value", exc)
        return cleaned

    def to_input(self) -> RelatedItemInput:
        data = self.cleaned_data
        return RelatedItemInput(
            kind=data["kind"], title=data.get("title", ""), value=data.get("value", ""), upload=data.get("file")
        )


class BaseRelatedItemFormSet(forms.BaseFormSet):
    def clean(self):
        if any(self.errors):
            return
        files = sum(1 for form in self.filled_forms() if form.cleaned_data["kind"] == RelatedItem.Kind.FILE)
        if files > settings.PORTAL_MAX_FILES:
            raise ValidationError(f"Attach at most {settings.PORTAL_MAX_FILES} files (there are {files}).")

    def filled_forms(self) -> list[RelatedItemForm]:
        return [form for form in self.forms if form.has_changed() and form.cleaned_data]

    def to_inputs(self) -> list[RelatedItemInput]:
        return [form.to_input() for form in self.filled_forms()]


RelatedItemFormSet = forms.formset_factory(
    RelatedItemForm,
    formset=BaseRelatedItemFormSet,
    extra=3,
    max_num=validators.RELATED_ITEMS_MAX,
    validate_max=True,
    # Above max_num so that too many rows is reported, never silently truncated.
    absolute_max=validators.RELATED_ITEMS_MAX + 50,
)
RelatedItemFormSet.default_error_messages = {
    **forms.BaseFormSet.default_error_messages,
    "too_many_forms": f"An incident can have at most {validators.RELATED_ITEMS_MAX} related items.",
}


# --- History filters (GET) ---------------------------------------------------------------------------------

SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("impact", "Most severe first"),
    ("-impact", "Least severe first"),
    ("state", "State (A–Z)"),
    ("-state", "State (Z–A)"),
]
SEARCH_MIN_LENGTH = 3


class HistoryFilterForm(forms.Form):
    """The history's filters; they live in the URL, so a filtered view can be bookmarked and shared."""

    q = forms.CharField(required=False, max_length=200, label="Title contains", strip=True)
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *Declaration.State.choices])
    plan = ResponsePlanChoiceField(
        required=False,
        queryset=ResponsePlan.objects.order_by("name"),
        empty_label="Any response plan",
        label="Response plan",
        error_messages={"invalid_choice": "That response plan does not exist; choose one from the list."},
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any impact"), *((str(value), f"{value} – {label}") for value, label in Impact.choices)],
        help_text="The impact AWS was asked for: the declarer's, or the plan's when they left it empty.",
    )
    declared_by = forms.CharField(
        required=False,
        max_length=150,
        label="Declared by",
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "username", "autocomplete": "off"}),
    )
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES)

    def clean_q(self) -> str:
        search = self.cleaned_data["q"]
        if search and len(search) < SEARCH_MIN_LENGTH:
            raise ValidationError(f"Search for at least {SEARCH_MIN_LENGTH} characters of the title.")
        return search

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned

    def filters(self) -> HistoryFilters:
        """The valid filters; a field with an error is left out (and shown at the field)."""
        data = self.cleaned_data if self.is_bound else {}
        valid = {name: value for name, value in data.items() if name not in self.errors}
        plan = valid.get("plan")
        return HistoryFilters(
            state=valid.get("state") or "",
            response_plan_id=plan.pk if plan else None,
            impact=valid.get("impact"),
            declared_by=valid.get("declared_by") or "",
            date_from=valid.get("date_from"),
            date_to=valid.get("date_to"),
            search=valid.get("q") or "",
            sort=valid.get("sort") or DEFAULT_SORT,
        )


class SummaryRangeForm(forms.Form):
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    MAX_DAYS = 366 * 2

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to") or timezone.localdate()
        if start:
            if start > end:
                self.add_error("date_to", "The end date is before the start date.")
            elif (end - start).days >= self.MAX_DAYS:
                self.add_error("date_from", "Choose at most two years at a time.")
        return cleaned


# --- Curation (admins) -------------------------------------------------------------------------------------


class ResponsePlanCurationForm(forms.Form):
    is_visible = forms.BooleanField(required=False, label="Shown to people declaring")
    display_name = forms.CharField(
        required=False,
        max_length=200,
        validators=[validators.reject_control_characters],
        help_text="Shown instead of the AWS name when set.",
    )
    when_to_use = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[validators.reject_control_characters],
        label="When to use",
        help_text="One or two plain sentences: the situation this plan is for.",
    )
    order = forms.IntegerField(
        min_value=-1000, max_value=1000, help_text="Lower numbers are listed first on the declare form."
    )
    allowed_groups = forms.ModelMultipleChoiceField(
        required=False,
        queryset=Group.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        label="Who may use it",
        help_text="Leave all unticked to let everyone with a role use it.",
    )

    def __init__(self, *args, plan: ResponsePlan, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "is_visible": plan.is_visible,
                "display_name": plan.display_name,
                "when_to_use": plan.when_to_use,
                "order": plan.order,
                "allowed_groups": list(plan.allowed_groups.all()),
            },
        )
        super().__init__(*args, **kwargs)
        self.plan = plan

    def clean_is_visible(self) -> bool:
        shown = self.cleaned_data["is_visible"]
        if shown and self.plan.deleted_in_aws:
            raise ValidationError("This plan was deleted in AWS; it cannot be shown until it exists there again.")
        return shown


# --- Users (admins) ----------------------------------------------------------------------------------------

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
