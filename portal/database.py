"""PostgreSQL connections keep the statements they prepare (settings: POSTGRESQL_OPTIONS); this keeps them safe
across a migration.

A migration that changes what a prepared statement returns (a column's type or length) makes PostgreSQL refuse to
run it again: "cached plan must not change result type" (SQLSTATE 0A000), on every later use in that connection.
Processes still running the release before the migration would fail those queries until restarted. Here such a
connection forgets its prepared statements; outside a transaction the statement is run again at once (it was
refused before running, so nothing ran twice), inside one the transaction fails and its rollback makes psycopg
forget them, so only that request or task fails.

`compiled()` serves the queries every request runs (the session, the person, the chosen plan): the ORM builds such
a query once per process, and the hot path runs its SQL with `raw()`. `insert()` does the same for the rows every
declaration writes (the declaration, its related items, an audit event for each step), and `update()` for the
worker's two writes to a declaration it starts (before and after the call to AWS).
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError, connections, router
from django.db.backends.signals import connection_created
from django.db.models import Field, Model, QuerySet, sql
from django.db.models.query import RawQuerySet

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
    model: type[Model]  # the queryset's model and database, for `raw()`
    alias: str

    def bind(self, values: Sequence) -> list:
        return [values[item] if kind == "value" else item for kind, item in self.params]

    def raw(self, values: Sequence) -> RawQuerySet:
        """The query with `values` in place of its placeholders, as model instances (columns that are not the
        model's, such as a joined table's, become attributes)."""
        return self.model._default_manager.db_manager(self.alias).raw(self.sql, self.bind(values))


def compiled(queryset: QuerySet, placeholders: Sequence) -> CompiledQuery:
    """The SQL the ORM makes of `queryset`, for a caller that keeps it and runs it with `raw()`.

    Building a query costs the ORM several times the CPU of running it. Build `queryset` with distinct
    `placeholders` where the real values go (values no real one can be: a negative id, a word no key has), and run
    `query.raw(values)` with the values in the placeholders' order."""
    sql, params = queryset.query.get_compiler(queryset.db).as_sql()
    slots = {(type(placeholder), placeholder): index for index, placeholder in enumerate(placeholders)}
    bound = tuple(
        ("value", slots[type(param), param]) if (type(param), param) in slots else ("constant", param)
        for param in params
    )
    missing = set(range(len(placeholders))) - {item for kind, item in bound if kind == "value"}
    if missing:
        raise ImproperlyConfigured(f"The query does not take placeholders {sorted(missing)}: {params!r}.")
    return CompiledQuery(sql, bound, queryset.model, queryset.db)


@dataclass(frozen=True)
class CompiledInsert:
    """An INSERT … RETURNING of `rows` rows of a model, built by the ORM once (`compiled_insert`)."""

    alias: str
    sql: str
    fields: tuple  # the fields whose values each row takes, in the statement's order
    returning: tuple  # the fields it reads back: plain columns (ids, text) that need no converters
    rows: int

    def insert(self, objs: Sequence[Model]) -> None:
        """Write `objs` as `save()` or `bulk_create()` would insert them (each field's pre_save and database
        preparation; no signals, no save() overrides) and read the returned columns back into each."""
        if len(objs) != self.rows:
            raise ValueError(f"This statement inserts {self.rows} rows, not {len(objs)}.")
        connection = connections[self.alias]
        params = [value for obj in objs for value in _prepared(obj, self.fields, connection, add=True)]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            returned = cursor.fetchall()
        for obj, row in zip(objs, returned, strict=True):
            for field, value in zip(self.returning, row, strict=True):
                setattr(obj, field.attname, value)
            obj._state.adding = False
            obj._state.db = self.alias


def _prepared(obj: Model, fields: Sequence, connection, *, add: bool) -> list:
    """`obj`'s values of `fields` as `save()` sends them: each field's pre_save (auto_now, auto_now_add), then its
    preparation for the database (JSON, dates, choices)."""
    return [field.get_db_prep_save(field.pre_save(obj, add), connection) for field in fields]


@functools.cache
def compiled_insert(model: type[Model], *, alias: str, returning: tuple[str, ...], rows: int) -> CompiledInsert:
    """The ORM's INSERT of `rows` rows of `model` with every concrete field but the automatic primary key,
    returning `returning`; built once per process for each combination. Building such a statement costs the ORM
    more CPU than running it (an audit event: ~0.5 of its ~1.2 ms)."""
    connection = connections[alias]
    feature = "can_return_rows_from_bulk_insert" if rows > 1 else "can_return_columns_from_insert"
    if not getattr(connection.features, feature):
        raise ImproperlyConfigured(f"The {alias!r} database cannot return columns from this INSERT.")
    meta = model._meta
    fields = _insert_fields(model)
    query = sql.InsertQuery(model)
    query.insert_values(fields, [model() for _ in range(rows)])
    compiler = query.get_compiler(using=alias)
    compiler.returning_fields = [meta.get_field(name) for name in returning]
    [(statement, _params)] = compiler.as_sql()
    return CompiledInsert(alias, statement, fields, tuple(compiler.returning_fields), rows)


def insert(objs: Sequence[Model], *, returning: tuple[str, ...] = ("id",)) -> None:
    """Insert `objs`, all of one model, as `bulk_create()` would — in batches the database accepts — with
    statements built once per process (`compiled_insert`). For the rows every declaration writes."""
    if not objs:
        return
    model = type(objs[0])
    batch = max(connections[router.db_for_write(model)].ops.bulk_batch_size(_insert_fields(model), objs), 1)
    for start in range(0, len(objs), batch):
        chunk = objs[start : start + batch]
        insert_statement(model, rows=len(chunk), returning=returning).insert(chunk)


def insert_statement(model: type[Model], *, rows: int, returning: tuple[str, ...] = ("id",)) -> CompiledInsert:
    """The statement `insert()` writes `rows` rows of `model` with, built on its first use (a process's warm-up
    asks for the ones its first declaration will use)."""
    return compiled_insert(model, alias=router.db_for_write(model), returning=returning, rows=rows)


@functools.cache
def _insert_fields(model: type[Model]) -> tuple:
    """What an INSERT of `model` writes: every concrete field but the automatic primary key."""
    meta = model._meta
    return tuple(field for field in meta.local_concrete_fields if field is not meta.auto_field)


@dataclass(frozen=True)
class CompiledUpdate:
    """An UPDATE of some fields of one row, optionally only while a column holds none of some values."""

    alias: str
    sql: str
    fields: tuple  # the fields it writes, in the statement's order
    unless: tuple  # the values the condition's column must not hold (bound after the primary key)

    def update(self, obj: Model) -> bool:
        connection = connections[self.alias]
        params = _prepared(obj, self.fields, connection, add=False)
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [*params, obj.pk, *self.unless])
            return cursor.rowcount > 0


@functools.cache
def compiled_update(
    model: type[Model], *, alias: str, fields: tuple[str, ...], unless: tuple[str, tuple] | None = None
) -> CompiledUpdate:
    """`UPDATE … SET field = %s, … WHERE pk = %s [AND NOT column IN (…)]` for `model`, built once per process for
    each combination. The ORM builds an UPDATE on every call, which cost more CPU than running it (a declaration's
    `save(update_fields=…)` took 0.8–0.9 ms, this 0.5 ms, the round trip included)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    meta = model._meta
    written = [_stored_field(model, name) for name in fields]
    assignments = ", ".join(f"{quote(column)} = %s" for _, column in written)
    _, pk_column = _stored_field(model, meta.pk.name)
    # Names from the model's metadata, quoted by the backend; every value is a parameter.
    statement = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(pk_column)} = %s"  # noqa: S608
    excluded: tuple = ()
    if unless is not None:
        name, values = unless
        condition, column = _stored_field(model, name)
        excluded = tuple(condition.get_db_prep_value(value, connection) for value in values)
        statement += f" AND NOT ({quote(column)} IN ({', '.join(['%s'] * len(excluded))}))"
    return CompiledUpdate(alias, statement, tuple(field for field, _ in written), excluded)


def _stored_field(model: type[Model], name: str) -> tuple[Field, str]:
    """`model`'s field `name` and its column (a reverse relation has none: an UPDATE of the row cannot write it)."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{model._meta.label}.{name} is not a column of its table.")
    return field, field.column


def update(obj: Model, fields: Sequence[str], *, unless: tuple[str, Sequence] | None = None) -> bool:
    """Write `obj`'s `fields` to its row, as `save(update_fields=…)` would (each field's pre_save, `auto_now`
    included, and database preparation; no signals, no save() overrides), with a statement built once per process.
    `unless=(field, values)` writes only while the row's `field` holds none of `values`. Returns whether the row
    was written."""
    model = type(obj)
    condition = (unless[0], tuple(unless[1])) if unless is not None else None
    query = compiled_update(
        model, alias=router.db_for_write(model, instance=obj), fields=tuple(fields), unless=condition
    )
    return query.update(obj)
