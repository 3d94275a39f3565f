"""The audit trail: every step recorded, chained, and impossible to rewrite quietly."""

import pytest
from django.db import DatabaseError, transaction

from incidents import services
from incidents.models import AuditEvent


@pytest.mark.django_db
def test_each_event_chains_to_the_one_before(plans, support_user):
    services.declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="A")
    services.declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="B")
    events = list(AuditEvent.objects.order_by("id"))
    assert len(events) >= 2
    for previous, event in zip(events, events[1:], strict=False):
        assert event.previous_hash == previous.hash
        assert event.hash == event.content_hash()


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_audit_events(plans, support_user):
    services.declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    event = AuditEvent.objects.filter(action="declaration.queued").get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="declaration.nothing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == "declaration.queued"
