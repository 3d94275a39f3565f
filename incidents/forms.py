"""The declare form: every rule is checked here, at the field, before anything is stored or sent."""

import uuid

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from . import selectors, validators
from .models import IMPACT_DESCRIPTIONS, Impact, RelatedItem, ResponsePlan
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
