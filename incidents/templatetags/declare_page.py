"""One choosable response plan on the declare page, written in Python: with 200 plans, the template engine's
per-variable work was most of the page (about 2,600 variable lookups)."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from incidents.models import ResponsePlan

register = template.Library()
CHECKED = mark_safe(" checked")  # noqa: S308 - a constant


@register.simple_tag
def plan_option(plan: ResponsePlan, index: int, field_name: str, field_id: str, chosen: str) -> SafeString:
    """The plan's radio button, its name, when to use it and its defaults (which the page's script prefills)."""
    return format_html(
        '<li class="plan-option">'
        '<input type="radio" name="{name}" value="{pk}" id="{id}"{checked} data-default-title="{title}" '
        'data-default-impact="{impact}" aria-describedby="plan-{pk}-note">'
        '<label for="{id}"><span class="plan-name">{label}</span>'
        '<span class="plan-note" id="plan-{pk}-note"><span class="plan-when">{note}</span>'
        '<span class="plan-defaults">Default title: “{title}” · Default impact: {impact_label}</span></span>'
        "</label></li>",
        name=field_name,
        pk=plan.pk,
        id=f"{field_id}_{index}",
        checked=CHECKED if str(plan.pk) == chosen else "",
        title=plan.template_title,
        impact=plan.template_impact,
        label=plan.label,
        note=plan.when_to_use or plan.template_summary or "No note yet.",
        impact_label=plan.template_impact_label,
    )
