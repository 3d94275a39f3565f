"""Input checks for every interface: the declare form, the API's StartIncident request, the API token form.

Every rule is checked here, at the field, before anything is stored or sent.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.utils import timezone

from . import roles, selectors, validators
from .models import IMPACT_DESCRIPTIONS, Declaration, Impact, RelatedItem, ResponsePlan
from .selectors import DEFAULT_SORT, HistoryFilters
from .services import RelatedItemInput

# Django's max_length message, worded as the browser's check words it.
TITLE_TOO_LONG = validators.MESSAGES["title_too_long"].format(limit="%(limit_value)d", length="%(show_value)d")


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
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *Declaration.State.choices])
    plan = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
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


# --- The API's StartIncident request -------------------------------------------------------------------

# The item types a script may send, and the value member each one carries. Files need the web form (upload).
API_RELATED_ITEM_TYPES = {
    "OTHER": (RelatedItem.Kind.LINK, "url"),
    "INVOLVED_RESOURCE": (RelatedItem.Kind.RESOURCE, "arn"),
}
ITEM_TYPE_NOT_SUPPORTED = (
    "Send OTHER (a link, in value.url) or INVOLVED_RESOURCE (an AWS resource, in value.arn); "
    "files can be attached in the web form only."
)
TIMESTAMP_FORMAT = "Give an ISO 8601 date and time with a time zone, such as 2026-11-29T16:30:00Z."
TRIGGER_TIMESTAMP_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# Senders' clocks drift; a trigger a little in the future is plausible, one days ahead is a mistake.
TRIGGER_TIMESTAMP_MAX_SKEW = timedelta(days=1)


@dataclass(frozen=True)
class StartIncidentInput:
    response_plan: ResponsePlan
    title: str
    impact: int | None
    related_items: list[RelatedItemInput]
    trigger_details: dict[str, str] | None
    # The caller's clientToken / Idempotency-Key, scoped to the caller so that two callers never collide.
    idempotency_key: str | None
    fingerprint: str


class StartIncidentRequestForm:
    """A decoded JSON StartIncident request, checked with the declare form's own fields, rules and messages.

    Used like a Django form: `is_valid()`, then `errors` (one message per field path, such as
    `relatedItems[2].identifier.value.url`) or `cleaned`. `null` means the same as leaving an optional field out.
    """

    FIELDS = ("responsePlanArn", "title", "impact", "relatedItems", "clientToken", "triggerDetails")
    TRIGGER_FIELDS = ("source", "timestamp", "rawData", "triggerArn")

    def __init__(self, data: Any, *, user, idempotency_header: str | None = None):
        self.data = data
        self.user = user
        self.idempotency_header = idempotency_header
        self.errors: dict[str, str] = {}
        self.cleaned: StartIncidentInput | None = None

    def is_valid(self) -> bool:
        if self.cleaned is None and not self.errors:
            self._clean()
        return not self.errors

    # Structure ---------------------------------------------------------------------------------------

    def _error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def _object(self, value: Any, path: str, *, allowed: tuple[str, ...], required: tuple[str, ...] = ()):
        if not isinstance(value, dict):
            self._error(path or "body", "Must be a JSON object.")
            return None
        for key in value:
            if key not in allowed:
                self._error(_join(path, key), f"Unknown field. Allowed here: {', '.join(allowed)}.")
        for key in required:
            if value.get(key) is None:
                self._error(_join(path, key), "This field is required.")
        return value

    def _string(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str):
            self._error(path, "Must be a string.")
            return None
        if "\x00" in value:
            # No field may hold one (PostgreSQL's text cannot), free text such as rawData included.
            self._error(path, "Null characters are not allowed.")
            return None
        return value

    def _check(self, check, value: Any, path: str) -> Any:
        """Run a shared validator or a declare-form field's `clean`; on failure, record its message at `path`."""
        try:
            result = check(value)
        except ValidationError as exc:
            self._error(path, " ".join(exc.messages))
            return None
        return value if result is None else result

    # Fields ------------------------------------------------------------------------------------------

    def _clean(self) -> None:
        data = self._object(self.data, "", allowed=self.FIELDS, required=("responsePlanArn",))
        if data is None:
            return
        plan = self._clean_plan(data.get("responsePlanArn"))
        title = self._clean_title(data.get("title"))
        impact = self._clean_impact(data.get("impact"))
        items = self._clean_items(data.get("relatedItems"))
        trigger = self._clean_trigger(data.get("triggerDetails"))
        key = self._clean_idempotency_key(data.get("clientToken"))
        if self.errors or plan is None:
            return
        canonical = {
            "responsePlanArn": plan.arn,
            "title": title,
            "impact": impact,
            "relatedItems": [[item.kind, item.title, item.value] for item in items],
            "triggerDetails": trigger,
        }
        fingerprint = hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()
        self.cleaned = StartIncidentInput(
            response_plan=plan,
            title=title,
            impact=impact,
            related_items=items,
            trigger_details=trigger,
            idempotency_key=key,
            fingerprint=fingerprint,
        )

    def _clean_plan(self, value: Any) -> ResponsePlan | None:
        if value is None or (arn := self._string(value, "responsePlanArn")) is None:
            return None
        if self._check(validators.validate_response_plan_arn, arn, "responsePlanArn") is None:
            return None
        plan = selectors.response_plans_available_to(user=self.user).filter(arn=arn).first()
        if plan is None:
            self._error(
                "responsePlanArn",
                "No response plan with this ARN is available to you (it may be hidden, deleted in AWS or not open "
                "to your team); GET /api/responsePlans lists the ones you may use.",
            )
        return plan

    def _clean_title(self, value: Any) -> str:
        if value is None or (title := self._string(value, "title")) is None:
            return ""
        return self._check(DeclarationForm.base_fields["title"].clean, title, "title") or ""

    def _clean_impact(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self._error("impact", "Must be a whole number from 1 (critical) to 5 (no impact).")
            return None
        return self._check(DeclarationForm.base_fields["impact"].clean, str(value), "impact")

    def _clean_items(self, value: Any) -> list[RelatedItemInput]:
        if value is None:
            return []
        if not isinstance(value, list):
            self._error("relatedItems", "Must be a list of related items.")
            return []
        if len(value) > validators.RELATED_ITEMS_MAX:
            self._error("relatedItems", RelatedItemFormSet.default_error_messages["too_many_forms"])
            return []
        items = []
        for index, raw in enumerate(value):
            item = self._clean_item(raw, f"relatedItems[{index}]")
            if item is not None:
                items.append(item)
        return items

    def _clean_item(self, raw: Any, path: str) -> RelatedItemInput | None:
        item = self._object(raw, path, allowed=("identifier", "title", "generatedId"), required=("identifier",))
        if item is None:
            return None
        if "generatedId" in item:
            self._error(f"{path}.generatedId", "Incident Manager assigns generatedId itself; leave it out.")
        title = ""
        if item.get("title") is not None and (text := self._string(item["title"], f"{path}.title")) is not None:
            title = self._check(RelatedItemForm.base_fields["title"].clean, text, f"{path}.title") or ""
        identifier = item.get("identifier")
        if identifier is None:
            return None
        path = f"{path}.identifier"
        identifier = self._object(identifier, path, allowed=("type", "value"), required=("type", "value"))
        if identifier is None or identifier.get("type") is None:
            return None
        item_type = self._string(identifier["type"], f"{path}.type")
        if item_type is None:
            return None
        if item_type not in API_RELATED_ITEM_TYPES:
            self._error(f"{path}.type", f"“{item_type}” cannot be sent here. {ITEM_TYPE_NOT_SUPPORTED}")
            return None
        kind, member = API_RELATED_ITEM_TYPES[item_type]
        value = identifier.get("value")
        if value is None or self._object(value, f"{path}.value", allowed=(member,), required=(member,)) is None:
            return None
        member_path = f"{path}.value.{member}"
        if value.get(member) is None or (text := self._string(value[member], member_path)) is None:
            return None
        text = text.strip()
        if not text:
            self._error(member_path, "This field is required.")
            return None
        try:
            validators.validate_related_item(kind=kind, value=text, title=title)
        except ValidationError as exc:
            for part, errors in exc.error_dict.items():
                self._error(
                    f"{path.removesuffix('.identifier')}.title" if part == "title" else member_path,
                    " ".join(message for error in errors for message in error.messages),
                )
            return None
        return RelatedItemInput(kind=kind, title=title, value=text)

    def _clean_trigger(self, value: Any) -> dict[str, str] | None:
        if value is None:
            return None
        path = "triggerDetails"
        trigger = self._object(value, path, allowed=self.TRIGGER_FIELDS, required=("source", "timestamp"))
        if trigger is None:
            return None
        cleaned: dict[str, str] = {}
        checks = {
            "source": validators.validate_trigger_source,
            "timestamp": _validate_trigger_timestamp,
            "rawData": validators.validate_trigger_raw_data,
            "triggerArn": validators.validate_trigger_arn,
        }
        for name, check in checks.items():
            if trigger.get(name) is None or (text := self._string(trigger[name], f"{path}.{name}")) is None:
                continue
            result = self._check(check, text, f"{path}.{name}")
            if result is not None:
                cleaned[name] = result
        return cleaned

    def _clean_idempotency_key(self, body_value: Any) -> str | None:
        body = header = None
        if body_value is not None and (body := self._string(body_value, "clientToken")) is not None:
            body = self._check(_validate_idempotency_key, body, "clientToken")
        if self.idempotency_header is not None:
            header = self._check(_validate_idempotency_key, self.idempotency_header, "Idempotency-Key")
        if body and header and body != header:
            self._error(
                "clientToken",
                "The Idempotency-Key header and clientToken differ; send one of them, or the same value in both.",
            )
        key = body or header
        if not key:
            return None
        # Keys are unique across callers in the database, so each is stored under its caller's id.
        return f"api:{self.user.pk}:{hashlib.sha256(key.encode()).hexdigest()}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate_idempotency_key(value: str) -> None:
    limit = validators.CLIENT_TOKEN_MAX_LENGTH
    if not 1 <= len(value) <= limit:
        raise ValidationError(f"Give 1 to {limit} characters, or leave it out (it has {len(value)}).")
    if not value.isascii() or not value.isprintable():
        raise ValidationError("Use printable ASCII characters only, such as a UUID.")


def _validate_trigger_timestamp(value: str) -> str:
    """The time in UTC (ISO 8601), as stored; RFC 3339 allows a lower-case t and z."""
    try:
        moment = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        raise ValidationError(TIMESTAMP_FORMAT) from None
    if moment.tzinfo is None or "T" not in value.upper():
        raise ValidationError(TIMESTAMP_FORMAT)
    moment = moment.astimezone(UTC)
    if moment < TRIGGER_TIMESTAMP_EARLIEST:
        raise ValidationError("The trigger's time cannot be before 1970.")
    if moment > timezone.now() + TRIGGER_TIMESTAMP_MAX_SKEW:
        raise ValidationError("The trigger's time is more than a day in the future; check the sender's clock.")
    return moment.isoformat()


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
