"""Joining an incident from the declare page instead of declaring it again: the person's typed items and note go to
the incident already started; nothing new is started."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from incidents.models import Declaration, RelatedItem
from incidents.services.declarations import declaration_create
from tests.helpers import declare_post, pretend_started, started_declaration, upload, wait_for_action


def join_url(declaration: Declaration) -> str:
    return reverse("incidents:declaration-join", kwargs={"declaration_id": declaration.pk})


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_joining_adds_the_typed_items_and_note_to_the_started_incident_and_starts_nothing(
    support_client, support_user, plans, sandbox, ssm_incidents
):
    plan = plans["website-outage"]
    declaration = started_declaration(declared_by=support_user, plan=plan)
    starts = len(sandbox.calls("StartIncident"))
    page = support_client.get("/declare/", {"plan": plan.name}).content.decode()
    assert f'formaction="{join_url(declaration)}"' in page
    assert 'name="join_note"' in page

    data = declare_post(
        plan,
        title="Checkout broken again",
        items=[
            {"kind": "link", "value": "https://status.example.com/checkout", "title": "Status"},
            {"kind": "file", "file": upload("errors.txt", b"500 500 500\n")},
        ],
    )
    response = support_client.post(join_url(declaration), {**data, "join_note": "EU customers see 500s"})

    assert response.status_code == 302
    assert response["Location"] == declaration.get_absolute_url() + "#incident-actions"
    note, items = sorted(declaration.actions.all(), key=lambda action: action.kind)
    assert (note.kind, items.kind) == ("note", "related_items")
    for action in (note, items):
        assert wait_for_action(action, "sent", "failed").state == "sent", action.failure_reason
    # Nothing new: no declaration, no StartIncident.
    assert Declaration.objects.count() == 1
    assert len(sandbox.calls("StartIncident")) == starts
    events = sandbox.server.emulator.timeline[declaration.incident_record_arn]
    notes = [json.loads(event["eventData"]) for event in events if event["eventType"] == "Custom Event"]
    assert notes == ["EU customers see 500s\n— sam.support, via the incident portal"]
    related = ssm_incidents.list_related_items(incidentRecordArn=declaration.incident_record_arn)["relatedItems"]
    file_item = declaration.related_items.get(kind=RelatedItem.Kind.FILE)
    assert [item["identifier"]["value"] for item in related] == [
        {"url": "https://status.example.com/checkout"},
        {"arn": file_item.value},
    ]


@pytest.fixture
def started(db, support_user, plans) -> Declaration:
    declaration, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Down")
    return pretend_started(declaration)


def test_joining_twice_with_the_same_form_queues_once(started, support_client, plans):
    data = {**declare_post(plans["website-outage"], items=[{"value": "https://a.example.com"}]), "join_note": ""}

    assert support_client.post(join_url(started), data).status_code == 302
    assert support_client.post(join_url(started), data).status_code == 302

    assert started.actions.count() == 2
    note = started.actions.get(kind="note")
    # Without a note of their own, responders still learn that someone joined, and with which title.
    assert note.payload["text"].startswith("Was about to declare this incident again")


def test_only_started_declarations_the_person_may_open_offer_the_join(support_client, support_user, plans, started):
    plan = plans["website-outage"]
    queued, _ = declaration_create(declared_by=support_user, response_plan=plan, title="Queued one")
    page = support_client.get("/declare/", {"plan": plan.name}).content.decode()
    assert f'formaction="{join_url(started)}"' in page
    assert f'formaction="{join_url(queued)}"' not in page


def test_someone_who_may_not_open_the_declaration_cannot_join_it(started, other_support_user, plans):
    other = Client()
    other.force_login(other_support_user)
    page = other.get("/declare/", {"plan": plans["website-outage"].name}).content.decode()
    assert join_url(started) not in page

    response = other.post(join_url(started), {**declare_post(plans["website-outage"]), "join_note": "Me too"})

    assert response.status_code == 404
    assert not started.actions.exists()


def test_invalid_items_come_back_on_the_incidents_own_forms(started, support_client, plans):
    data = declare_post(plans["website-outage"], items=[{"value": "ftp://files.example.com/x", "title": "Logs"}])

    response = support_client.post(join_url(started), {**data, "join_note": "Also broken"})

    page = response.content.decode()
    assert response.status_code == 400
    assert "Only http:// and https://" in page
    assert "Logs ftp://files.example.com/x" in page and "Also broken" in page
    assert not started.actions.exists()


def test_a_resolved_incident_is_shown_as_resolved_and_not_offered_for_joining(support_client, started, plans):
    Declaration.objects.filter(pk=started.pk).update(aws_status=Declaration.AwsStatus.RESOLVED)

    page = support_client.get("/declare/", {"plan": plans["website-outage"].name}).content.decode()

    entry = page[page.index('class="recent-entry"') : page.index("</li>", page.index('class="recent-entry"'))]
    assert "Resolved" in entry
    assert join_url(started) not in page
    assert 'name="join_note"' not in page


def test_joining_a_resolved_incident_is_refused_and_nothing_is_queued(support_client, started, plans):
    Declaration.objects.filter(pk=started.pk).update(aws_status=Declaration.AwsStatus.RESOLVED)
    data = declare_post(plans["website-outage"], items=[{"value": "https://a.example.com"}])

    response = support_client.post(join_url(started), {**data, "join_note": "Broken again"})

    assert response.status_code == 400
    assert "resolved" in response.content.decode()
    assert not started.actions.exists()


def test_a_drill_is_not_joined_from_the_real_declare_page_nor_a_real_incident_from_a_drill(
    support_client, support_user, plans, started
):
    drill_plan = plans["internal-tooling"]
    drill, _ = declaration_create(declared_by=support_user, response_plan=drill_plan, title="Rehearsal")
    Declaration.objects.filter(pk=drill.pk).update(is_drill=True)
    drill = pretend_started(drill, arn=started.incident_record_arn + "-drill")

    real_form = {**declare_post(plans["website-outage"]), "join_note": "Real outage"}
    drill_form = {**declare_post(drill_plan), "drill": "1", "join_note": "Only a drill"}
    for declaration, data in ((drill, real_form), (started, drill_form)):
        response = support_client.post(join_url(declaration), data)
        assert response.status_code == 400
        assert "drill" in response.content.decode()
        assert not declaration.actions.exists()


def test_files_of_attach_files_go_to_the_joined_incident_without_javascript(started, support_client, plans):
    """Without JavaScript "Attach files" posts its files as they were chosen (several in one field), not as rows."""
    data = declare_post(plans["website-outage"], items=[{"value": "https://status.example.com/checkout"}])
    data["attachments"] = [upload("app.log", b"500 500\n"), upload("db.log", b"WARN slow query\n")]

    response = support_client.post(join_url(started), {**data, "join_note": "Logs attached"})

    assert response.status_code == 302
    items = started.actions.get(kind="related_items")
    assert [(item["kind"], item["title"] or item["value"]) for item in items.payload["items"]] == [
        ("link", "https://status.example.com/checkout"),
        ("file", "app.log"),
        ("file", "db.log"),
    ]


def test_a_drill_of_a_plan_no_longer_for_drills_is_labelled_and_not_offered_for_joining(
    support_client, support_user, plans
):
    plan = plans["website-outage"]  # once a drill plan, now for real incidents
    drill, _ = declaration_create(declared_by=support_user, response_plan=plan, title="Rehearsal")
    Declaration.objects.filter(pk=drill.pk).update(is_drill=True)
    pretend_started(drill)

    page = support_client.get("/declare/", {"plan": plan.name}).content.decode()

    entry = page[page.index('class="recent-entry"') : page.index("</li>", page.index('class="recent-entry"'))]
    assert "Drill" in entry
    assert join_url(drill) not in page
