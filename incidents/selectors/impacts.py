"""Reads the impact levels: AWS's scale with its meanings and the admins' example for each."""

from typing import NamedTuple

from django.db.models import QuerySet

from ..models import IMPACT_DESCRIPTIONS, IMPACT_EXAMPLES, AuditEvent, Impact, ImpactLevel

# The audit action of a change to the examples (services/impacts.py writes it).
EXAMPLES_CHANGED = "impact_level.examples_changed"


class ImpactLevelInfo(NamedTuple):
    value: int
    label: str
    description: str
    example: str


def impact_levels() -> list[ImpactLevelInfo]:
    """The five levels, most severe first, each with its example: one query. A level without a row (a database
    emptied after migrating, as tests do) keeps the example it was first given; an admin's empty one shows none."""
    examples = {**IMPACT_EXAMPLES, **dict(ImpactLevel.objects.values_list("level", "example"))}
    return [
        ImpactLevelInfo(impact.value, impact.label, IMPACT_DESCRIPTIONS[impact.value], examples[impact.value])
        for impact in Impact
    ]


def impact_levels_audit_trail() -> QuerySet[AuditEvent]:
    """Who changed the examples, newest first."""
    return AuditEvent.objects.filter(action=EXAMPLES_CHANGED).order_by("-id")
