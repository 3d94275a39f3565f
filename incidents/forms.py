"""Input checks for the web forms: the declare form, history filters, curation, accounts, the API token form.

Every rule is checked here, at the field, before anything is stored or sent.
"""

import hashlib
import html
import json
import uuid
from datetime import datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.forms.utils import flatatt
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import roles, selectors, validators
from .models import IMPACT_DESCRIPTIONS, Declaration, Impact, RelatedItem, ResponsePlan
from .selectors import DEFAULT_SORT, HistoryFilters
from .services import RelatedItemInput

# Django's max_length message, worded as the browser's check words it.
TITLE_TOO_LONG = validators.MESSAGES["title_too_long"].format(limit="%(limit_value)d", length="%(show_value)d")


class FlatSelect(forms.Select):
    """A flat <select> (no option groups) written in Python. Django renders each option through its own template
    (about 50 µs each, and ~0.2 ms for even a short list), which made a 200-plan filter cost 10 ms a page; this
    writes the same markup for a tenth of that. It escapes with the standard library's html.escape: Django's
    escape() wraps it in a check for lazy strings that made 200 options four times slower (0.5 ms against 0.12)."""

    def render(self, name, value, attrs=None, renderer=None):
        selected = set(self.format_value(value))
        options = "".join(
            f'<option value="{html.escape(str(choice))}"{" selected" if str(choice) in selected else ""}>'
            f"{html.escape(str(label))}</option>"
            for choice, label in self.choices
        )
        final_attrs = flatatt(self.build_attrs(self.attrs, attrs))
        # Every value and label above went through html.escape().
        return format_html('<select name="{}"{}>{}</select>', name, final_attrs, mark_safe(options))  # noqa: S308


class ResponsePlanField(forms.Field):
    """A response plan, by id, among those available to `user` (set by the form).

    The declare page lists the plans itself (searchable, each with its note: `selectors.response_plans_search`), so
    this field offers no choices of its own; it looks up the one submitted with a query compiled once per process
    (`selectors.response_plan_available_get`), where a ModelChoiceField built a queryset per form and compiled it
    per lookup (~1 ms of every submission)."""

    user = None

    def to_python(self, value):
        if value in self.empty_values:
            return None
        plan = self.available_plan(value)
        if plan is None:
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": value})
        return plan

    def available_plan(self, value) -> ResponsePlan | None:
        try:
            pk = int(str(value.pk if isinstance(value, ResponsePlan) else value))
        except ValueError:
            return None
        # Ids are positive bigints: anything else is no plan (and must not reach the database as a parameter).
        return selectors.response_plan_available_get(user=self.user, pk=pk) if 0 < pk < 2**63 else None


def impact_choices() -> list[tuple[str, str]]:
    return [
        (str(impact.value), f"{impact.value} – {impact.label}: {IMPACT_DESCRIPTIONS[impact.value]}")
        for impact in Impact
    ]


class DeclarationForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    response_plan = ResponsePlanField(
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
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"max_length": TITLE_TOO_LONG},
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=impact_choices,
        widget=forms.RadioSelect,
        help_text="The plan's impact is chosen for you; change it only if this incident is worse or milder.",
        error_messages={"invalid_choice": "Choose an impact from 1 (critical) to 5 (no impact)."},
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["response_plan"].user = user
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    def clean(self):
        cleaned = super().clean()
        plan = cleaned.get("response_plan")
        if plan:
            # The plan's own value is not an overwrite: leave it to the plan, as if the field were empty.
            if cleaned.get("title") == plan.template_title:
                cleaned["title"] = ""
            if cleaned.get("impact") == plan.template_impact:
                cleaned["impact"] = None
        return cleaned

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
        error_messages={"max_length": TITLE_TOO_LONG},
    )

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        try:
            validators.validate_related_item(
                kind=kind,
                value=cleaned.get("value", ""),
                title=cleaned.get("title", ""),
                upload=cleaned.get("file"),
            )
        except ValidationError as exc:
            for part, errors in exc.error_dict.items():
                if part not in self.errors:  # the field's own check (its length) already said so
                    self.add_error(part, errors)
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
            raise ValidationError(
                validators.MESSAGES["too_many_files"].format(limit=settings.PORTAL_MAX_FILES, count=files)
            )

    def filled_forms(self) -> list[RelatedItemForm]:
        return [form for form in self.forms if form.has_changed() and form.cleaned_data]

    def to_inputs(self) -> list[RelatedItemInput]:
        return [form.to_input() for form in self.filled_forms()]


RelatedItemFormSet = forms.formset_factory(
    RelatedItemForm,
    formset=BaseRelatedItemFormSet,
    extra=1,
    max_num=validators.RELATED_ITEMS_MAX,
    validate_max=True,
    # Above max_num so that too many rows is reported, never silently truncated.
    absolute_max=validators.RELATED_ITEMS_MAX + 50,
)
RelatedItemFormSet.default_error_messages = {
    **forms.BaseFormSet.default_error_messages,
    "too_many_forms": validators.MESSAGES["too_many_items"].format(limit=validators.RELATED_ITEMS_MAX),
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
    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), *Declaration.State.choices], widget=FlatSelect
    )
    plan = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        widget=FlatSelect,
        label="Response plan",
        error_messages={"invalid_choice": "That response plan does not exist; choose one from the list."},
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any impact"), *((str(value), f"{value} – {label}") for value, label in Impact.choices)],
        help_text="The impact AWS was asked for: the declarer's, or the plan's when they left it empty.",
        widget=FlatSelect,
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
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=FlatSelect)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # One query: the same list checks the chosen plan and renders the options.
        self.fields["plan"].choices = [("", "Any response plan"), *selectors.response_plan_choices()]

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
        return HistoryFilters(
            state=valid.get("state") or "",
            response_plan_id=valid.get("plan"),
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


# --- API tokens ----------------------------------------------------------------------------------------


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


# --- Prefill by URL --------------------------------------------------------------------------------------


def _shown(text: str, limit: int) -> str:
    """A value from the address, quoted back to the person: shortened, control characters shown as �."""
    return validators.CONTROL_CHARACTERS_RE.sub("\ufffd", text[:limit])


def declaration_initial_from_query(params, *, user) -> tuple[dict, list[str]]:
    """Initial values from `/declare/?plan=…&title=…&impact=…` (runbooks, bookmarks), and a note for each value
    that could not be used. The plan may be named by its AWS name or its portal number."""
    initial: dict = {}
    notes: list[str] = []
    reference = (params.get("plan") or params.get("response_plan") or "").strip()
    plan = None
    if reference:
        plan = selectors.response_plan_find_for(user=user, reference=reference)
        if plan is None:
            notes.append(f"The response plan “{_shown(reference, 100)}” is not available to you; choose one below.")
        else:
            initial["response_plan"] = plan.pk
    title = params.get("title")
    if title is not None:
        title = title.strip()
        try:
            validators.reject_control_characters(title)
            if len(title) > validators.TITLE_MAX_LENGTH:
                raise ValidationError(
                    TITLE_TOO_LONG % {"limit_value": validators.TITLE_MAX_LENGTH, "show_value": len(title)}
                )
        except ValidationError as exc:
            notes.append(f"The title in the link was not used: {exc.messages[0]}")
        else:
            initial["title"] = title
    impact = params.get("impact")
    if impact not in (None, ""):
        if impact.strip() in {str(choice.value) for choice in Impact}:
            initial["impact"] = int(impact)
        else:
            notes.append(
                f"The impact “{_shown(impact, 20)}” in the link was not used: choose one from 1 (critical) to 5 (no "
                "impact)."
            )
    if plan is not None:
        # What the person did not set comes from the plan, shown as defaults they can overwrite.
        initial.setdefault("title", plan.template_title)
        initial.setdefault("impact", plan.template_impact)
    return initial, notes


def declaration_fingerprint(form: DeclarationForm, formset: BaseRelatedItemFormSet) -> str:
    """A digest of what was asked for, so that a reused idempotency key with other values is refused, not
    answered with an unrelated declaration."""
    data = form.cleaned_data
    items = []
    for item_form in formset.filled_forms():
        cleaned = item_form.cleaned_data
        upload = cleaned.get("file")
        items.append(
            [cleaned["kind"], cleaned.get("value", ""), cleaned.get("title", ""), upload and [upload.name, upload.size]]
        )
    payload = [data["response_plan"].pk, data["title"], data["impact"], items]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
