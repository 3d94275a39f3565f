"""A declaration's whole journey: form → PostgreSQL → Redis → Celery worker → boto3 → HTTP → sandbox."""

import json

import pytest
from django.urls import reverse

from incidents.models import Declaration
from tests.conftest import wait_for_state
from tests.helpers import declare_post, upload

DECLARE = reverse("incidents:declare")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]

INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"


def declare(client, plan, **kwargs) -> Declaration:
    response = client.post(DECLARE, declare_post(plan, **kwargs))
    assert response.status_code == 302, response.content.decode()[:2000]
    declaration = Declaration.objects.get()
    assert response["Location"] == f"/declarations/{declaration.pk}/"
    return declaration


def test_declaration_with_every_kind_of_item_reaches_aws(support_client, plans, sandbox, ssm_incidents, s3):
    plan = plans["website-outage"]
    items = [
        {"kind": "link", "value": "https://status.example.com/incidents/42", "title": "Status page"},
        {"kind": "resource", "value": INSTANCE_ARN, "title": "Web server"},
        {"kind": "file", "file": upload("timeline.txt", b"12:01 error rate spiked\n"), "title": "Timeline"},
    ]
    declaration = declare(support_client, plan, title="Checkout returns 500", impact=2, items=items, extra_rows=2)

    declaration = wait_for_state(declaration, Declaration.State.STARTED)
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert record["title"] == "Checkout returns 500"
    assert record["impact"] == 2
    assert record["incidentRecordSource"]["source"] == "com.example.incident-portal"

    related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    by_type = {item["identifier"]["type"]: item for item in related}
    assert by_type["OTHER"]["identifier"]["value"] == {"url": "https://status.example.com/incidents/42"}
    assert by_type["OTHER"]["title"] == "Status page"
    assert by_type["INVOLVED_RESOURCE"]["identifier"]["value"] == {"arn": INSTANCE_ARN}
    attachment_arn = by_type["ATTACHMENT"]["identifier"]["value"]["arn"]
    assert by_type["ATTACHMENT"]["title"] == "Timeline"

    # The file really is in S3, encrypted, where the ATTACHMENT item points.
    file_item = declaration.related_items.get(kind="file")
    assert attachment_arn == f"arn:aws:s3:::{file_item.s3_bucket}/{file_item.s3_key}"
    stored = s3.get_object(Bucket=file_item.s3_bucket, Key=file_item.s3_key)
    assert stored["Body"].read() == b"12:01 error rate spiked\n"
    assert stored["ServerSideEncryption"] == "AES256"
    assert stored["ContentType"] == "text/plain"

    # The request carried the declaration's token and a trigger naming who declared it, and where.
    (call,) = sandbox.calls()
    sent = call["params"]
    assert sent["clientToken"] == declaration.client_token
    raw = json.loads(sent["triggerDetails"]["rawData"])
    assert raw["declaredBy"] == "sam.support"
    assert raw["declarationUrl"].endswith(f"/declarations/{declaration.pk}/")

    page = support_client.get(f"/declarations/{declaration.pk}/").content.decode()
    assert "Started" in page
    assert declaration.incident_record_arn in page
    actions = list(declaration.audit_events.values_list("action", flat=True))
    assert actions == ["declaration.queued", "declaration.starting", "declaration.started"]


def test_empty_title_and_impact_take_the_plans_defaults(support_client, plans, sandbox, ssm_incidents):
    plan = plans["payments-degraded"]
    declaration = wait_for_state(declare(support_client, plan), Declaration.State.STARTED)

    (call,) = sandbox.calls()
    assert "title" not in call["params"]
    assert "impact" not in call["params"]
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert record["title"] == plan.template_title
    assert record["impact"] == plan.template_impact
    page = support_client.get(f"/declarations/{declaration.pk}/").content.decode()
    assert "from the plan" in page


def test_values_the_person_sets_overwrite_the_plans(support_client, plans, ssm_incidents):
    plan = plans["payments-degraded"]
    assert plan.template_impact != 5
    declaration = wait_for_state(
        declare(support_client, plan, title="Refunds stuck", impact=5), Declaration.State.STARTED
    )
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert (record["title"], record["impact"]) == ("Refunds stuck", 5)


def test_a_response_lost_after_the_incident_was_created_yields_one_incident(
    support_client, plans, sandbox, ssm_incidents
):
    sandbox.inject(operation="StartIncident", lose_response_next=1)
    declaration = wait_for_state(
        declare(support_client, plans["website-outage"], title="Lost response"), Declaration.State.STARTED
    )
    calls = sandbox.calls()
    assert len(calls) == 2, "the lost response is retried"
    assert {call["params"]["clientToken"] for call in calls} == {declaration.client_token}
    records = ssm_incidents.list_incident_records()["incidentRecordSummaries"]
    assert [r["arn"] for r in records if r["title"] == "Lost response"] == [declaration.incident_record_arn]


def test_throttling_beyond_botocores_attempts_is_retried_by_the_worker(support_client, plans, sandbox):
    # botocore makes 3 attempts; the 4th and 5th throttles are absorbed by a Celery retry.
    sandbox.inject(operation="StartIncident", throttle_next=4)
    declaration = wait_for_state(declare(support_client, plans["website-outage"]), Declaration.State.STARTED)
    assert declaration.attempts == 2
    assert len(sandbox.calls()) == 5
    actions = list(declaration.audit_events.values_list("action", flat=True))
    assert "declaration.attempt_failed" in actions


def test_server_errors_are_retried(support_client, plans, sandbox):
    sandbox.inject(operation="StartIncident", error_next=2)
    declaration = wait_for_state(declare(support_client, plans["website-outage"]), Declaration.State.STARTED)
    assert declaration.incident_record_arn


def test_a_permanent_error_fails_at_once_with_awss_message(support_client, plans, sandbox, ssm_incidents):
    plan = plans["website-outage"]
    # The plan vanished from AWS after the last sync: AWS answers ResourceNotFoundException.
    plan.arn = plan.arn.replace("website-outage", "website-outage-retired")
    plan.save()
    declaration = wait_for_state(declare(support_client, plan), Declaration.State.FAILED)
    assert declaration.attempts == 1
    assert len(sandbox.calls()) == 1, "a permanent error is not retried"
    assert declaration.failure_code == "ResourceNotFoundException"
    assert "website-outage-retired" in declaration.failure_reason
    page = support_client.get(f"/declarations/{declaration.pk}/").content.decode()
    assert "The incident was not started." in page
    assert declaration.failure_reason in page


def test_retry_after_a_failure_reuses_the_client_token(support_client, plans, sandbox):
    sandbox.inject(operation="StartIncident", error_rate=1.0)
    declaration = wait_for_state(declare(support_client, plans["website-outage"]), Declaration.State.FAILED, timeout=40)
    assert declaration.failure_code == "InternalServerException"
    sandbox.clear_faults()

    response = support_client.post(f"/declarations/{declaration.pk}/retry/")
    assert response.status_code == 302
    declaration = wait_for_state(declaration, Declaration.State.STARTED)
    tokens = {call["params"]["clientToken"] for call in sandbox.calls()}
    assert tokens == {declaration.client_token}
    assert "declaration.retried" in declaration.audit_events.values_list("action", flat=True)


def test_submitting_the_same_form_twice_makes_one_declaration(support_client, plans, sandbox):
    data = declare_post(plans["website-outage"], title="Double click")
    first = support_client.post(DECLARE, data)
    second = support_client.post(DECLARE, data)
    assert first["Location"] == second["Location"]
    declaration = wait_for_state(Declaration.objects.get(), Declaration.State.STARTED)
    assert len(sandbox.calls()) == 1
    assert declaration.title == "Double click"
