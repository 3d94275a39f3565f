"""One choosable response plan on the declare page, written in Python: with 200 plans, the template engine's
per-variable work was most of the page (about 2,600 variable lookups).

Values are escaped with the standard library's html.escape: Django's escape() wraps it in a check for lazy strings
that costs three to four times the escaping itself, for some 2,000 values a page."""

from html import escape

from django import template
from django.utils.safestring import SafeString, mark_safe

from incidents.models import ResponsePlan

register = template.Library()


@register.simple_tag
def plan_option(plan: ResponsePlan, index: int, field_name: str, field_id: str, chosen: str) -> SafeString:
    """The plan's radio button, its name, when to use it and its defaults (which the page's script prefills)."""
    pk, title, impact = int(plan.pk), escape(plan.template_title), int(plan.template_impact)
    field_id = escape(f"{field_id}_{index}")
    checked = " checked" if str(plan.pk) == chosen else ""
    note = plan.when_to_use or plan.template_summary or "No note yet."
    # Every text value below goes through escape(); pk and impact are ints.
    return mark_safe(  # noqa: S308
        '<li class="plan-option">'
        f'<input type="radio" name="{escape(field_name)}" value="{pk}" id="{field_id}"{checked} '
        f'data-default-title="{title}" data-default-impact="{impact}" aria-describedby="plan-{pk}-note">'
        f'<label for="{field_id}"><span class="plan-name">{escape(plan.label)}</span>'
        f'<span class="plan-note" id="plan-{pk}-note"><span class="plan-when">{escape(note)}</span>'
        f'<span class="plan-defaults">Default title: “{title}” · Default impact: '
        f"{escape(plan.template_impact_label)}</span></span>"
        "</label></li>"
    )
