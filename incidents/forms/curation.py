"""An admin's curation of a response plan."""

from django import forms
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from .. import validators
from ..models import ResponsePlan
from ..selectors.impacts import ImpactLevelInfo
from ..services.impacts import EXAMPLE_MAX_LENGTH


class ResponsePlanCurationForm(forms.Form):
    is_visible = forms.BooleanField(required=False, label="Shown to people declaring")
    is_drill = forms.BooleanField(
        required=False,
        label="Drill plan",
        help_text="Offered only when someone declares a drill (“This is a drill”), and no longer for real incidents.",
    )
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
                "is_drill": plan.is_drill,
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


class ImpactExamplesForm(forms.Form):
    """One example per impact level (example_1 … example_5), each beside the level's meaning."""

    def __init__(self, *args, levels: list[ImpactLevelInfo], **kwargs):
        super().__init__(*args, **kwargs)
        self.levels = levels
        for level in levels:
            self.fields[f"example_{level.value}"] = forms.CharField(
                required=False,
                initial=level.example,
                max_length=EXAMPLE_MAX_LENGTH,
                validators=[validators.reject_control_characters],
                label=f"{level.value} – {level.label}",
                help_text=f"{level.description} Leave empty to show no example.",
                error_messages={
                    "max_length": "An example can be at most %(limit_value)d characters (it has %(show_value)d)."
                },
            )

    def examples(self) -> dict[int, str]:
        return {level.value: self.cleaned_data[f"example_{level.value}"] for level in self.levels}
