"""A running portal keeps answering when a deploy's migration changes a column under its prepared statements."""

import psycopg
import pytest
from django.db import NotSupportedError, connection, transaction

QUERY = "SELECT id, name FROM portal_schema_change WHERE id = %s"


@pytest.fixture
def prepared_query():
    """A table, and a query this connection has run often enough to have prepared it."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE portal_schema_change (id int, name varchar(10))")
        cursor.execute("INSERT INTO portal_schema_change VALUES (1, 'before')")
        for _ in range(6):
            cursor.execute(QUERY, [1])
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%portal_schema_change%'")
        assert cursor.fetchone()[0] == 1
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE portal_schema_change")


def migrate_elsewhere() -> None:
    """As `manage.py migrate` of the next release does, from its own connection: the column grows."""
    with psycopg.connect(connection.connection.info.dsn, autocommit=True) as other:
        other.execute("ALTER TABLE portal_schema_change ALTER COLUMN name TYPE varchar(20)")


@pytest.mark.django_db(transaction=True)
def test_a_query_prepared_before_a_migration_still_answers_after_it(prepared_query):
    migrate_elsewhere()
    with connection.cursor() as cursor:
        cursor.execute(QUERY, [1])  # PostgreSQL refuses the prepared statement; it is prepared again and run
        assert cursor.fetchall() == [(1, "before")]
        cursor.execute(QUERY, [1])
        assert cursor.fetchall() == [(1, "before")]


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_only_that_transaction_fails(prepared_query):
    migrate_elsewhere()
    with pytest.raises(NotSupportedError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(QUERY, [1])  # the transaction is aborted: it cannot run the statement again
    with connection.cursor() as cursor:
        cursor.execute(QUERY, [1])
        assert cursor.fetchall() == [(1, "before")]
