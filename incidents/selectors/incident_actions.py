"""Reads the actions people took on a declaration's incident (services/actions.py writes them)."""

from ..models import Declaration, IncidentAction


def incident_actions_of(*, declaration: Declaration, limit: int = 50) -> list[IncidentAction]:
    """The declaration's actions, newest first, with who asked for each."""
    return list(declaration.actions.select_related("requested_by").order_by("-created_at", "-id")[:limit])


def incident_action_of(*, declaration: Declaration, action_id: int) -> IncidentAction | None:
    return declaration.actions.select_related("requested_by").filter(pk=action_id).first()
