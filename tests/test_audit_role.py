"""The runtime database role of docs/security.md may only insert and read audit events, and verify_audit and the
health report warn when the role the portal connects as can do more."""

import re

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from incidents.selectors.audit import audit_role_privileges
from incidents.services.audit import audit_record
from tests.helpers import ROOT

OWNER_ONLY = [
    "UPDATE incidents_auditevent SET action = 'nothing'",
    "DELETE FROM incidents_auditevent",
    "TRUNCATE incidents_auditevent",
    "ALTER TABLE incidents_auditevent DISABLE TRIGGER incidents_auditevent_append_only",
    "DROP TRIGGER incidents_auditevent_no_truncate ON incidents_auditevent",
    "CREATE TRIGGER sneaky BEFORE INSERT ON incidents_auditevent FOR EACH ROW "
    "EXECUTE FUNCTION incidents_auditevent_append_only()",
]


def documented_grants(runtime_role: str, owner_role: str) -> list[str]:
    """The SQL block docs/security.md gives for the runtime role, for these role names."""
    text = (ROOT / "docs" / "security.md").read_text()
    block = re.search(r"<!-- runtime-role-grants.*?-->\s*```sql\n(.*?)```", text, re.DOTALL)
    assert block, "docs/security.md lost its runtime role's grants"
    sql = block.group(1).replace("portal_runtime", runtime_role).replace("portal_owner", owner_role)
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


@pytest.fixture
def runtime_role(db):
    """The documented runtime role, made for this test and gone with its transaction (roles are per cluster, so
    the name carries the test database's)."""
    name = f"{settings.DATABASES['default']['NAME']}_runtime"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
        cursor.execute(f'CREATE ROLE "{name}" NOLOGIN')
        for statement in documented_grants(f'"{name}"', f'"{owner}"'):
            cursor.execute(statement)
        cursor.execute(f'SET ROLE "{name}"')
    yield name
    with connection.cursor() as cursor:
        cursor.execute("RESET ROLE")


@pytest.mark.django_db
def test_the_documented_runtime_role_appends_and_reads_and_nothing_more(runtime_role, support_user, plans):
    event = audit_record(action="test.as_runtime_role", actor=support_user)
    assert event.key_id == "test"
    call_command("verify_audit")
    for statement in OWNER_ONLY:
        refused = pytest.raises(DatabaseError, match="permission denied|must be owner")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    privileges = audit_role_privileges()
    assert (privileges.role, privileges.excess) == (runtime_role, ())


@pytest.mark.django_db
def test_verify_audit_and_the_health_report_say_nothing_of_a_runtime_role(runtime_role, client, capsys):
    call_command("verify_audit")
    assert "Warning: the database role" not in capsys.readouterr().err
    assert client.get("/healthz/ready").json()["warnings"] == []


@pytest.mark.django_db
def test_a_role_that_can_do_more_is_warned_about(client, capsys):
    """The tests connect as a superuser, as a portal must not."""
    privileges = audit_role_privileges()
    assert privileges.excess[0].startswith("superuser")
    assert {"UPDATE", "DELETE", "TRUNCATE", "TRIGGER"} <= set(privileges.excess)

    call_command("verify_audit")
    captured = capsys.readouterr()
    assert "Audit trail intact" in captured.out
    assert f"Warning: the database role '{privileges.role}' may do more than INSERT and SELECT audit events" in (
        captured.err
    )
    assert "TRUNCATE" in captured.err

    warnings = client.get("/healthz/ready").json()["warnings"]
    assert len(warnings) == 1
    assert warnings[0].startswith("the database role may do more than INSERT and SELECT audit events: superuser")
