"""PostgreSQL connections keep the statements they prepare (settings: POSTGRESQL_OPTIONS); this keeps them safe
across a migration.

A migration that changes what a prepared statement returns (a column's type or length) makes PostgreSQL refuse to
run it again: "cached plan must not change result type" (SQLSTATE 0A000), on every later use in that connection.
Processes still running the release before the migration would fail those queries until restarted. Here such a
connection forgets its prepared statements; outside a transaction the statement is run again at once (it was
refused before running, so nothing ran twice), inside one the transaction fails and its rollback makes psycopg
forget them, so only that request or task fails. Installed by the app's ready() through Django's database
instrumentation (execute wrappers).
"""

from typing import Any

from django.db import NotSupportedError
from django.db.backends.signals import connection_created

STALE_PLAN = "0A000"  # feature_not_supported: how PostgreSQL refuses a prepared statement whose result changed


def prepare_again_after_schema_change(execute, sql, params, many, context: dict[str, Any]):
    try:
        return execute(sql, params, many, context)
    except NotSupportedError as exc:
        connection = context["connection"]
        if getattr(exc.__cause__, "sqlstate", None) != STALE_PLAN or connection.in_atomic_block:
            raise
        # psycopg empties its cache of prepared statements when it sees this command succeed.
        with connection.connection.cursor() as cursor:
            cursor.execute("DEALLOCATE ALL")
        return execute(sql, params, many, context)


def _on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor == "postgresql" and prepare_again_after_schema_change not in connection.execute_wrappers:
        connection.execute_wrappers.append(prepare_again_after_schema_change)


def install() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="incidents.prepared_statements")
