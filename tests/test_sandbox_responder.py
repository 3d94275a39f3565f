"""The sandbox after StartIncident: the operations that follow an incident behave as AWS documents them (client
tokens, errors, the timeline's filters and order), and its control API plays a responder working in the console."""

import json
import urllib.error
import urllib.request

import botocore.exceptions
import pytest

from sandbox import demo
from sandbox.ssm_incidents import RESPONDER_ARN
from tests.test_sandbox import PLAN_ARN, client, error_of


@pytest.fixture
def sb(server):
    server.reset()
    demo.seed(server.url)
    return server


@pytest.fixture(scope="module")
def server():
    from sandbox.server import Sandbox

    sandbox = Sandbox(host="127.0.0.1", port=0).start()
    yield sandbox
    sandbox.stop()


def respond(sb, action, **body):
    request = urllib.request.Request(
        f"{sb.url}/_sandbox/responder/{action}", data=json.dumps(body).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 -- local sandbox URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_responder_changes_the_incident_as_another_person(sb):
    ssm = client(sb)
    arn = ssm.start_incident(responsePlanArn=PLAN_ARN, clientToken="portal-1")["incidentRecordArn"]
    sb.calls.clear()

    assert respond(sb, "update", arn=arn, title="Checkout down", impact=2, summary="EU only")[0] == 200
    assert respond(sb, "related-item", arn=arn, url="https://grafana.example.com/d/1", title="Board")[0] == 200
    status, answer = respond(sb, "timeline-event", arn=arn, text="It was the 14:02 deploy")
    assert status == 200
    execution = respond(sb, "runbook", arn=arn)[1]["ssmExecutionArn"]
    assert respond(sb, "resolve", arn=arn)[0] == 200

    record = ssm.get_incident_record(arn=arn)["incidentRecord"]
    assert (record["title"], record["impact"], record["summary"], record["status"]) == (
        "Checkout down",
        2,
        "EU only",
        "RESOLVED",
    )
    assert record["lastModifiedBy"] == RESPONDER_ARN
    assert record["automationExecutions"] == [{"ssmExecutionArn": execution}]
    assert "resolvedTime" in record
    items = ssm.list_related_items(incidentRecordArn=arn)["relatedItems"]
    assert {"url": "https://grafana.example.com/d/1"} in [item["identifier"]["value"] for item in items]
    event = ssm.get_timeline_event(incidentRecordArn=arn, eventId=answer["eventId"])["event"]
    assert event["eventType"] == "Custom Event"
    assert json.loads(event["eventData"]) == {"content": "It was the 14:02 deploy"}
    # The call log is what the portal asked: the responder's changes are not in it.
    assert [call["operation"] for call in sb.calls.list()] == [
        "GetIncidentRecord",
        "ListRelatedItems",
        "GetTimelineEvent",
    ]


def test_a_responders_mistakes_are_answered_as_aws_words_them(sb):
    arn = client(sb).start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]
    status, answer = respond(sb, "update", arn=arn, impact=9)
    assert status == 400 and answer["error"] == "ValidationException"
    assert "less than or equal to 5" in answer["message"]
    assert respond(sb, "resolve", arn=arn + "0")[1]["error"] == "ResourceNotFoundException"
    assert respond(sb, "resolve", arn=arn + "0")[0] == 404
    assert respond(sb, "dance", arn=arn)[0] == 404


def test_updates_and_timeline_events_honour_client_tokens(sb):
    ssm = client(sb)
    arn = ssm.start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]

    note = {"incidentRecordArn": arn, "eventTime": 1_700_000_000, "eventType": "Custom Event", "eventData": "{}"}
    first = ssm.create_timeline_event(**note, clientToken="note-1")["eventId"]
    assert ssm.create_timeline_event(**note, clientToken="note-1")["eventId"] == first
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.create_timeline_event(**{**note, "eventData": '{"other": 1}'}, clientToken="note-1")
    assert error_of(excinfo)[:2] == ("ConflictException", 409)

    ssm.update_incident_record(arn=arn, status="RESOLVED", clientToken="resolve-1")
    ssm.update_incident_record(arn=arn, status="OPEN")  # reopened by someone else
    ssm.update_incident_record(arn=arn, status="RESOLVED", clientToken="resolve-1")  # a retry of the first
    assert ssm.get_incident_record(arn=arn)["incidentRecord"]["status"] == "OPEN"  # done once, not again
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.update_incident_record(arn=arn, title="Other", clientToken="resolve-1")
    assert error_of(excinfo)[:2] == ("ConflictException", 409)

    item = {"itemToAdd": {"identifier": {"type": "OTHER", "value": {"url": "https://a.example/"}}}}
    ssm.update_related_items(incidentRecordArn=arn, relatedItemsUpdate=item, clientToken="item-1")
    ssm.update_related_items(incidentRecordArn=arn, relatedItemsUpdate=item, clientToken="item-1")
    added = [
        e
        for e in ssm.list_timeline_events(incidentRecordArn=arn)["eventSummaries"]
        if e["eventType"] == "SSM Related Item"
    ]
    assert len(added) == 1

    for operation, params in (
        ("create_timeline_event", {**note, "incidentRecordArn": arn + "0"}),
        ("update_incident_record", {"arn": arn + "0", "title": "x"}),
        ("update_related_items", {"incidentRecordArn": arn + "0", "relatedItemsUpdate": item}),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            getattr(ssm, operation)(**params)
        assert error_of(excinfo)[:2] == ("ResourceNotFoundException", 404)


def test_only_custom_events_and_notes_may_be_created(sb):
    ssm = client(sb)
    arn = ssm.start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]
    ssm.create_timeline_event(incidentRecordArn=arn, eventTime=1, eventType="Note", eventData="n")
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.create_timeline_event(
            incidentRecordArn=arn, eventTime=1, eventType="SSM Incident Record Update", eventData="x"
        )
    assert error_of(excinfo)[:2] == ("ValidationException", 400)


def test_the_timeline_sorts_and_filters_as_documented(sb):
    ssm = client(sb)
    arn = ssm.start_incident(responsePlanArn=PLAN_ARN)["incidentRecordArn"]
    for text in ("first", "second"):  # the same instant: written order is kept
        ssm.create_timeline_event(incidentRecordArn=arn, eventTime=2_000_000_000, eventType="Note", eventData=text)
    newest = ssm.list_timeline_events(incidentRecordArn=arn, sortBy="EVENT_TIME", sortOrder="DESCENDING")
    ids = [e["eventId"] for e in newest["eventSummaries"]]
    texts = [ssm.get_timeline_event(incidentRecordArn=arn, eventId=i)["event"]["eventData"] for i in ids[:2]]
    assert texts == ["second", "first"]
    assert "eventData" not in newest["eventSummaries"][0]

    notes = ssm.list_timeline_events(
        incidentRecordArn=arn,
        filters=[
            {"key": "eventType", "condition": {"equals": {"stringValues": ["Note"]}}},
            {"key": "eventTime", "condition": {"after": 1_999_999_999}},
        ],
    )["eventSummaries"]
    assert len(notes) == 2
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        ssm.list_timeline_events(
            incidentRecordArn=arn, filters=[{"key": "colour", "condition": {"equals": {"stringValues": ["x"]}}}]
        )
    assert error_of(excinfo)[:2] == ("ValidationException", 400)
