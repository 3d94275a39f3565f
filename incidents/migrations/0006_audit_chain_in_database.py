"""Audit events get a content hash of their own, and on PostgreSQL the database links each one into the chain.

Before: hash = SHA-256(content including previous_hash), linked by the application after a round trip for the
advisory lock and another for the chain's head. After: content_hash = SHA-256(content), hash =
SHA-256(previous_hash + content_hash), linked by a BEFORE INSERT trigger in the same round trip as the insert.
Existing events are re-linked under the new formula, but only after their chain has been verified under the old
one: a trail that was tampered with is refused, not laundered.
"""

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import migrations, models

GENESIS_HASH = "0" * 64
TABLE = "incidents_auditevent"
APPEND_ONLY_TRIGGER = "incidents_auditevent_append_only"

CHAIN_SQL = """
CREATE OR REPLACE FUNCTION incidents_auditevent_chain() RETURNS trigger AS $$
DECLARE
    head varchar(64);
BEGIN
    -- One append at a time until the inserting transaction ends: two events must never chain to the same head.
    PERFORM pg_advisory_xact_lock(1096107081);
    -- The id is drawn under the lock, so that id order is chain order (verify_audit walks the chain by id); the
    -- value the column default drew before the trigger ran is left unused.
    NEW.id := nextval(pg_get_serial_sequence('incidents_auditevent', 'id'));
    -- A volatile function's query takes a fresh snapshot: it sees the head the previous lock holder committed.
    SELECT hash INTO head FROM incidents_auditevent ORDER BY id DESC LIMIT 1;
    NEW.previous_hash := COALESCE(head, repeat('0', 64));
    NEW.hash := encode(sha256(convert_to(NEW.previous_hash || NEW.content_hash, 'UTF8')), 'hex');
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER incidents_auditevent_chain
    BEFORE INSERT ON incidents_auditevent
    FOR EACH ROW EXECUTE FUNCTION incidents_auditevent_chain();
"""
DROP_CHAIN_SQL = """
DROP TRIGGER IF EXISTS incidents_auditevent_chain ON incidents_auditevent;
DROP FUNCTION IF EXISTS incidents_auditevent_chain();
"""


def _content(event) -> dict:
    return {
        "declaration": event.declaration_id,
        "response_plan": event.response_plan_id,
        "actor": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "details": event.details,
        "ip_address": event.ip_address,
        "created_at": event.created_at.isoformat(),
    }


def _sha256(content: dict) -> str:
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _old_hash(event, previous_hash: str) -> str:
    return _sha256({"previous_hash": previous_hash, **_content(event)})


def _new_hash(event, previous_hash: str) -> tuple[str, str]:
    content_hash = _sha256(_content(event))
    return content_hash, hashlib.sha256((previous_hash + content_hash).encode()).hexdigest()


def _relink(apps, schema_editor, *, verify, link) -> None:
    """Verify every event under one formula, then rewrite the chain under the other, in id order."""
    AuditEvent = apps.get_model("incidents", "AuditEvent")
    events = AuditEvent.objects.order_by("id")
    previous = GENESIS_HASH
    for event in events.iterator(chunk_size=2000):
        if event.previous_hash != previous or not verify(event):
            raise RuntimeError(
                f"The audit trail is broken at event #{event.pk} (run `manage.py verify_audit` before this "
                "migration); it is not re-linked, so that the break stays visible."
            )
        previous = event.hash
    postgresql = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        if postgresql:
            # ALTER TABLE refuses while deferred foreign-key checks are pending in the transaction.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER {APPEND_ONLY_TRIGGER}")
        previous = GENESIS_HASH
        batch: list[tuple] = []
        for event in events.iterator(chunk_size=2000):
            content_hash, event_hash = link(event, previous)
            batch.append((content_hash, previous, event_hash, event.pk))
            previous = event_hash
            if len(batch) >= 2000:
                _write(cursor, batch)
        _write(cursor, batch)
        if postgresql:
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER {APPEND_ONLY_TRIGGER}")


def _write(cursor, batch: list[tuple]) -> None:
    cursor.executemany(
        "UPDATE incidents_auditevent SET content_hash = %s, previous_hash = %s, hash = %s WHERE id = %s", batch
    )
    batch.clear()


def forwards(apps, schema_editor):
    _relink(
        apps,
        schema_editor,
        verify=lambda event: event.hash == _old_hash(event, event.previous_hash),
        link=_new_hash,
    )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CHAIN_SQL, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_CHAIN_SQL, params=None)
    _relink(
        apps,
        schema_editor,
        verify=lambda event: (event.content_hash, event.hash) == _new_hash(event, event.previous_hash),
        link=lambda event, previous: ("", _old_hash(event, previous)),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0005_attachment_state"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="content_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, backwards),
    ]
