"""The detail page tells a declaration's whole story; files are fetched through short-lived links only."""

import time
import urllib.parse
import urllib.request

import pytest

from incidents.models import AuditEvent, Declaration
from incidents.services.attachments import RelatedItemInput
from incidents.services.declarations import declaration_create
from incidents.services.starting import declaration_start
from tests.helpers import upload


@pytest.fixture
def declaration_with_file(plans, support_user):
    declaration, _ = declaration_create(
        declared_by=support_user,
        response_plan=plans["website-outage"],
        title="Checkout down",
        related_items=[
            RelatedItemInput(kind="link", value="https://status.example.com/1", title="Status page"),
            RelatedItemInput(kind="file", upload=upload("timeline.txt", b"12:01 spike\n")),
        ],
        ip_address="203.0.113.9",
    )
    return declaration


@pytest.mark.django_db
def test_detail_shows_the_request_and_response_the_arn_console_link_and_the_audit_trail(
    manager_client, declaration_with_file
):
    declaration = declaration_with_file
    declaration_start(declaration_id=declaration.pk, final_attempt=True)
    declaration.refresh_from_db()
    assert declaration.state == Declaration.State.STARTED
    html = manager_client.get(declaration.get_absolute_url()).content.decode()
    # The exact request, pretty-printed, and AWS's answer.
    assert "StartIncident request" in html
    assert f"&quot;clientToken&quot;: &quot;{declaration.client_token}&quot;" in html
    assert "&quot;responsePlanArn&quot;:" in html
    assert f"&quot;incidentRecordArn&quot;: &quot;{declaration.incident_record_arn}&quot;" in html
    assert declaration.incident_record_arn in html
    # The console link leads to the incident record itself, in its region (tests/test_declare_stress.py).
    assert "/systems-manager/incidents/incident/arn%3Aaws%3Assm-incidents%3A" in html
    # Who did what, when, from where.
    assert "declaration.queued" in html and "declaration.started" in html
    assert "203.0.113.9" in html
    assert "sam.support" in html
    # The details as people read them: the plan's impact was left to the plan (no value), not Python's None.
    assert '<span class="nowrap">title:</span> Checkout down;' in html
    assert '<span class="nowrap">impact:</span> —;' in html
    assert "impact=None" not in html
    # Every stored field a reader needs.
    for label in ("State", "Handed to workers", "Started", "Attempts", "Client token", "Last changed"):
        assert f"<dt>{label}</dt>" in html


@pytest.mark.django_db
def test_files_are_offered_through_the_portal_never_as_embedded_s3_links(support_client, declaration_with_file):
    html = support_client.get(declaration_with_file.get_absolute_url()).content.decode()
    item = declaration_with_file.related_items.get(kind="file")
    assert f"/declarations/{declaration_with_file.pk}/files/{item.pk}/" in html
    assert "X-Amz-Signature" not in html and "Signature=" not in html


@pytest.mark.django_db
def test_download_redirects_to_a_presigned_link_valid_five_minutes_and_is_audited(
    support_client, declaration_with_file
):
    item = declaration_with_file.related_items.get(kind="file")
    response = support_client.get(f"/declarations/{declaration_with_file.pk}/files/{item.pk}/")
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = response["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    # SigV4 gives a lifetime in seconds, SigV2 an absolute expiry time.
    sigv4 = "X-Amz-Expires" in query
    lifetime = int(query["X-Amz-Expires"][0]) if sigv4 else int(query["Expires"][0]) - time.time()
    assert 0 < lifetime <= 300
    assert 'attachment; filename="timeline.txt"' in query["response-content-disposition"][0]
    with urllib.request.urlopen(location, timeout=5) as fetched:  # the sandbox's S3 honours the signature
        assert fetched.read() == b"12:01 spike\n"
    event = AuditEvent.objects.get(action="declaration.file_downloaded")
    assert event.actor_label == "sam.support"
    assert event.details["file_name"] == "timeline.txt"


@pytest.mark.django_db
def test_links_cannot_be_downloaded_through_the_file_door(support_client, declaration_with_file):
    link = declaration_with_file.related_items.get(kind="link")
    assert support_client.get(f"/declarations/{declaration_with_file.pk}/files/{link.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_file_of_another_declaration_is_not_reachable_through_mine(
    support_client, plans, support_user, declaration_with_file
):
    mine, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    item = declaration_with_file.related_items.get(kind="file")
    assert support_client.get(f"/declarations/{mine.pk}/files/{item.pk}/").status_code == 404
