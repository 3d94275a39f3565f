"""The audit trail: every step recorded, chained, and impossible to rewrite quietly."""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import pytest
from django.db import DatabaseError, connection, transaction

from incidents.models import AuditEvent
from incidents.selectors.audit import audit_chain_verify
from incidents.services.audit import GENESIS_HASH, audit_record
from incidents.services.declarations import declaration_create


@pytest.mark.django_db
def test_each_event_chains_to_the_one_before(plans, support_user):
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="A")
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="B")
    events = list(AuditEvent.objects.order_by("id"))
    assert len(events) >= 2
    for previous, event in zip(events, events[1:], strict=False):
        assert event.previous_hash == previous.hash
        assert event.content_hash == event.compute_content_hash()
        assert event.key_id == AuditEvent.signing_key_id() == "test"
        assert event.hash == AuditEvent.chain_hash(event.previous_hash, event.content_hash, event.key_id)


def test_the_link_is_keyed_with_a_secret_the_database_does_not_hold(settings):
    """The same event and place under two keys link differently; without the key nobody can compute the link."""
    previous, content = "a" * 64, "b" * 64
    settings.PORTAL_AUDIT_KEYS = [("k1", "one-secret-of-at-least-32-characters-long")]
    under_k1 = AuditEvent.chain_hash(previous, content, "k1")
    settings.PORTAL_AUDIT_KEYS = [("k1", "another-secret-of-at-least-32-characters")]
    assert AuditEvent.chain_hash(previous, content, "k1") != under_k1
    assert under_k1 != hashlib.sha256((previous + content).encode()).hexdigest()
    with pytest.raises(LookupError):
        AuditEvent.chain_hash(previous, content, "k0")


@pytest.mark.django_db
def test_the_event_in_hand_is_the_event_stored(plans, support_user):
    """What audit_record returns must be the row as stored, its place in the chain included."""
    with transaction.atomic():
        first = audit_record(action="test.first", actor=support_user, details={"n": 1}, ip_address="::1")
        second = audit_record(action="test.second", response_plan=plans["website-outage"])
    for event in (first, second):
        stored = AuditEvent.objects.get(pk=event.pk)
        for field in AuditEvent._meta.concrete_fields:
            assert getattr(event, field.attname) == getattr(stored, field.attname), field.name
    assert second.previous_hash == first.hash
    assert (first.actor_label, first.details, first.ip_address) == (support_user.username, {"n": 1}, "::1")
    assert (second.actor_label, second.response_plan_id) == ("system", plans["website-outage"].pk)


@pytest.mark.django_db
def test_the_database_refuses_to_update_or_delete_audit_events(plans, support_user):
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    event = AuditEvent.objects.filter(action="declaration.queued").get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="declaration.nothing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == "declaration.queued"


@pytest.mark.django_db
@pytest.mark.parametrize("statement", ["TRUNCATE incidents_auditevent", "TRUNCATE incidents_declaration CASCADE"])
def test_the_database_refuses_to_truncate_audit_events(plans, support_user, statement):
    """Row triggers never see a TRUNCATE; a statement trigger does, also when it comes by cascade."""
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    count = AuditEvent.objects.count()
    refused = pytest.raises(DatabaseError, match="append-only: TRUNCATE refused")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE waits for no deferred foreign-key check
        cursor.execute(statement)
    assert AuditEvent.objects.count() == count


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_form_one_unbroken_chain_in_id_order(plans, support_user):
    """Many requests declaring at once: every event links to the one before it by id, none to the same head."""

    def declare(worker: int) -> None:
        try:
            for number in range(8):
                declaration_create(
                    declared_by=support_user, response_plan=plans["website-outage"], title=f"{worker}-{number}"
                )
        finally:
            connection.close()

    # Not handed to the workers: 48 starts would still be running into the next tests.
    with mock.patch("incidents.services.declarations.declaration_dispatch"), ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(declare, range(6)))

    assert AuditEvent.objects.filter(action="declaration.queued").count() == 48
    result = audit_chain_verify(genesis_hash=GENESIS_HASH)
    assert result.intact, result.problem
    assert result.checked == AuditEvent.objects.count()
