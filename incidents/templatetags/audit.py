"""The audit trail's details as people read them: a change as "before → after", yes/no, lists joined, and empty
text or a missing value shown as such instead of Python's spelling of it."""

from typing import Any

from django import template

register = template.Library()


@register.filter
def audit_details(details: dict[str, Any]) -> list[tuple[str, str]]:
    """Each detail of an event as (name, text), in the order recorded."""
    return [(name, _change(value)) for name, value in details.items()]


def _change(value: Any) -> str:
    if isinstance(value, dict) and value.keys() == {"from", "to"}:
        return f"{_text(value['from'])} → {_text(value['to'])}"
    return _text(value)


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if value == "":
        return "“”"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{name} {_text(item)}" for name, item in value.items()) or "none"
    return str(value)
