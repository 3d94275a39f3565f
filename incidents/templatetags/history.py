"""One row of the history table, written in Python: fifty rows through the template engine cost a third of the page.

Values are escaped with the standard library's html.escape: Django's escape() wraps it in a check for lazy strings
that costs three to four times the escaping itself, for some 600 values a page."""

from html import escape

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from incidents.models import Declaration

register = template.Library()


@register.simple_tag
def history_row(declaration: Declaration, show_declarer: bool) -> SafeString:
    declared_at = timezone.localtime(declaration.created_at)
    declarer = f"<td>{escape(declaration.declared_by.get_username())}</td>" if show_declarer else ""
    impact = declaration.effective_impact
    # Every value below goes through escape(); the numbers are ints from the database.
    return mark_safe(  # noqa: S308
        "<tr>"
        f'<td class="nowrap"><time datetime="{declared_at.isoformat()}">{declared_at:%Y-%m-%d %H:%M}</time></td>'
        f'<td><a href="{escape(declaration.get_absolute_url())}">{escape(declaration.effective_title)}</a>'
        f' <span class="muted">#{declaration.pk:d}</span></td>'
        f'<td class="nowrap"><span class="impact-badge impact-badge-{impact:d}">{impact:d} – '
        f"{escape(str(declaration.get_effective_impact_display()))}</span></td>"
        f"<td>{escape(declaration.response_plan.label)}</td>"
        f"{declarer}"
        f'<td><span class="state-pill state-pill-{escape(declaration.state)}">'
        f"{escape(str(declaration.get_state_display()))}</span></td>"
        "</tr>"
    )
