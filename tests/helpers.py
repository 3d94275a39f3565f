"""Building declare-form POSTs the way a browser sends them, and a free port for the servers tests start."""

import socket
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile


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
