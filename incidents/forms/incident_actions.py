"""The forms of the declaration page that act on its started incident: a note, more related items, a new title /
impact / summary, resolving. Each carries an idempotency key, so that sending one twice queues one action."""

import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .. import validators
from ..models import RelatedItem
from ..services.attachments import RelatedItemInput
from .declare import TITLE_TOO_LONG, impact_choices


class ActionForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    # The page holds all the forms at once: each field's id is its form's own.
    id_prefix = "action"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.id_prefix}-%s")
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)

    def clean_idempotency_key(self) -> str:
        try:
            return uuid.UUID(self.cleaned_data["idempotency_key"]).hex
        except ValueError:
            raise ValidationError("This form is damaged; reload the page and submit again.") from None

    def key_for(self, user) -> str:
        """The stored key: the form's own, per person."""
        return f"form:{user.pk}:{self.cleaned_data['idempotency_key']}"


class NoteForm(ActionForm):
    id_prefix = "note"
    text = forms.CharField(
        label="Note",
        strip=False,
        validators=[validators.validate_note],
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": validators.NOTE_MAX_LENGTH}),
        help_text="Added to the incident's timeline with your name, e.g. “Rolled back the 14:02 deploy”.",
        error_messages={"required": "Write the note."},
    )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None) -> list:
        files = data if isinstance(data, list | tuple) else [data] if data else []
        return [super(MultipleFileField, self).clean(file, initial) for file in files]


def item_from_line(line: str) -> RelatedItemInput:
    """“Dashboard https://grafana.example.com/d/1” → a link titled “Dashboard”; a value starting with arn: is an AWS
    resource, anything else a link (checked as one)."""
    *title, value = line.split()
    kind = RelatedItem.Kind.RESOURCE if value.lower().startswith("arn:") else RelatedItem.Kind.LINK
    return RelatedItemInput(kind=kind, value=value, title=" ".join(title))


class RelatedItemsForm(ActionForm):
    id_prefix = "items"
    links = forms.CharField(
        label="Links and AWS resource ARNs",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="One per line; words before the link or ARN become its title, e.g. “Checkout errors "
        "https://grafana.example.com/d/checkout”.",
    )
    uploads = MultipleFileField(label="Files", required=False, allow_empty_file=True)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        items: list[RelatedItemInput] = []
        errors: list[str] = []
        lines = [line.strip() for line in (cleaned.get("links") or "").splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            item = item_from_line(line)
            try:
                validators.validate_related_item(kind=item.kind, value=item.value, title=item.title)
            except ValidationError as exc:
                errors.append(f"Line {number}: {' '.join(exc.messages)}")
            items.append(item)
        if errors:
            self.add_error("links", errors)
        uploads = cleaned.get("uploads") or []
        for upload in uploads:
            try:
                validators.validate_related_item(kind=RelatedItem.Kind.FILE, upload=upload)
            except ValidationError as exc:
                self.add_error("uploads", exc.messages)
            items.append(RelatedItemInput(kind=RelatedItem.Kind.FILE, upload=upload))
        if len(uploads) > settings.PORTAL_MAX_FILES:
            self.add_error(
                "uploads",
                validators.MESSAGES["too_many_files"].format(limit=settings.PORTAL_MAX_FILES, count=len(uploads)),
            )
        if len(items) > validators.RELATED_ITEMS_MAX:
            self.add_error("links", validators.MESSAGES["too_many_items"].format(limit=validators.RELATED_ITEMS_MAX))
        if not items and not self.errors:
            self.add_error("links", "Add at least one link, ARN or file.")
        cleaned["items"] = items
        return cleaned


class IncidentUpdateForm(ActionForm):
    id_prefix = "update"
    title = forms.CharField(
        required=False,
        max_length=validators.TITLE_MAX_LENGTH,
        validators=[validators.reject_control_characters],
        error_messages={"max_length": TITLE_TOO_LONG},
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the title.",
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=impact_choices,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose an impact from 1 (critical) to 5 (no impact)."},
    )
    summary = forms.CharField(
        required=False,
        strip=False,
        validators=[validators.validate_summary],
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": validators.SUMMARY_MAX_LENGTH}),
        help_text="What responders should know now; replaces the summary. Leave empty to keep it.",
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if not self.errors and not (
            (cleaned.get("title") or "").strip() or cleaned.get("impact") or (cleaned.get("summary") or "").strip()
        ):
            raise ValidationError("Change at least one of the title, the impact or the summary.")
        return cleaned


class ResolveForm(ActionForm):
    id_prefix = "resolve"
    note = forms.CharField(
        label="Closing note",
        strip=False,
        validators=[validators.validate_note],
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": validators.NOTE_MAX_LENGTH}),
        help_text="How it ended, e.g. “Fixed by rolling back; customers recovered at 14:40”. Goes on the timeline.",
        error_messages={"required": "Write a closing note: what ended the incident."},
    )
