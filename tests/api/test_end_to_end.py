"""A script's declaration, all the way: API → PostgreSQL → Redis → Celery worker → boto3 → sandbox."""

import json
import time

import pytest
from django.conf import settings

from incidents.models import Declaration
from tests.api.conftest import ALARM_ARN, INSTANCE_ARN, link, resource

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def poll(api, status_url: str, timeout: float = 20) -> dict:
    """Poll the declaration as a script would, until it is started or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get(status_url).json()["data"]
        if data["state"] in ("started", "failed"):
            return data
        time.sleep(0.1)
    raise AssertionError(f"{status_url} stayed {data['state']}")


def test_a_scripts_declaration_reaches_aws_with_the_callers_fields(api, plans, sandbox, ssm_incidents):
    plan = plans["payments-degraded"]
    payload = {
        "responsePlanArn": plan.arn,
        "title": "Card payments failing in EU",
        "impact": 1,
        "relatedItems": [link("https://grafana.example.com/d/payments", "Dashboard"), resource(INSTANCE_ARN)],
        "clientToken": "alarm-payments-eu-1",
        "triggerDetails": {
            "source": "com.example.alerting",
            "timestamp": "2026-11-29T16:30:00Z",
            "rawData": '{"alarm": "payments-eu-errors"}',
            "triggerArn": ALARM_ARN,
        },
    }
    response = api.start(payload)
    assert response.status_code == 202, response.content
    accepted = response.json()["data"]

    data = poll(api, accepted["status_url"])

    assert data["state"] == "started", data
    assert data["attempts"] == 1
    assert [event["action"] for event in data["audit"]] == [
        "declaration.queued",
        "declaration.starting",
        "declaration.started",
    ]
    record = ssm_incidents.get_incident_record(arn=data["incident_record_arn"])["incidentRecord"]
    assert (record["title"], record["impact"]) == ("Card payments failing in EU", 1)
    # AWS names the portal as the source, and the alarm that fired as the resource.
    assert record["incidentRecordSource"]["source"] == settings.PORTAL_TRIGGER_SOURCE
    assert record["incidentRecordSource"]["resourceArn"] == ALARM_ARN

    (call,) = sandbox.calls()
    sent = call["params"]
    declaration = Declaration.objects.get(pk=accepted["id"])
    # AWS gets the portal's own client token (fixed per declaration), not the caller's idempotency key.
    assert sent["clientToken"] == declaration.client_token
    # The declarer is the token's owner, in the portal's rawData; the caller's own trigger travels inside it.
    raw_data = json.loads(sent["triggerDetails"]["rawData"])
    assert raw_data["declaredBy"] == declaration.declared_by.username
    assert raw_data["declarationId"] == declaration.pk
    assert raw_data["caller"] == {"source": "com.example.alerting", "rawData": '{"alarm": "payments-eu-errors"}'}
    assert sent["triggerDetails"]["source"] == settings.PORTAL_TRIGGER_SOURCE
    related = ssm_incidents.list_related_items(incidentRecordArn=data["incident_record_arn"])["relatedItems"]
    assert {item["identifier"]["type"]: item["identifier"]["value"] for item in related} == {
        "OTHER": {"url": "https://grafana.example.com/d/payments"},
        "INVOLVED_RESOURCE": {"arn": INSTANCE_ARN},
    }

    # The retrying script gets the same declaration back, and AWS was called once.
    again = api.start(payload)
    assert again.status_code == 200
    assert again.json()["data"]["id"] == accepted["id"]
    assert again.json()["data"]["state"] == "started"
    assert len(sandbox.calls()) == 1


def test_a_failure_in_aws_reads_back_with_its_reason(api, plans, sandbox):
    sandbox.inject(operation="StartIncident", deny_next=1)
    accepted = api.start({"responsePlanArn": plans["website-outage"].arn}).json()["data"]

    data = poll(api, accepted["status_url"])

    assert data["state"] == "failed"
    assert data["failure"]["code"] == "AccessDeniedException"
    assert data["failure"]["reason"]
    assert data["attempts"] == 1  # access denied is final: no retry
    assert data["incident_record_arn"] is None
