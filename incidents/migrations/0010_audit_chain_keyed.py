"""The audit chain is keyed: the application links each event with an HMAC under a key the database never holds.

Migration 0006 let a PostgreSQL trigger link each event with a plain SHA-256, which anyone who can write the table
can compute too (forged events, a chain re-linked after a deletion). The database cannot compute a keyed link, so
the trigger goes: `services.audit_record` now takes the transaction-scoped advisory lock and reads the head in one
call of `incidents_auditevent_lock_head()`, links the event and inserts it, all before the commit releases the lock.

Existing events keep their links and get the key id "sha256" (a plain SHA-256 link), under which they still verify.
A statement-level trigger refuses TRUNCATE, which the row triggers of migration 0002 never see.
"""

import importlib

from django.db import migrations, models

# The advisory lock of migration 0006's trigger: a process still running the old code lines up with the new one.
LOCK_HEAD_SQL = """
CREATE OR REPLACE FUNCTION incidents_auditevent_lock_head() RETURNS varchar AS $$
DECLARE
    head varchar(64);
BEGIN
    -- One append at a time until the calling transaction ends: two events must never chain to the same head, and
    -- ids drawn under the lock keep id order the chain's order (verify_audit walks it by id).
    PERFORM pg_advisory_xact_lock(1096107081);
    -- A volatile function's query takes a fresh snapshot: it sees the head the previous lock holder committed.
    SELECT hash INTO head FROM incidents_auditevent ORDER BY id DESC LIMIT 1;
    RETURN head;
END;
$$ LANGUAGE plpgsql VOLATILE;
CREATE TRIGGER incidents_auditevent_no_truncate
    BEFORE TRUNCATE ON incidents_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION incidents_auditevent_append_only();
"""
DROP_LOCK_HEAD_SQL = """
DROP TRIGGER IF EXISTS incidents_auditevent_no_truncate ON incidents_auditevent;
DROP FUNCTION IF EXISTS incidents_auditevent_lock_head();
"""
chain_in_database = importlib.import_module("incidents.migrations.0006_audit_chain_in_database")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(chain_in_database.DROP_CHAIN_SQL, params=None)
        schema_editor.execute(LOCK_HEAD_SQL, params=None)


def backwards(apps, schema_editor):
    AuditEvent = apps.get_model("incidents", "AuditEvent")
    if AuditEvent.objects.exclude(key_id="sha256").exists():
        raise RuntimeError(
            "The audit trail holds events linked with a key; without this migration they could never be verified. "
            "Not reversed."
        )
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_LOCK_HEAD_SQL, params=None)
        schema_editor.execute(chain_in_database.CHAIN_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0009_username_case_insensitive"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(default="sha256", max_length=32),
            preserve_default=False,
        ),
        migrations.RunPython(forwards, backwards),
    ]
