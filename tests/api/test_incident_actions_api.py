"""The API's actions on a started incident, all the way through the worker and the sandbox, with startIncident's
envelope, roles and idempotency rules."""

import json
import time

import pytest

from incidents.models import Declaration
from incidents.services.declarations import declaration_create
from tests.api.conftest import INSTANCE_ARN, api_for, assert_error, link, resource
from tests.helpers import pretend_started, started_declaration


def poll_action(api, status_url: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = api.get(status_url).json()["data"]
        if data["state"] in ("sent", "failed"):
            return data
        time.sleep(0.1)
    raise AssertionError(f"{status_url} stayed {data['state']}")


def accepted(response, status: int = 202) -> dict:
    assert response.status_code == status, response.content.decode()
    body = response.json()
    assert set(body) == {"success", "data"} and body["success"] is True
    return body["data"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_script_adds_a_note_and_items_changes_and_resolves_the_incident(
    api, support_user, plans, sandbox, ssm_incidents
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    base = f"/api/declarations/{declaration.pk}"
    arn = declaration.incident_record_arn

    note = accepted(api.post(f"{base}/notes", {"text": "Alarm cleared"}, **{"Idempotency-Key": "note-1"}))
    assert (note["kind"], note["state"], note["requested_by"]) == ("note", "queued", "sam.support")
    items = accepted(
        api.post(f"{base}/relatedItems", {"relatedItems": [link("https://x.example.com", "X"), resource(INSTANCE_ARN)]})
    )
    update = accepted(api.patch(base, {"impact": 1, "summary": "All regions"}))
    for answer in (note, items, update):
        assert poll_action(api, answer["status_url"])["state"] == "sent"
    resolved = accepted(api.post(f"{base}/resolve", {"note": "Done"}))
    assert poll_action(api, resolved["status_url"])["state"] == "sent"

    record = ssm_incidents.get_incident_record(arn=arn)["incidentRecord"]
    assert (record["impact"], record["summary"], record["status"]) == (1, "All regions", "RESOLVED")
    events = sandbox.server.emulator.timeline[arn]
    notes = [json.loads(e["eventData"]) for e in events if e["eventType"] == "Custom Event"]
    assert notes == [
        "Alarm cleared\n— sam.support, via the incident portal",
        "Done\n— sam.support, via the incident portal",
    ]
    related = ssm_incidents.list_related_items(incidentRecordArn=arn)["relatedItems"]
    assert [item["identifier"]["type"] for item in related] == ["OTHER", "INVOLVED_RESOURCE"]
    # The declaration lists its actions, newest first.
    data = api.get(base).json()["data"]
    assert [action["kind"] for action in data["actions"]] == ["resolve", "update", "related_items", "note"]
    assert {action["state"] for action in data["actions"]} == {"sent"}
    # A resolved incident is not resolved twice.
    assert_error(api.post(f"{base}/resolve", {"note": "Again"}), 409, "CONFLICT")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_refused_call_is_reported_as_failed_with_awss_reason(api, support_user, plans, sandbox):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    sandbox.inject(operation="UpdateRelatedItems", deny_next=1)

    answer = accepted(
        api.post(f"/api/declarations/{declaration.pk}/relatedItems", {"relatedItems": [link("https://x.example.com")]})
    )

    data = poll_action(api, answer["status_url"])
    assert data["state"] == "failed"
    assert data["failure"]["code"] == "AccessDeniedException"
    assert "ssm-incidents:UpdateRelatedItems" in data["failure"]["reason"]


@pytest.fixture
def started(db, support_user, plans) -> Declaration:
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Down")
    return pretend_started(declaration)


def test_the_same_key_replays_the_first_action_and_another_request_with_it_conflicts(api, started):
    path = f"/api/declarations/{started.pk}/notes"
    first = accepted(api.post(path, {"text": "Once", "clientToken": "k-1"}))
    replay = api.post(path, {"text": "Once"}, **{"Idempotency-Key": "k-1"})

    assert accepted(replay, 200)["id"] == first["id"]
    assert replay["Idempotent-Replayed"] == "true"
    assert replay["Location"] == f"/api/declarations/{started.pk}/actions/{first['id']}"
    assert_error(api.post(path, {"text": "Different"}, **{"Idempotency-Key": "k-1"}), 409, "CONFLICT")
    assert_error(api.patch(f"/api/declarations/{started.pk}", {"title": "T", "clientToken": "k-1"}), 409, "CONFLICT")
    assert started.actions.count() == 1


def test_who_may_act_through_the_api(started, other_support_user, manager_user, portal_admin_user):
    path = f"/api/declarations/{started.pk}/notes"
    assert_error(api_for(other_support_user).post(path, {"text": "Me?"}), 404, "NOT_FOUND")
    assert_error(api_for(other_support_user).get(f"{path[:-6]}/actions/1"), 404, "NOT_FOUND")
    for user in (manager_user, portal_admin_user):
        assert accepted(api_for(user).post(path, {"text": f"From {user.username}"}))["requested_by"] == user.username


def test_an_incident_not_started_yet_cannot_be_acted_on(api, support_user, plans):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    error = assert_error(api.post(f"/api/declarations/{declaration.pk}/resolve", {"note": "x"}), 409, "CONFLICT")
    assert "not started yet" in error["message"]


@pytest.mark.parametrize(
    ("method", "suffix", "body", "field"),
    [
        ("post", "/notes", {"text": ""}, "text"),
        ("post", "/notes", {"text": "a", "extra": 1}, "extra"),
        ("post", "/relatedItems", {"relatedItems": []}, "relatedItems"),
        (
            "post",
            "/relatedItems",
            {"relatedItems": [link("ftp://x.example.com")]},
            "relatedItems[0].identifier.value.url",
        ),
        ("patch", "", {}, "title"),
        ("patch", "", {"impact": 7}, "impact"),
        ("post", "/resolve", {}, "note"),
    ],
)
def test_invalid_requests_name_the_field(api, started, method, suffix, body, field):
    response = getattr(api, method)(f"/api/declarations/{started.pk}{suffix}", body)
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert field in error["details"], error
    assert not started.actions.exists()
