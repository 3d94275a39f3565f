"""Files never block the incident: when S3 fails they wait in the portal and are attached afterwards."""

import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from incidents.models import AttachmentState, Declaration
from incidents.services.attachments import RelatedItemInput, declaration_attach_pending_files
from incidents.services.declarations import declaration_create
from incidents.services.starting import declaration_start
from tests.conftest import wait_for_state
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")


def attachments_in_aws(ssm_incidents, declaration) -> list[dict]:
    items = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    return [item for item in items if item["identifier"]["type"] == "ATTACHMENT"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_with_s3_down_the_incident_starts_and_the_file_is_attached_when_s3_is_back(
    support_client, plans, sandbox, ssm_incidents, s3
):
    sandbox.inject(s3_down=True)
    items = [
        {"kind": "link", "value": "https://status.example.com/1", "title": "Status"},
        {"kind": "file", "file": upload("timeline.txt", b"12:01 spike\n"), "title": "Timeline"},
    ]
    response = support_client.post(DECLARE, declare_post(plans["website-outage"], title="S3 down", items=items))
    assert response.status_code == 302, "S3 failing does not refuse the declaration"
    declaration = wait_for_state(Declaration.objects.get(), Declaration.State.STARTED)

    (start,) = sandbox.calls()
    sent_types = [item["identifier"]["type"] for item in start["params"]["relatedItems"]]
    assert sent_types == ["OTHER"], "the incident did not wait for the file"
    file = declaration.related_items.get(kind="file")
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    if file.attachment_state == AttachmentState.PENDING:
        assert "Waiting to be uploaded" in page
        assert "S3 was unavailable at declaration time" in page
    assert bytes(file.pending_content or b"") in (b"12:01 spike\n", b"")

    sandbox.inject(s3_down=False)
    deadline = time.monotonic() + 20
    while file.attachment_state == AttachmentState.PENDING and time.monotonic() < deadline:
        time.sleep(0.1)
        file.refresh_from_db()
    assert file.attachment_state == AttachmentState.ATTACHED, file.attachment_error
    assert file.pending_content is None, "the bytes leave the database once they are in S3"
    (attachment,) = attachments_in_aws(ssm_incidents, declaration)
    assert attachment["identifier"]["value"]["arn"] == file.value
    assert attachment["title"] == "Timeline"
    stored = s3.get_object(Bucket=file.s3_bucket, Key=file.s3_key)
    assert stored["Body"].read() == b"12:01 spike\n"
    assert stored["ServerSideEncryption"] == "AES256"

    actions = list(declaration.audit_events.values_list("action", flat=True))
    assert actions[0] == "declaration.queued"
    assert "attachment.pending" in actions and actions[-1] == "attachment.attached"
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "Attached to the incident" in page


@pytest.mark.django_db
def test_a_file_that_can_never_be_attached_is_marked_failed_with_its_reason(
    support_user, support_client, plans, sandbox, settings
):
    settings.AWS_MAX_ATTEMPTS = 1
    sandbox.inject(s3_down=True)
    declaration, _ = declaration_create(
        declared_by=support_user,
        response_plan=plans["website-outage"],
        related_items=[RelatedItemInput(kind="file", upload=upload("notes.txt", b"notes"))],
    )
    declaration_start(declaration_id=declaration.pk, final_attempt=True)
    declaration_attach_pending_files(declaration_id=declaration.pk, final_attempt=True)

    file = declaration.related_items.get()
    assert file.attachment_state == AttachmentState.FAILED
    assert bytes(file.pending_content) == b"notes", "nothing the person gave is thrown away"
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "Could not be attached" in page
    assert "ServiceUnavailable" in page
    failed = declaration.audit_events.get(action="attachment.failed")
    assert failed.details["file"] == "notes.txt"


@pytest.mark.django_db
def test_files_uploaded_at_declaration_time_go_with_the_incident_and_download_through_a_short_link(
    support_user, support_client, client, plans, sandbox, other_support_user
):
    declaration, _ = declaration_create(
        declared_by=support_user,
        response_plan=plans["website-outage"],
        related_items=[RelatedItemInput(kind="file", upload=upload("graph.png", b"\x89PNG data"))],
    )
    file = declaration.related_items.get()
    assert file.attachment_state == AttachmentState.STORED
    declaration = declaration_start(declaration_id=declaration.pk, final_attempt=True)
    (call,) = sandbox.calls()
    assert call["params"]["relatedItems"][0]["identifier"] == {"type": "ATTACHMENT", "value": {"arn": file.value}}
    file.refresh_from_db()
    assert file.attachment_state == AttachmentState.ATTACHED

    link = reverse("incidents:related-item-download", args=[declaration.pk, file.pk])
    response = support_client.get(link)
    assert response.status_code == 302
    presigned = response["Location"]
    query = parse_qs(urlsplit(presigned).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    with urllib.request.urlopen(presigned, timeout=5) as answer:  # noqa: S310 - the local sandbox
        assert answer.read() == b"\x89PNG data"

    # The object itself is private: its plain URL refuses an anonymous reader.
    plain = presigned.split("?", 1)[0]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(plain, timeout=5)  # noqa: S310
    assert refused.value.code == 403

    # Nobody else gets the link, and nobody at all without logging in.
    client.force_login(other_support_user)
    assert client.get(link).status_code == 404
    client.logout()
    assert client.get(link).status_code == 302
    assert client.get(link)["Location"].startswith(reverse("login"))
