"""POST /api/startIncident: the StartIncident request shape, checked like the web form, answered in the envelope."""

import json
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from incidents import roles, validators
from incidents.models import AuditEvent, Declaration
from incidents.selectors.declarations import declaration_start_request
from tests.api.conftest import ALARM_ARN, INSTANCE_ARN, assert_error, link, resource
from tests.helpers import declare_post

pytestmark = pytest.mark.django_db


def body(plans, **fields) -> dict:
    return {"responsePlanArn": plans["website-outage"].arn, **fields}


def test_a_script_declares_with_the_start_incident_shape(api, plans):
    response = api.start(
        body(
            plans,
            title="Checkout returns 500",
            impact=2,
            relatedItems=[link("https://status.example.com/42", "Status page"), resource(INSTANCE_ARN)],
        )
    )

    assert response.status_code == 202, response.content
    payload = response.json()
    assert payload["success"] is True
    data = payload["data"]
    declaration = Declaration.objects.get()
    assert data["id"] == str(declaration.pk)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["created_at"])
    assert data["state"] == "queued"
    assert data["status_url"].endswith(f"/api/declarations/{declaration.pk}")
    assert response["Location"] == f"/api/declarations/{declaration.pk}"

    assert declaration.source == Declaration.Source.API
    assert declaration.declared_by.username == "sam.support"
    assert (declaration.title, declaration.impact) == ("Checkout returns 500", 2)
    items = list(declaration.related_items.values_list("kind", "title", "value"))
    assert items == [("link", "Status page", "https://status.example.com/42"), ("resource", "", INSTANCE_ARN)]
    event = declaration.audit_events.get()
    assert (event.action, event.actor_label, event.details["source"]) == ("declaration.queued", "sam.support", "api")
    assert event.ip_address == "127.0.0.1"


def test_left_out_title_and_impact_are_the_plans(api, plans):
    response = api.start(body(plans, title=None, impact=None))
    assert response.status_code == 202
    declaration = Declaration.objects.get()
    assert (declaration.title, declaration.impact) == ("", None)
    assert declaration.effective_title == plans["website-outage"].template_title


INVALID_FIELDS = [
    ({"responsePlanArn": None}, "responsePlanArn", "This field is required."),
    ({"responsePlanArn": "notanarn"}, "responsePlanArn", "Enter a response plan ARN"),
    ({"responsePlanArn": 42}, "responsePlanArn", "Must be a string."),
    (
        {"responsePlanArn": "arn:aws:ssm-incidents::123456789012:response-plan/nope"},
        "responsePlanArn",
        "No response plan with this ARN is available to you",
    ),
    ({"title": "x" * 201}, "title", "A title can be at most 200 characters (it has 201)."),
    ({"title": "two\nlines"}, "title", "Remove the control characters"),
    ({"title": 5}, "title", "Must be a string."),
    ({"impact": 9}, "impact", "Choose an impact from 1 (critical) to 5 (no impact)."),
    ({"impact": "2"}, "impact", "Must be a whole number"),
    ({"impact": True}, "impact", "Must be a whole number"),
    ({"impact": 2.5}, "impact", "Must be a whole number"),
    ({"relatedItems": {"url": "https://x.example"}}, "relatedItems", "Must be a list"),
    ({"relatedItems": [link("https://ok.example")] * 101}, "relatedItems", "at most 100 related items"),
    (
        {"relatedItems": [link("https://a.example"), link("https://b.example"), link("ftp://files.example/x")]},
        "relatedItems[2].identifier.value.url",
        "Only http:// and https:// links can be attached, not ftp: links.",
    ),
    ({"relatedItems": [link("status page")]}, "relatedItems[0].identifier.value.url", "Enter a complete web address"),
    ({"relatedItems": [link("  ")]}, "relatedItems[0].identifier.value.url", "This field is required."),
    ({"relatedItems": [resource("i-0abc")]}, "relatedItems[0].identifier.value.arn", "Enter an AWS resource ARN"),
    (
        {"relatedItems": [{"identifier": {"type": "ATTACHMENT", "value": {"arn": "arn:aws:s3:::b/k"}}}]},
        "relatedItems[0].identifier.type",
        "files can be attached in the web form only",
    ),
    (
        {"relatedItems": [{"identifier": {"type": "METRIC", "value": {"metricDefinition": "{}"}}}]},
        "relatedItems[0].identifier.type",
        "“METRIC” cannot be sent here",
    ),
    (
        {"relatedItems": [{**link("https://x.example"), "generatedId": "related-item/OTHER/" + "A" * 32}]},
        "relatedItems[0].generatedId",
        "Incident Manager assigns generatedId itself",
    ),
    (
        {"relatedItems": [{"identifier": {"type": "OTHER", "value": {"arn": INSTANCE_ARN}}}]},
        "relatedItems[0].identifier.value.arn",
        "Unknown field. Allowed here: url.",
    ),
    ({"relatedItems": [{"title": "no identifier"}]}, "relatedItems[0].identifier", "This field is required."),
    (
        {"relatedItems": [link("https://x.example", "t" * 201)]},
        "relatedItems[0].title",
        "A title can be at most 200 characters (it has 201).",
    ),
    (
        {"triggerDetails": {"source": "aws.cloudwatch", "timestamp": "2026-01-01T00:00:00Z"}},
        "triggerDetails.source",
        "reserved for AWS",
    ),
    (
        {"triggerDetails": {"source": "c" * 51, "timestamp": "2026-01-01T00:00:00Z"}},
        "triggerDetails.source",
        "at most 50 characters (it has 51)",
    ),
    ({"triggerDetails": {"source": "com.example.alerting"}}, "triggerDetails.timestamp", "This field is required."),
    (
        {"triggerDetails": {"source": "com.example", "timestamp": "yesterday"}},
        "triggerDetails.timestamp",
        "Give an ISO 8601 date and time with a time zone",
    ),
    (
        {"triggerDetails": {"source": "com.example", "timestamp": "2026-01-01T10:00:00"}},
        "triggerDetails.timestamp",
        "Give an ISO 8601 date and time with a time zone",
    ),
    (
        {"triggerDetails": {"source": "com.example", "timestamp": "2999-01-01T10:00:00Z"}},
        "triggerDetails.timestamp",
        "more than a day in the future",
    ),
    (
        {"triggerDetails": {"source": "com.example", "timestamp": "2026-01-01T00:00:00Z", "rawData": "r" * 10001}},
        "triggerDetails.rawData",
        "rawData can be at most 10000 characters (it has 10001).",
    ),
    (
        {"triggerDetails": {"source": "com.example", "timestamp": "2026-01-01T00:00:00Z", "triggerArn": "alarm"}},
        "triggerDetails.triggerArn",
        "Enter the ARN of what triggered it, such as arn:aws:cloudwatch",
    ),
    ({"triggerDetails": "com.example"}, "triggerDetails", "Must be a JSON object."),
    ({"summary": "not a StartIncident field"}, "summary", "Unknown field. Allowed here: responsePlanArn, title"),
    ({"clientToken": ""}, "clientToken", "Give 1 to 128 characters"),
    ({"clientToken": "k" * 129}, "clientToken", "Give 1 to 128 characters, or leave it out (it has 129)."),
]


@pytest.mark.parametrize(("fields", "path", "message"), INVALID_FIELDS, ids=[case[1] for case in INVALID_FIELDS])
def test_each_invalid_field_is_reported_at_its_path_and_nothing_is_stored(api, plans, fields, path, message):
    response = api.start(body(plans, **fields))

    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert message in error["details"][path]
    assert Declaration.objects.count() == 0
    assert AuditEvent.objects.filter(action="declaration.queued").count() == 0


def test_every_problem_is_reported_at_once(api, plans):
    response = api.start({"responsePlanArn": "nope", "title": 1, "impact": 0, "relatedItems": [link("x")]})
    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"responsePlanArn", "title", "impact", "relatedItems[0].identifier.value.url"}


def test_the_api_and_the_web_form_word_the_same_mistake_the_same_way(api, support_client, plans):
    plan = plans["website-outage"]
    long_title, bad_url = "x" * 250, "javascript:alert(1)"
    web = support_client.post(
        "/declare/", declare_post(plan, title=long_title, items=[{"kind": "link", "value": bad_url}])
    )
    api_details = api.start(body(plans, title=long_title, relatedItems=[link(bad_url)])).json()["error"]["details"]

    page = web.content.decode()
    assert api_details["title"] in page
    assert api_details["relatedItems[0].identifier.value.url"] in page


def test_plans_hidden_deleted_or_closed_to_the_callers_team_cannot_be_used(api, plans):
    hidden, deleted, closed = plans["website-outage"], plans["payments-degraded"], plans["security-event"]
    hidden.is_visible = False
    hidden.save()
    deleted.deleted_in_aws = True
    deleted.save()
    closed.allowed_groups.add(Group.objects.get_or_create(name=roles.MANAGER)[0])

    for plan in (hidden, deleted, closed):
        error = assert_error(api.start({"responsePlanArn": plan.arn}), 400, "VALIDATION_ERROR")
        assert "No response plan with this ARN is available to you" in error["details"]["responsePlanArn"]
    assert Declaration.objects.count() == 0


def test_malformed_json_is_refused_with_where_it_broke(api, plans):
    error = assert_error(api.post("/api/startIncident", raw='{"responsePlanArn": '), 400, "MALFORMED_REQUEST")
    assert "not valid JSON" in error["message"]
    assert error["details"] == {"line": 1, "column": 21}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        ('{"title": "a", "title": "b"}', "the field “title” appears twice"),
        ('{"impact": NaN}', "NaN is not a JSON number"),
    ],
)
def test_bodies_json_cannot_represent_faithfully_are_refused(api, raw, message):
    error = assert_error(api.post("/api/startIncident", raw=raw), 400, "MALFORMED_REQUEST")
    assert message in error["message"]


def test_an_empty_body_is_malformed(api):
    # Django's test client leaves the Content-Type out when there is no body; a script's curl -d '' would not.
    response = api.client.generic(
        "POST", "/api/startIncident", headers={"Authorization": f"Bearer {api.token}"}, CONTENT_TYPE="application/json"
    )
    error = assert_error(response, 400, "MALFORMED_REQUEST")
    assert "The body is empty" in error["message"]


@pytest.mark.parametrize("payload", [[], "text", 5, None])
def test_the_body_must_be_a_json_object(api, payload):
    error = assert_error(api.post("/api/startIncident", payload), 400, "VALIDATION_ERROR")
    assert error["details"] == {"body": "Must be a JSON object."}


def test_a_body_that_is_not_json_gets_415(api, plans):
    response = api.post(
        "/api/startIncident", raw=f"responsePlanArn={plans['website-outage'].arn}", content_type="text/plain"
    )
    error = assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "Content-Type: application/json" in error["message"]


def test_an_oversized_body_gets_413(api, plans, settings):
    settings.PORTAL_API_MAX_BODY_BYTES = 1000
    response = api.start(body(plans, title="x" * 2000))
    assert assert_error(response, 413, "PAYLOAD_TOO_LARGE")["details"] == {"max_bytes": 1000}
    assert Declaration.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/api/startIncident", "POST"),
        ("put", "/api/startIncident", "POST"),
        ("post", "/api/responsePlans", "GET"),
        ("delete", "/api/declarations/1", "GET, PATCH"),
        ("options", "/api/responsePlans", "GET"),
        ("head", "/api/declarations/1", "GET, PATCH"),
    ],
)
def test_wrong_methods_get_405_with_allow(api, method, path, allow):
    response = getattr(api.client, method)(path, headers={"Authorization": f"Bearer {api.token}"})
    if method == "head":  # no body to read the envelope from
        assert (response.status_code, response["Content-Type"]) == (405, "application/json")
    else:
        assert_error(response, 405, "METHOD_NOT_ALLOWED")
    # The methods in any order (they follow the order in which the operations were registered).
    assert sorted(response["Allow"].split(", ")) == allow.split(", ")


def test_any_other_method_gets_405_in_the_envelope(api):
    response = api.client.generic("PROPFIND", "/api/startIncident", headers={"Authorization": f"Bearer {api.token}"})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response["Allow"] == "POST"


def test_unknown_api_paths_answer_in_the_envelope(api):
    assert_error(api.get("/api/startincident"), 404, "NOT_FOUND")
    assert_error(api.get("/api/declarations/abc"), 404, "NOT_FOUND")
    # Found by the schema fuzzer: a line break in the path once fell through to the HTML 404 page.
    assert_error(api.get("/api/declarations/%0A1"), 404, "NOT_FOUND")
    assert_error(api.get("/api/%0A"), 404, "NOT_FOUND")


def test_an_unexpected_failure_is_a_500_that_reveals_nothing(api, plans, monkeypatch, caplog):
    def explode(**kwargs):
        raise RuntimeError("password=hunter2 at db.internal:5432")

    monkeypatch.setattr("incidents.api.views.declaration_create", explode)
    response = api.start(body(plans))

    error = assert_error(response, 500, "INTERNAL_ERROR")
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    assert error["details"] == {}
    assert "hunter2" in caplog.text  # operators still see it in the log


def test_the_callers_trigger_details_are_kept_for_aws(api, plans):
    trigger = {
        "source": "com.example.alerting",
        "timestamp": "2026-11-29T17:30:00+01:00",
        "rawData": '{"alarm": "checkout-errors"}',
        "triggerArn": ALARM_ARN,
    }
    assert api.start(body(plans, triggerDetails=trigger)).status_code == 202
    declaration = Declaration.objects.get()
    assert declaration.trigger_details == {**trigger, "timestamp": "2026-11-29T16:30:00+00:00"}


def test_a_caller_cannot_name_someone_else_as_the_declarer(api, plans, support_user):
    """The issue's case: rawData saying the boss declared it. AWS is told the token's owner did, by the portal."""
    forged = json.dumps({"declaredBy": "ceo", "declarationId": 1, "declarationUrl": "https://evil.example/"})
    trigger = {"source": "com.example.alerting", "timestamp": "2026-11-29T16:30:00Z", "rawData": forged}
    assert api.start(body(plans, triggerDetails=trigger)).status_code == 202

    sent = declaration_start_request(Declaration.objects.get())["triggerDetails"]
    assert sent["source"] == settings.PORTAL_TRIGGER_SOURCE
    raw_data = json.loads(sent["rawData"])
    assert raw_data["declaredBy"] == support_user.username
    assert raw_data["declarationUrl"].endswith(f"/declarations/{Declaration.objects.get().pk}/")
    assert raw_data["caller"] == {"source": "com.example.alerting", "rawData": forged}
    assert sent["timestamp"].isoformat() == "2026-11-29T16:30:00+00:00"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("com.example.incident-portal", "is the portal's own source"),
        (" COM.Example.Incident-Portal ", "is the portal's own source"),
        (" aws.ssm", "reserved for AWS"),
        ("AWS.cloudwatch", "reserved for AWS"),
        ("\uff41\uff57\uff53.ssm", "reserved for AWS"),  # full-width "aws"
        ("\u200baws.ssm", "Remove the invisible character U+200B"),
    ],
)
def test_the_portals_own_source_and_aws_prefixes_are_refused_however_written(api, plans, source, message):
    trigger = {"source": source, "timestamp": "2026-11-29T16:30:00Z"}
    error = assert_error(api.start(body(plans, triggerDetails=trigger)), 400, "VALIDATION_ERROR")
    assert message in error["details"]["triggerDetails.source"]
    assert not Declaration.objects.exists()


def test_raw_data_must_leave_room_for_the_declarer(api, plans):
    trigger = {"source": "com.example.alerting", "timestamp": "2026-11-29T16:30:00Z", "rawData": '"' * 5000}
    error = assert_error(api.start(body(plans, triggerDetails=trigger)), 400, "VALIDATION_ERROR")
    assert "counting the backslashes JSON adds" in error["details"]["triggerDetails.rawData"]
    assert "(it has 10000)" in error["details"]["triggerDetails.rawData"]
    assert not Declaration.objects.exists()


def test_the_longest_raw_data_that_fits_is_sent_whole_within_awss_limit(api, plans, support_user):
    room = validators.caller_trigger_room() - len(json.dumps("com.example.alerting")) - 2
    raw = "r" * room
    trigger = {"source": "com.example.alerting", "timestamp": "2026-11-29T16:30:00Z", "rawData": raw}
    too_long = {**trigger, "rawData": raw + "r"}
    assert_error(api.start(body(plans, triggerDetails=too_long)), 400, "VALIDATION_ERROR")
    assert api.start(body(plans, triggerDetails=trigger)).status_code == 202
    sent = declaration_start_request(Declaration.objects.get())["triggerDetails"]["rawData"]
    assert json.loads(sent)["caller"]["rawData"] == raw
    assert len(sent) <= validators.TRIGGER_RAW_DATA_MAX_LENGTH
