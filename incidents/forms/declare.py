"""The declare form: the plan, title and impact, the related items, and prefill by URL."""

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, cast

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .. import validators
from ..models import IMPACT_DESCRIPTIONS, Impact, RelatedItem, ResponsePlan
from ..selectors.plans import response_plan_find_for, response_plans_available_to
from ..services.attachments import RelatedItemInput

# Django's max_length message, worded as the browser's check words it.
TITLE_TOO_LONG = validators.MESSAGES["title_too_long"].format(limit="%(limit_value)d", length="%(show_value)d")


class WallClockField(forms.DateTimeField):
    """A date and time as typed (datetime-local), without a zone: the form places it in the person's zone."""

    input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        # BaseTemporalField's parsing (each input format in turn), but no conversion from the current time zone.
        return forms.fields.BaseTemporalField.to_python(self, str(value).strip())


def impact_choices() -> list[tuple[str, str]]:
    return [
        (str(impact.value), f"{impact.value} – {impact.label}: {IMPACT_DESCRIPTIONS[impact.value]}")
        for impact in Impact
    ]


class DeclarationForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    response_plan = forms.ModelChoiceField(
        queryset=ResponsePlan.objects.none(),  # the plans available to the person (set per form)
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

    # A drill or a real incident: chosen by the page's two modes (links), carried by the form.
    drill = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The browser's IANA zone, set by the page's script; without it, the portal's TIME_ZONE.
    time_zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    impact_started_at = WallClockField(
        required=False,
        label="Impact started at",
        error_messages={"invalid": "Enter a date and a time, such as 2026-12-05 14:02."},
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        plans = cast(forms.ModelChoiceField, self.fields["response_plan"])
        plans.queryset = response_plans_available_to(user=user)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    @property
    def is_drill(self) -> bool:
        """Whether this is a drill, read before (and whatever) the form's cleaning."""
        return bool(self.fields["drill"].to_python(self["drill"].value()))

    @property
    def zone_name(self) -> str:
        """The zone "Impact started at" is read in: the browser's, else the portal's."""
        return validators.person_time_zone(str(self["time_zone"].value() or "")).key

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        plan = cleaned.get("response_plan")
        drill = cleaned.get("drill", False)
        if plan and plan.is_drill != drill:
            self.add_error("response_plan", validators.DRILL_PLAN_ONLY if drill else validators.REAL_PLAN_ONLY)
            plan = None
        wall_clock = cleaned.get("impact_started_at")
        if wall_clock is not None:
            moment = wall_clock.replace(tzinfo=validators.person_time_zone(cleaned.get("time_zone", "")))
            try:
                cleaned["impact_started_at"] = validators.validate_impact_started_at(moment)
            except ValidationError as exc:
                self.add_error("impact_started_at", exc)
        if plan:
            # The plan's own value is not an overwrite: leave it to the plan, as if the field were empty.
            if cleaned.get("title") == plan.template_title:
                cleaned["title"] = ""
            if cleaned.get("impact") == plan.template_impact:
                cleaned["impact"] = None
        # The person's own title only: a plan's that leaves no room is shortened when sent (aws/requests.py).
        if drill:
            try:
                validators.validate_title_length(cleaned.get("title") or "", drill=True)
            except ValidationError as exc:
                self.add_error("title", exc)
        return cleaned

    def clean_idempotency_key(self) -> str:
        key = self.cleaned_data["idempotency_key"]
        try:
            return uuid.UUID(key).hex
        except ValueError:
            raise ValidationError("This form is damaged; reload the page and submit again.") from None


# The kind a row has until someone says otherwise: read from what is typed (validators.related_item_kind_detect).
KIND_DETECTED = ""
# The input of "Attach files": several files at once, each becoming a related item of its own.
ATTACHMENTS_FIELD = "attachments"


class RelatedItemForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[(KIND_DETECTED, "Link or ARN"), *RelatedItem.Kind.choices],
        required=False,
        initial=KIND_DETECTED,
    )
    # Its length limit depends on the kind, so clean() checks it with the kind's own message.
    value = forms.CharField(required=False, label="Link or ARN", strip=True)
    file = forms.FileField(required=False, allow_empty_file=True)
    title = forms.CharField(
        required=False,
        max_length=validators.RELATED_ITEM_TITLE_MAX_LENGTH,
        validators=[validators.reject_control_characters],
        error_messages={"max_length": TITLE_TOO_LONG},
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        kind = cleaned.get("kind")
        if kind is None:
            return cleaned
        if kind == KIND_DETECTED:
            kind = cleaned["kind"] = (
                RelatedItem.Kind.FILE
                if cleaned.get("file")
                else validators.related_item_kind_detect(cleaned.get("value", ""))
            )
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

    def has_changed(self) -> bool:
        # An empty row is unused whether its kind is left to be detected or says "link" (what it said by default).
        changed = set(self.changed_data)
        if self["kind"].value() in (KIND_DETECTED, RelatedItem.Kind.LINK):
            changed.discard("kind")
        return bool(changed)

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


def related_items_with_attachments(data, files):
    """The form's data and files with each file of "Attach files" (chosen several at once, or without JavaScript)
    as one more file row after the others, so that one formset checks, previews and declares every item."""
    attachments = [upload for upload in files.getlist(ATTACHMENTS_FIELD) if upload.name]
    if not attachments:
        return data, files
    data, files = data.copy(), files.copy()
    files.pop(ATTACHMENTS_FIELD, None)
    try:
        rows = max(int(data.get("items-TOTAL_FORMS", 0)), 0)
    except ValueError:
        rows = 0
    for index, upload in enumerate(attachments, start=rows):
        data[f"items-{index}-kind"] = RelatedItem.Kind.FILE
        files[f"items-{index}-file"] = upload
    data["items-TOTAL_FORMS"] = str(rows + len(attachments))
    return data, files


def _shown(text: str, limit: int) -> str:
    """A value from the address, quoted back to the person: shortened, control characters shown as �."""
    return validators.CONTROL_CHARACTERS_RE.sub("\ufffd", text[:limit])


def declaration_initial_from_query(params, *, user) -> tuple[dict, list[str]]:
    """Initial values from `/declare/?plan=…&title=…&impact=…&drill=1` (runbooks, bookmarks), and a note for each
    value that could not be used. The plan may be named by its AWS name or its portal number."""
    initial: dict = {}
    notes: list[str] = []
    reference = (params.get("plan") or params.get("response_plan") or "").strip()
    plan = None
    if reference:
        plan = response_plan_find_for(user=user, reference=reference)
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
    drill = (params.get("drill") or "").strip().lower()
    initial["drill"] = drill in ("1", "true", "on")
    if plan is not None and not drill:
        initial["drill"] = plan.is_drill  # a link to a drill plan opens the page for a drill
    elif plan is not None and plan.is_drill != initial["drill"]:
        notes.append(validators.DRILL_PLAN_ONLY if initial["drill"] else validators.REAL_PLAN_ONLY)
        del initial["response_plan"]
        plan = None
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
    started = data.get("impact_started_at")
    payload = [data["response_plan"].pk, data["title"], data["impact"], items]
    if started or data.get("drill"):
        payload += [started and started.isoformat(), data.get("drill", False)]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
