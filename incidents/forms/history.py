"""The history's filters and the summary's period, read from the URL."""

from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import validators
from ..models import Declaration, Impact
from ..selectors.history import DEFAULT_SORT, DRILLS_EXCLUDE, DRILLS_INCLUDE, DRILLS_ONLY, HistoryFilters
from ..selectors.plans import response_plan_choices

SORT_CHOICES = [
    ("-created", "Newest first"),
    ("created", "Oldest first"),
    ("impact", "Most severe first"),
    ("-impact", "Least severe first"),
    ("state", "State (A–Z)"),
    ("-state", "State (Z–A)"),
]

DRILL_CHOICES = [
    (DRILLS_EXCLUDE, "Leave out drills"),
    (DRILLS_INCLUDE, "Include drills"),
    (DRILLS_ONLY, "Only drills"),
]

SEARCH_MIN_LENGTH = 3


def date_field(*, label: str) -> forms.DateField:
    """A day in the address: within the days a declaration can have been made on (validators.FILTER_DATE_*)."""
    bounds = {"min": validators.FILTER_DATE_EARLIEST.isoformat(), "max": validators.FILTER_DATE_LATEST.isoformat()}
    return forms.DateField(
        required=False,
        label=label,
        validators=validators.FILTER_DATE_VALIDATORS,
        widget=forms.DateInput(attrs={"type": "date", **bounds}),
    )


class HistoryFilterForm(forms.Form):
    """The history's filters; they live in the URL, so a filtered view can be bookmarked and shared."""

    q = forms.CharField(required=False, max_length=200, label="Title contains", strip=True)
    state = forms.ChoiceField(
        required=False, choices=[("", "Any state"), *Declaration.State.choices], widget=forms.Select
    )
    plan = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        widget=forms.Select,
        label="Response plan",
        error_messages={"invalid_choice": "That response plan does not exist; choose one from the list."},
    )
    impact = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "Any impact"), *((str(value), f"{value} – {label}") for value, label in Impact.choices)],
        help_text="The impact AWS was asked for: the declarer's, or the plan's when they left it empty.",
        widget=forms.Select,
    )
    declared_by = forms.CharField(
        required=False,
        max_length=150,
        label="Declared by",
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "username", "autocomplete": "off"}),
    )
    aws_status = forms.ChoiceField(
        required=False,
        label="AWS status",
        choices=[("", "Any AWS status"), *Declaration.AwsStatus.choices],
        widget=forms.Select,
    )
    drills = forms.ChoiceField(required=False, label="Drills", choices=DRILL_CHOICES, widget=forms.Select)
    date_from = date_field(label="From")
    date_to = date_field(label="To")
    sort = forms.ChoiceField(required=False, choices=SORT_CHOICES, widget=forms.Select)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # One query: the same list checks the chosen plan and renders the options (only plans `user` may know of).
        plans = cast(forms.TypedChoiceField, self.fields["plan"])
        self.plan_choices = response_plan_choices(user=user)
        plans.choices = [("", "Any response plan"), *self.plan_choices]

    def clean_q(self) -> str:
        search = self.cleaned_data["q"]
        if search and len(search) < SEARCH_MIN_LENGTH:
            raise ValidationError(f"Search for at least {SEARCH_MIN_LENGTH} characters of the title.")
        return search

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
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
            aws_status=valid.get("aws_status") or "",
            drills=valid.get("drills") or DRILLS_EXCLUDE,
            sort=valid.get("sort") or DEFAULT_SORT,
        )


class SummaryRangeForm(forms.Form):
    date_from = date_field(label="From")
    date_to = date_field(label="To")
    drills = forms.BooleanField(required=False, label="Include drills")

    MAX_DAYS = 366 * 2

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        start, end = cleaned.get("date_from"), cleaned.get("date_to") or timezone.localdate()
        if start:
            if start > end:
                self.add_error("date_to", "The end date is before the start date.")
            elif (end - start).days >= self.MAX_DAYS:
                self.add_error("date_from", "Choose at most two years at a time.")
        return cleaned
