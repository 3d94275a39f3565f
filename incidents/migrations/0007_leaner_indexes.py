"""Fewer indexes to write on every declaration and every audit event.

- `AuditEvent.hash` loses its unique index (and PostgreSQL's `_like` twin). Nothing looks an event up by its hash,
  and both indexes were B-trees over random hex as large as the table: at 3 million events (a million
  declarations) they made each append ~10× slower (≈ 200 µs instead of ≈ 20 µs) through random page writes.
- Declarations lose four indexes nothing reads: the single-column ones on `declared_by` and `response_plan` (the
  history's (declarer | plan, created) indexes lead with the same column, and serve the PROTECT checks too) and the
  `_like` indexes PostgreSQL gets for unique text columns (no query does LIKE on a client token or idempotency key).
  They are dropped by name, so that the foreign keys are not dropped and re-validated over the whole table.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FOREIGN_KEY_INDEXES = {
    "incidents_declaration_declared_by_id_8f44d1c3": "declared_by_id",
    "incidents_declaration_response_plan_id_388a9aea": "response_plan_id",
}
LIKE_INDEXES = {  # PostgreSQL only
    "incidents_declaration_client_token_6e3fc9c3_like": "client_token",
    "incidents_declaration_idempotency_key_ea26b0a9_like": "idempotency_key",
}


def drop_unread_indexes(apps, schema_editor):
    for name in [*FOREIGN_KEY_INDEXES, *LIKE_INDEXES]:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def restore_them(apps, schema_editor):
    for name, column in FOREIGN_KEY_INDEXES.items():
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "incidents_declaration" ("{column}")')
    if schema_editor.connection.vendor == "postgresql":
        for name, column in LIKE_INDEXES.items():
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "incidents_declaration" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0006_audit_chain_in_database"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="declaration",
                    name="declared_by",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="declaration",
                    name="response_plan",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="declarations",
                        to="incidents.responseplan",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_unread_indexes, restore_them)],
        ),
    ]
