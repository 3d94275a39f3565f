"""`manage.py verify_audit` walks the hash chain: 0 with a summary when intact, 1 naming the first broken link."""

import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from incidents.models import AuditEvent
from incidents.services.declarations import declaration_create

TABLE = AuditEvent._meta.db_table
TRIGGER = "incidents_auditevent_append_only"
CHAIN_TRIGGER = "incidents_auditevent_chain"


@pytest.fixture
def trail(plans, support_user):
    """A few real events after the plans' own."""
    for title in ("A", "B", "C"):
        declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title=title)
    return list(AuditEvent.objects.order_by("id"))


def tamper(sql: str, params=(), *, trigger: str = TRIGGER) -> None:
    """What an attacker with database access would do: switch a trigger off, edit, switch it on.

    Inside the test's transaction, so the table is back as it was afterwards."""
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while deferred foreign-key checks are pending in the transaction: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {trigger}")
        cursor.execute(sql, params)
        cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {trigger}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.mark.django_db
def test_an_intact_trail_verifies_with_a_summary(trail, capsys):
    call_command("verify_audit", chunk_size=2)  # several chunks
    out = capsys.readouterr().out
    assert f"Audit trail intact: {len(trail)} events verified, #{trail[0].pk} to #{trail[-1].pk}" in out
    assert trail[-1].hash in out


@pytest.mark.django_db
def test_an_edited_event_is_named(trail):
    victim = trail[-3]
    tamper("UPDATE incidents_auditevent SET details = %s WHERE id = %s", ['{"title": "innocent"}', victim.pk])
    with pytest.raises(CommandError, match=rf"broken at event #{victim.pk}: its content does not match") as error:
        call_command("verify_audit", chunk_size=2)
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_a_deleted_event_breaks_the_link_of_the_next_one(trail):
    victim, successor = trail[-3], trail[-2]
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=rf"broken at event #{successor.pk}: its previous_hash .* was removed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_a_rewritten_hash_is_named(trail):
    victim = trail[-2]
    tamper("UPDATE incidents_auditevent SET hash = %s WHERE id = %s", ["f" * 64, victim.pk])
    with pytest.raises(CommandError, match=rf"broken at event #{victim.pk}: its hash does not follow"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_an_event_cannot_be_slipped_into_the_past(trail):
    """Whatever place an inserted event claims, the database links it at the head of the chain."""
    claimed = AuditEvent(actor_label="mallory", action="declaration.started", previous_hash=trail[0].hash)
    claimed.content_hash = claimed.compute_content_hash()
    claimed.hash = AuditEvent.chain_hash(trail[0].hash, claimed.content_hash)
    claimed.save(force_insert=True)
    claimed.refresh_from_db()
    assert claimed.previous_hash == trail[-1].hash
    assert claimed.pk > trail[-1].pk


@pytest.mark.django_db
def test_a_forged_event_with_a_recomputed_hash_is_still_caught(trail):
    # The forger switches the chaining trigger off and computes a valid hash for the place they want, but cannot
    # know where the chain continues after the events that follow.
    forged = AuditEvent(actor_label="mallory", action="declaration.started", created_at=timezone.now())
    content_hash = forged.compute_content_hash()
    tamper(
        "INSERT INTO incidents_auditevent (actor_label, action, details, created_at, content_hash, previous_hash, "
        "hash) VALUES (%s, %s, '{}', %s, %s, %s, %s)",
        [
            forged.actor_label,
            forged.action,
            forged.created_at,
            content_hash,
            trail[0].hash,
            AuditEvent.chain_hash(trail[0].hash, content_hash),
        ],
        trigger=CHAIN_TRIGGER,
    )
    forged = AuditEvent.objects.get(actor_label="mallory")
    with pytest.raises(CommandError, match=rf"broken at event #{forged.pk}"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_the_anchor_an_earlier_run_printed_is_confirmed(trail, capsys):
    call_command("verify_audit", anchor=trail[-2].hash.upper())  # as copied from anywhere
    out = capsys.readouterr().out
    assert "Audit trail intact" in out
    assert f"still holds the anchored event #{trail[-2].pk}" in out


@pytest.mark.django_db
def test_events_removed_from_the_end_are_caught_by_the_anchor(trail, capsys):
    # The last event was the head a previous run printed; removing it leaves a chain that still links up.
    tamper("DELETE FROM incidents_auditevent WHERE id = %s", [trail[-1].pk])
    call_command("verify_audit")
    assert "Audit trail intact" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"cut short: the anchored event .* is no longer in the trail") as error:
        call_command("verify_audit", anchor=trail[-1].hash)
    assert error.value.returncode == 1


@pytest.mark.django_db
def test_an_anchor_that_is_not_a_hash_is_refused(trail):
    with pytest.raises(CommandError, match="--anchor takes a hash as this command prints it"):
        call_command("verify_audit", anchor="latest")


@pytest.mark.django_db
def test_an_empty_trail_is_intact(capsys):
    call_command("verify_audit")
    assert "no events yet" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_for_a_shell(plans, support_user):
    """Run as an operator would, in its own process, against a committed tampered table."""
    declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="A")
    env = {"DJANGO_SETTINGS_MODULE": "portal.settings.test", "PATH": "/usr/bin:/bin"}
    db = settings.DATABASES["default"]
    env["DATABASE_URL"] = f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    command = [sys.executable, "manage.py", "verify_audit"]
    ok = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "Audit trail intact" in ok.stdout
    victim = AuditEvent.objects.order_by("id").first()
    tamper("UPDATE incidents_auditevent SET actor_label = 'someone-else' WHERE id = %s", [victim.pk])
    broken = subprocess.run(command, env=env, capture_output=True, text=True, cwd=settings.BASE_DIR, check=False)
    assert broken.returncode == 1
    assert f"broken at event #{victim.pk}" in broken.stderr
