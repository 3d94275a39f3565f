"""Writes the impact levels' examples, which admins word for the company."""

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from .. import validators
from ..errors import PortalError
from ..models import IMPACT_EXAMPLES, Impact, ImpactLevel
from ..selectors.impacts import EXAMPLES_CHANGED
from .audit import audit_record

EXAMPLE_MAX_LENGTH = ImpactLevel._meta.get_field("example").max_length or 120


def impact_examples_update(*, examples: dict[int, str], actor: User | None, ip_address: str | None = None) -> list[int]:
    """Set the example of each level given (empty: none shown); the levels that changed, audited in one event."""
    cleaned = {}
    for level, example in examples.items():
        if level not in Impact.values:
            raise PortalError(f"There is no impact level {level}; levels go from 1 to 5.", field=f"example_{level}")
        example = example.strip()
        if len(example) > EXAMPLE_MAX_LENGTH:
            raise PortalError(
                f"An example can be at most {EXAMPLE_MAX_LENGTH} characters (it has {len(example)}).",
                field=f"example_{level}",
            )
        try:
            validators.reject_control_characters(example)
        except ValidationError as exc:
            raise PortalError(exc.messages[0], field=f"example_{level}") from None
        cleaned[level] = example
    with transaction.atomic():
        stored = {row.level: row for row in ImpactLevel.objects.select_for_update().filter(level__in=cleaned)}
        diff, changed = {}, []
        for level, example in sorted(cleaned.items()):
            row = stored.get(level)
            previous = row.example if row else IMPACT_EXAMPLES[level]  # what impact_levels() shows without a row
            if previous == example:
                continue
            diff[f"{level} – {Impact(level).label}"] = {"from": previous, "to": example}
            row = row or ImpactLevel(level=level)
            row.example = example
            row.save()
            changed.append(level)
        if diff:
            audit_record(action=EXAMPLES_CHANGED, actor=actor, details=diff, ip_address=ip_address)
    return changed
