"""Renders the OpenAPI document's `code` spans (CommonMark's backticks) on the reference page."""

import re

from django import template
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()
CODE_SPAN = re.compile(r"`([^`]+)`")


@register.filter
def code_spans(text: str) -> SafeString:
    # Escaped first, so only the <code> tags added here are markup.
    escaped = conditional_escape(text)
    return mark_safe(CODE_SPAN.sub(r"<code>\1</code>", escaped))  # noqa: S308 - built from escaped text
