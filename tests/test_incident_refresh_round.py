"""Beat's round over the open incidents: which it queues for a read, and in which order."""

import datetime as dt

import pytest
from django.utils import timezone

from incidents.models import Declaration, IncidentSnapshot
from incidents.services.incident_refresh import incidents_refresh_due
from tests.helpers import make_declaration

pytestmark = pytest.mark.django_db


def test_beats_round_takes_the_longest_unread_open_incidents_first(support_user, plans, settings):
    """Never read first, then by the last attempt, a read or a failed one; resolved ones and those tried within
    PORTAL_INCIDENT_REFRESH_MAX_AGE wait. (The budget itself: tests/test_incident_refresh.py.)"""
    settings.PORTAL_INCIDENT_REFRESH_MAX_AGE = 120
    now = timezone.now()

    def started(name, **fields):
        return make_declaration(
            declared_by=support_user,
            plan=plans["website-outage"],
            state=Declaration.State.STARTED,
            incident_record_arn=f"arn:aws:ssm-incidents::123456789012:incident-record/website-outage/{name}",
            **fields,
        )

    never_read = started("never")
    read_long_ago, read_a_while_ago = started("long"), started("while")
    failed_just_now, resolved = started("failed"), started("resolved", aws_status="RESOLVED")
    IncidentSnapshot.objects.create(declaration=read_long_ago, read_at=now - dt.timedelta(minutes=10))
    IncidentSnapshot.objects.create(declaration=read_a_while_ago, read_at=now - dt.timedelta(minutes=5))
    IncidentSnapshot.objects.create(
        declaration=failed_just_now, read_at=now - dt.timedelta(minutes=30), failed_at=now - dt.timedelta(seconds=30)
    )
    IncidentSnapshot.objects.create(declaration=resolved, read_at=now - dt.timedelta(hours=1))

    assert incidents_refresh_due() == [never_read.pk, read_long_ago.pk, read_a_while_ago.pk]
    assert incidents_refresh_due() == []  # asked for: not twice
