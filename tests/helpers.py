"""Building declare-form POSTs the way a browser sends them, a free port for the servers tests start,
`manage.py` run in a process of its own, and tampering with the audit trail as someone with database access."""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from incidents.services.declarations import declaration_create


def declare_post(plan=None, *, title="", impact="", items=(), key=None, extra_rows=0) -> dict:
    """Form data for /declare/: `items` are dicts with kind, value, title and optionally file."""
    rows = list(items) + [{}] * extra_rows
    data = {
        "idempotency_key": key or uuid.uuid4().hex,
        "title": title,
        "impact": "" if impact is None else str(impact),
        "items-TOTAL_FORMS": str(len(rows)),
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "100",
    }
    if plan is not None:
        data["response_plan"] = str(getattr(plan, "pk", plan))
    for index, row in enumerate(rows):
        data[f"items-{index}-kind"] = row.get("kind", "link")
        data[f"items-{index}-value"] = row.get("value", "")
        data[f"items-{index}-title"] = row.get("title", "")
        if "file" in row:
            data[f"items-{index}-file"] = row["file"]
    return data


def upload(name="timeline.txt", content=b"12:01 error rate spiked\n", content_type="text/plain"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def make_declaration(*, declared_by, plan, title="", impact=None, state="queued", created_at=None, **fields):
    """A declaration row as the service stores it, without queuing anything: for history tests."""
    import uuid as _uuid

    from django.utils import timezone

    from incidents.models import Declaration

    declaration = Declaration(
        declared_by=declared_by,
        response_plan=plan,
        title=title,
        impact=impact,
        state=state,
        client_token=f"test-{_uuid.uuid4().hex}",
        created_at=created_at or timezone.now(),
        **fields,
    )
    declaration.save()
    return declaration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


ROOT = Path(__file__).resolve().parent.parent


def manage_py(*args: str, settings: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    """`manage.py` in its own process with `settings`, as an operator or `make run` starts it. The environment's
    SECRET_KEY and ALLOWED_HOSTS are left out (a settings module must ask for them); `env` adds variables."""
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOWED_HOSTS")}
    environment.update(DJANGO_SETTINGS_MODULE=settings, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout
    )


def tamper(sql: str, params=()) -> None:
    """What an attacker with database access would do to the audit trail: switch the append-only trigger off, edit,
    switch it on. Inside the test's transaction, so the table is back as it was afterwards."""
    with connection.cursor() as cursor:
        # ALTER TABLE refuses while deferred foreign-key checks are pending in the transaction: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE incidents_auditevent DISABLE TRIGGER incidents_auditevent_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE incidents_auditevent ENABLE TRIGGER incidents_auditevent_append_only")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def wait_for_action(action, *states: str, timeout: float = 20):
    """Poll the database until the worker has moved an incident action (or a declaration) into one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        action.refresh_from_db()
        if action.state in states:
            return action
        time.sleep(0.05)
    raise AssertionError(f"{action} stayed {action.state!r}, expected {states}")


def started_declaration(*, declared_by, plan, title="Checkout is down"):
    """A declaration the worker has started in the sandbox (needs the celery_worker fixture)."""
    declaration, _ = declaration_create(declared_by=declared_by, response_plan=plan, title=title)
    declaration = wait_for_action(declaration, "started", "failed")
    assert declaration.state == "started", declaration.failure_reason
    return declaration


def pretend_started(declaration, arn="arn:aws:ssm-incidents::111122223333:incident-record/website-outage/fake"):
    """Mark a stored declaration started without any worker (for tests that never send to AWS)."""
    type(declaration).objects.filter(pk=declaration.pk).update(state="started", incident_record_arn=arn)
    declaration.refresh_from_db()
    return declaration
