"""Data migrations keep what is already stored meaningful."""

import importlib

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from incidents.selectors.audit import audit_chain_verify
from incidents.services.audit import GENESIS_HASH, audit_record

BEFORE = [("incidents", "0005_attachment_state")]
AFTER = [("incidents", "0006_audit_chain_in_database")]
relink = importlib.import_module("incidents.migrations.0006_audit_chain_in_database")
BEFORE_KEYS = [("incidents", "0008_related_item_order_by_column")]
KEYED = [("incidents", "0010_audit_chain_keyed")]


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


def latest() -> list:
    return MigrationExecutor(connection).loader.graph.leaf_nodes("incidents")


def empty_the_trail() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        # The trail refuses TRUNCATE from 0009 on; the test database's superuser may switch triggers off.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("TRUNCATE incidents_auditevent")


@pytest.fixture
def at_0005():
    apps = migrate(BEFORE)
    yield apps
    empty_the_trail()
    migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_an_existing_trail_is_relinked_and_still_verifies(at_0005):
    old = write_old_trail(at_0005)
    migrate(AFTER)
    migrate(latest())  # to read them with today's model: still verified as they were linked (migration 0009)
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


@pytest.fixture
def at_0008():
    apps = migrate(BEFORE_KEYS)
    yield apps
    empty_the_trail()
    migrate(latest())


@pytest.mark.django_db(transaction=True)
def test_a_trail_the_database_linked_still_verifies_once_the_chain_is_keyed(at_0008, capsys):
    AuditEvent = at_0008.get_model("incidents", "AuditEvent")
    for number in range(3):
        event = AuditEvent(
            actor_label="sam.support",
            action="declaration.queued",
            details={"title": f"Checkout down {number}"},
            created_at=timezone.now(),
        )
        event.content_hash = relink._sha256(relink._content(event))
        event.previous_hash = event.hash = ""  # linked by migration 0006's trigger
        event.save(force_insert=True)
    migrate(KEYED)

    result = audit_chain_verify(genesis_hash=GENESIS_HASH)
    assert result.intact, result.problem
    assert (result.checked, result.legacy) == (3, 3)
    keyed = audit_record(action="test.after_keys")
    assert keyed.key_id == "test"
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "4 events verified" in out and "3 of them linked before keys" in out
