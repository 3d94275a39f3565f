"""Reads the actions people took on a declaration's incident (services/actions.py writes them)."""

import datetime as dt

from django.db.models import Q

from ..models import Declaration, IncidentAction


def incident_actions_of(*, declaration: Declaration, limit: int = 50) -> list[IncidentAction]:
    """The declaration's actions, newest first, with who asked for each."""
    return list(declaration.actions.select_related("requested_by").order_by("-created_at", "-id")[:limit])


def incident_action_of(*, declaration: Declaration, action_id: int) -> IncidentAction | None:
    return declaration.actions.select_related("requested_by").filter(pk=action_id).first()


def incident_actions_unread(*, declaration: Declaration, since: dt.datetime | None) -> bool:
    """Whether an action is on its way to AWS or was sent after `since` (the incident's last read, or failed read):
    what the person did is not in the page's AWS section yet (services/action_sending.py asks for the read)."""
    State = IncidentAction.State
    sent = Q(state=State.SENT) if since is None else Q(state=State.SENT, sent_at__gt=since)
    return declaration.actions.filter(Q(state=State.QUEUED) | sent).exists()
