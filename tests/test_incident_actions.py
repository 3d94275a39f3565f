"""Acting on a started incident from its declaration's page — a note, related items, a new title / impact /
summary, resolving — all the way: page → PostgreSQL → Redis → Celery worker → boto3 → sandbox; and what fails."""

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from incidents.models import AttachmentState, Declaration, IncidentAction, RelatedItem
from incidents.services.actions import incident_note_add
from incidents.services.declarations import declaration_create
from incidents.services.sweeper import declarations_sweep
from portal.celery import app
from tests.helpers import pretend_started, started_declaration, upload, wait_for_action

INSTANCE_ARN = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"


def url(name: str, declaration: Declaration) -> str:
    return reverse(f"incidents:{name}", kwargs={"declaration_id": declaration.pk})


def form(**fields) -> dict:
    return {"idempotency_key": "0" * 31 + "1", **fields}


def last_action(declaration: Declaration) -> IncidentAction:
    return declaration.actions.order_by("-id").first()


def timeline(sandbox, arn: str) -> list[dict]:
    return sandbox.server.emulator.timeline[arn]


def notes_on(sandbox, arn: str) -> list[str]:
    return [json.loads(event["eventData"]) for event in timeline(sandbox, arn) if event["eventType"] == "Custom Event"]


# --- Each action, end to end -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_note_reaches_the_timeline_as_a_custom_event_naming_the_person(support_client, support_user, plans, sandbox):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])

    response = support_client.post(url("declaration-note", declaration), form(text="Rolled back the 14:02 deploy"))

    assert response.status_code == 302
    assert response["Location"].endswith(declaration.get_absolute_url() + "#incident-actions")
    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert (action.kind, action.state, action.attempts) == ("note", "sent", 1)
    assert notes_on(sandbox, declaration.incident_record_arn) == [
        "Rolled back the 14:02 deploy\n— sam.support, via the incident portal"
    ]
    (call,) = sandbox.calls("CreateTimelineEvent")
    assert call["params"]["clientToken"] == f"{action.client_token}-note"
    trail = list(declaration.audit_events.values_list("action", "actor_label"))
    assert ("incident_action.queued", "sam.support") in trail and ("incident_action.sent", "system") in trail
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert 'data-kind="note" data-state="sent"' in page and "Rolled back the 14:02 deploy" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_links_arns_and_files_are_added_to_the_incident_with_files_in_s3(
    support_client, support_user, plans, sandbox, ssm_incidents, s3
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    data = form(
        links=f"Checkout errors https://grafana.example.com/d/checkout\n\n{INSTANCE_ARN}",
        uploads=upload("after-deploy.log", b"14:02 deploy\n14:03 errors\n"),
    )

    response = support_client.post(url("declaration-items", declaration), data)

    assert response.status_code == 302
    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert action.state == "sent", action.failure_reason
    file_item = declaration.related_items.get(kind=RelatedItem.Kind.FILE)
    assert file_item.attachment_state == AttachmentState.ATTACHED
    assert (
        s3.get_object(Bucket=file_item.s3_bucket, Key=file_item.s3_key)["Body"].read()
        == b"14:02 deploy\n14:03 errors\n"
    )
    related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    assert [(item["identifier"]["type"], item["identifier"]["value"], item.get("title")) for item in related] == [
        ("OTHER", {"url": "https://grafana.example.com/d/checkout"}, "Checkout errors"),
        ("INVOLVED_RESOURCE", {"arn": INSTANCE_ARN}, None),
        ("ATTACHMENT", {"arn": file_item.value}, "after-deploy.log"),
    ]
    # One call per item, each with a client token of its own.
    tokens = [call["params"]["clientToken"] for call in sandbox.calls("UpdateRelatedItems")]
    assert len(set(tokens)) == 3 and all(token.startswith(action.client_token) for token in tokens)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_title_impact_and_summary_change_in_incident_manager(support_client, support_user, plans, ssm_incidents):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])

    response = support_client.post(
        url("declaration-update", declaration),
        form(title="Checkout down in EU only", impact="2", summary="EU card payments fail since 14:02."),
    )

    assert response.status_code == 302
    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert action.payload == {
        "title": "Checkout down in EU only",
        "impact": 2,
        "summary": "EU card payments fail since 14:02.",
    }
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert (record["title"], record["impact"], record["summary"]) == (
        "Checkout down in EU only",
        2,
        "EU card payments fail since 14:02.",
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_resolving_puts_the_closing_note_on_the_timeline_and_resolves_the_record(
    support_client, support_user, plans, sandbox, ssm_incidents
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])

    response = support_client.post(
        url("declaration-resolve", declaration), form(note="Rolled back; all green at 14:40.")
    )

    assert response.status_code == 302
    wait_for_action(last_action(declaration), "sent", "failed")
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert record["status"] == "RESOLVED"
    assert notes_on(sandbox, declaration.incident_record_arn) == [
        "Rolled back; all green at 14:40.\n— sam.support, via the incident portal"
    ]
    declaration.refresh_from_db()
    assert declaration.aws_status == "RESOLVED" and declaration.resolved_at is not None
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert 'id="incident-resolved"' in page and 'id="resolve-incident"' not in page
    # Resolving again is refused, and nothing more is queued.
    again = support_client.post(url("declaration-resolve", declaration), form(note="Again", idempotency_key="f" * 32))
    assert again.status_code == 400 and "already resolved" in again.content.decode()
    assert declaration.actions.count() == 1


# --- When AWS fails --------------------------------------------------------------------------------------


FAILING_CALLS = [
    ("declaration-note", {"text": "A note"}, "CreateTimelineEvent"),
    ("declaration-items", {"links": "https://status.example.com"}, "UpdateRelatedItems"),
    ("declaration-update", {"title": "New title"}, "UpdateIncidentRecord"),
    ("declaration-resolve", {"note": "Fixed"}, "CreateTimelineEvent"),
    ("declaration-resolve", {"note": "Fixed"}, "UpdateIncidentRecord"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
@pytest.mark.parametrize(("view", "fields", "operation"), FAILING_CALLS)
def test_a_refused_call_fails_the_action_at_once_with_a_plain_reason(
    view, fields, operation, support_client, support_user, plans, sandbox, ssm_incidents
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    sandbox.inject(operation=operation, deny_next=1)

    support_client.post(url(view, declaration), form(**fields))

    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert (action.state, action.failure_code, action.attempts) == ("failed", "AccessDeniedException", 1)
    assert f"ssm-incidents:{operation}" in action.failure_reason
    failed = declaration.audit_events.get(action="incident_action.failed")
    assert failed.details["code"] == "AccessDeniedException"
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "AWS refused: the portal is not allowed to change this incident." in page
    assert "AccessDeniedException" in page
    if operation == "UpdateIncidentRecord" and view == "declaration-resolve":
        record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
        assert record["status"] == "OPEN"
        declaration.refresh_from_db()
        assert declaration.aws_status != "RESOLVED"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_transient_failure_is_retried_with_the_same_client_token_until_it_gets_through(
    support_client, support_user, plans, sandbox
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    # Every one of botocore's attempts in the worker's first try fails; the task's retry gets through.
    sandbox.inject(operation="CreateTimelineEvent", error_next=settings.AWS_MAX_ATTEMPTS)

    support_client.post(url("declaration-note", declaration), form(text="Second try"))

    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert (action.state, action.attempts) == ("sent", 2)
    assert declaration.audit_events.filter(action="incident_action.attempt_failed").count() == 1
    tokens = {call["params"]["clientToken"] for call in sandbox.calls("CreateTimelineEvent")}
    assert tokens == {f"{action.client_token}-note"}
    assert len(notes_on(sandbox, declaration.incident_record_arn)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_lasting_outage_gives_up_after_the_bounded_attempts_and_says_so(support_client, support_user, plans, sandbox):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    sandbox.inject(operation="UpdateIncidentRecord", error_rate=1.0)

    support_client.post(url("declaration-update", declaration), form(impact="1"))

    action = wait_for_action(last_action(declaration), "sent", "failed", timeout=40)
    limit = settings.PORTAL_START_MAX_RETRIES + 1
    assert (action.state, action.failure_code, action.attempts) == ("failed", "InternalServerException", limit)
    assert action.failure_reason.endswith(f"(gave up after {limit} attempts)")
    page = support_client.get(declaration.get_absolute_url()).content.decode()
    assert "AWS was busy or could not be reached" in page


# --- The outbox ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_action_whose_message_was_lost_is_redispatched_by_the_sweeper(
    support_user, plans, django_capture_on_commit_callbacks
):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])
    pretend_started(declaration)
    action, _ = incident_note_add(declaration=declaration, requested_by=support_user, text="Lost")
    # As when the broker was down: the failed publish cleared the hand-over time.
    IncidentAction.objects.filter(pk=action.pk).update(dispatched_at=None)
    Declaration.objects.filter(pk=declaration.pk).update(dispatched_at=timezone.now())

    soon = timezone.now() + timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER / 2)
    assert declarations_sweep(now=soon).actions == []
    later = timezone.now() + timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER + 1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = declarations_sweep(now=later)

    assert result.actions == [action.pk]
    assert len(callbacks) == 1
    event = declaration.audit_events.get(action="incident_action.redispatched")
    assert event.details["client_token"] == action.client_token
    # Claimed: the next sweep leaves it alone until the threshold passes again.
    assert declarations_sweep(now=later).actions == []


# --- Who may act, and what the forms refuse ------------------------------------------------------------------


@pytest.fixture
def declared(db, support_user, plans) -> Declaration:
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Down")
    return pretend_started(declaration)


def test_the_declarer_managers_and_admins_may_act_others_see_nothing(
    declared, support_client, manager_client, portal_admin_client, other_support_user
):
    other = Client()
    other.force_login(other_support_user)
    assert other.post(url("declaration-note", declared), form(text="Mine?")).status_code == 404
    assert other.get(url("declaration-actions", declared)).status_code == 404
    for number, client in enumerate((support_client, manager_client, portal_admin_client)):
        response = client.post(url("declaration-note", declared), form(text="Note", idempotency_key=f"{number:032x}"))
        assert response.status_code == 302
    assert sorted(declared.actions.values_list("requested_by__username", flat=True)) == [
        "ada.admin",
        "maya.manager",
        "sam.support",
    ]
    page = manager_client.get(declared.get_absolute_url()).content.decode()
    assert 'id="add-note"' in page and 'id="resolve-incident"' in page


def test_nothing_can_be_done_before_the_incident_started(support_client, support_user, plans):
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"])

    response = support_client.post(url("declaration-note", declaration), form(text="Too early"))

    assert response.status_code == 400
    assert "has not started yet" in response.content.decode()
    assert not declaration.actions.exists()
    assert 'id="add-note"' not in support_client.get(declaration.get_absolute_url()).content.decode()


def test_sending_the_same_form_twice_queues_one_action(declared, support_client):
    first = support_client.post(url("declaration-note", declared), form(text="Once"))
    second = support_client.post(url("declaration-note", declared), form(text="Once"))
    assert first.status_code == second.status_code == 302
    assert declared.actions.count() == 1
    # The same form's key with other words is refused, not answered with the first note.
    other = support_client.post(url("declaration-note", declared), form(text="Different"))
    assert other.status_code == 400 and "already used" in other.content.decode()


@pytest.mark.parametrize(
    ("view", "fields", "message"),
    [
        ("declaration-note", {"text": "  "}, "Write the note."),
        ("declaration-note", {"text": "bad\x07bell"}, "control characters"),
        ("declaration-items", {"links": "Docs ftp://files.example.com/x"}, "Line 1: Only http:// and https://"),
        ("declaration-items", {"links": "arn:aws:nope"}, "Line 1: Enter an AWS resource ARN"),
        ("declaration-items", {"links": ""}, "Add at least one link, ARN or file."),
        ("declaration-update", {}, "Change at least one of the title, the impact or the summary."),
        ("declaration-update", {"impact": "9"}, "Choose an impact from 1 (critical) to 5"),
        ("declaration-resolve", {"note": ""}, "Write a closing note"),
    ],
)
def test_invalid_input_comes_back_with_the_reason_and_what_was_typed(declared, support_client, view, fields, message):
    response = support_client.post(url(view, declared), form(**fields))

    page = response.content.decode()
    assert response.status_code == 400
    assert message in page
    assert not declared.actions.exists()
    for value in fields.values():
        if value.strip() and "\x07" not in value:
            assert value in page


def test_a_note_keeps_its_line_breaks(declared, support_client):
    support_client.post(url("declaration-note", declared), form(text="First line\nSecond line"))
    assert last_action(declared).payload == {"text": "First line\nSecond line"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_an_action_queued_while_the_broker_was_down_is_sent_after_the_sweep(
    support_client, support_user, plans, sandbox, monkeypatch
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(app, "send_task", broker_down)
        response = support_client.post(url("declaration-note", declaration), form(text="Sent later"))
    # The person is answered: the action is stored and waits for the sweeper.
    assert response.status_code == 302
    action = last_action(declaration)
    assert (action.state, action.dispatched_at) == ("queued", None)

    later = timezone.now() + timedelta(seconds=settings.PORTAL_SWEEP_QUEUED_AFTER + 1)
    assert declarations_sweep(now=later).actions == [action.pk]

    assert wait_for_action(action, "sent", "failed").state == "sent"
    assert notes_on(sandbox, declaration.incident_record_arn) == ["Sent later\n— sam.support, via the incident portal"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
@pytest.mark.parametrize(
    ("view", "fields", "operation"),
    [
        ("declaration-note", {"text": "Once only"}, "CreateTimelineEvent"),
        ("declaration-items", {"links": "https://status.example.com"}, "UpdateRelatedItems"),
    ],
)
def test_an_answer_lost_on_the_way_back_is_retried_without_doing_it_twice(
    view, fields, operation, support_client, support_user, plans, sandbox, ssm_incidents
):
    declaration = started_declaration(declared_by=support_user, plan=plans["website-outage"])
    sandbox.inject(operation=operation, lose_response_next=1)

    support_client.post(url(view, declaration), form(**fields))

    action = wait_for_action(last_action(declaration), "sent", "failed")
    assert action.state == "sent"
    calls = sandbox.calls(operation)
    assert len(calls) == 2 and len({call["params"]["clientToken"] for call in calls}) == 1
    if operation == "CreateTimelineEvent":
        assert notes_on(sandbox, declaration.incident_record_arn) == [
            "Once only\n— sam.support, via the incident portal"
        ]
    else:
        related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
        assert len(related) == 1
