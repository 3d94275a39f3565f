"""PostgreSQL connections keep the statements they prepare (settings: POSTGRESQL_OPTIONS); this keeps them safe
across a migration.

A migration that changes what a prepared statement returns (a column's type or length) makes PostgreSQL refuse to
run it again: "cached plan must not change result type" (SQLSTATE 0A000), on every later use in that connection.
Processes still running the release before the migration would fail those queries until restarted. Here such a
connection forgets its prepared statements; outside a transaction the statement is run again at once (it was
refused before running, so nothing ran twice), inside one the transaction fails and its rollback makes psycopg
forget them, so only that request or task fails.

`compiled()` serves the queries every request runs (the session, the person, the chosen plan): the ORM builds such
a query once per process, and the hot path runs its SQL with `raw()`. `compiled_insert()` does the same for the row
every step of a declaration appends (the audit event).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError, connections
from django.db.backends.signals import connection_created
from django.db.models import Model, QuerySet, sql

STALE_PLAN = "0A000"  # feature_not_supported: how PostgreSQL refuses a prepared statement whose result changed


def prepare_again_after_schema_change(execute, sql, params, many, context):
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
    connection_created.connect(_on_connection_created, dispatch_uid="portal.database.prepare_again")


@dataclass(frozen=True)
class CompiledQuery:
    """SQL the ORM built once, and how to fill in its parameters: the values in place of the placeholders it was
    built with, and the constants some backends bind as parameters too (SQLite: `is_visible = %s`, True)."""

    sql: str
    params: tuple  # for each parameter: ("value", index into the values) or ("constant", the constant)

    def bind(self, values: Sequence) -> list:
        return [values[item] if kind == "value" else item for kind, item in self.params]


def compiled(queryset: QuerySet, placeholders: Sequence) -> CompiledQuery:
    """The SQL the ORM makes of `queryset`, for a caller that keeps it and runs it with `raw()`.

    Building a query costs the ORM several times the CPU of running it. Build `queryset` with distinct
    `placeholders` where the real values go (values no real one can be: a negative id, a word no key has), and run
    `raw(query.sql, query.bind(values))` with the values in the placeholders' order."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    slots = {(type(placeholder), placeholder): index for index, placeholder in enumerate(placeholders)}
    bound = tuple(
        ("value", slots[type(param), param]) if (type(param), param) in slots else ("constant", param)
        for param in params
    )
    missing = set(range(len(placeholders))) - {item for kind, item in bound if kind == "value"}
    if missing:
        raise ImproperlyConfigured(f"The query does not take placeholders {sorted(missing)}: {params!r}.")
    return CompiledQuery(sql, bound)


@dataclass(frozen=True)
class CompiledInsert:
    """An INSERT … RETURNING the ORM built once for a model: `insert(obj)` writes `obj` as `obj.save()` would
    insert it (each field's pre_save and database preparation, no signals) and reads the returned columns back."""

    alias: str
    sql: str
    fields: tuple  # the fields whose values the statement takes, in its order
    returning: tuple  # the fields it reads back: plain columns (ids, text) that need no converters

    def insert(self, obj: Model) -> None:
        connection = connections[self.alias]
        params = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in self.fields]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        for field, value in zip(self.returning, row, strict=True):
            setattr(obj, field.attname, value)
        obj._state.adding = False
        obj._state.db = self.alias


def compiled_insert(model: type[Model], *, alias: str, returning: Sequence[str]) -> CompiledInsert:
    """The ORM's INSERT of one `model` row with every concrete field but the automatic primary key, returning
    `returning`. Building it costs more CPU than running it (about 0.3–0.8 ms of an audit event's 1.2 ms)."""
    if not connections[alias].features.can_return_columns_from_insert:
        raise ImproperlyConfigured(f"The {alias!r} database cannot return columns from an INSERT.")
    meta = model._meta
    fields = tuple(field for field in meta.local_concrete_fields if field is not meta.auto_field)
    query = sql.InsertQuery(model)
    query.insert_values(fields, [model()])
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = [meta.get_field(name) for name in returning]
    [(statement, _params)] = compiler.as_sql()
    return CompiledInsert(alias, statement, fields, tuple(compiler.returning_fields))
