"""Data migrations keep what is already stored meaningful."""

import importlib

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from incidents.selectors.audit import audit_chain_verify
from incidents.services.audit import GENESIS_HASH

BEFORE = [("incidents", "0005_attachment_state")]
AFTER = [("incidents", "0006_audit_chain_in_database")]
relink = importlib.import_module("incidents.migrations.0006_audit_chain_in_database")


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def write_old_trail(apps, count: int = 3) -> list:
    """Events as the portal wrote them before 0006: one hash over the content and the previous hash."""
    AuditEvent = apps.get_model("incidents", "AuditEvent")
    previous, events = GENESIS_HASH, []
    for number in range(count):
        event = AuditEvent(
            actor_label="sam.support",
            action="declaration.queued",
            details={"title": f"Checkout down {number}"},
            ip_address="192.0.2.7",
            created_at=timezone.now(),
            previous_hash=previous,
        )
        event.hash = relink._old_hash(event, previous)
        event.save(force_insert=True)
        previous = event.hash
        events.append(event)
    return events


@pytest.fixture
def at_0005():
    apps = migrate(BEFORE)
    yield apps
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE incidents_auditevent")
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes("incidents"))


@pytest.mark.django_db(transaction=True)
def test_an_existing_trail_is_relinked_and_still_verifies(at_0005):
    old = write_old_trail(at_0005)
    migrate(AFTER)
    result = audit_chain_verify(genesis_hash=GENESIS_HASH)
    assert result.intact, result.problem
    assert (result.checked, result.first_id, result.last_id) == (3, old[0].pk, old[-1].pk)


@pytest.mark.django_db(transaction=True)
def test_a_tampered_trail_is_refused_not_laundered(at_0005):
    old = write_old_trail(at_0005)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE incidents_auditevent DISABLE TRIGGER incidents_auditevent_append_only")
        cursor.execute("UPDATE incidents_auditevent SET actor_label = 'mallory' WHERE id = %s", [old[1].pk])
        cursor.execute("ALTER TABLE incidents_auditevent ENABLE TRIGGER incidents_auditevent_append_only")
    with pytest.raises(RuntimeError, match=rf"broken at event #{old[1].pk}"):
        migrate(AFTER)
