"""Drills: admins mark drill plans; "This is a drill" on the declare page offers only those and marks the
declaration; a drill is labelled as one and sent to AWS with "[DRILL]" in front of its title."""

import json
import re

import pytest
from django.urls import reverse

from incidents import validators
from incidents.aws.requests import drill_title
from incidents.models import AuditEvent, Declaration
from incidents.services.plans import response_plan_update
from tests.conftest import wait_for_state
from tests.helpers import declare_post

DECLARE = reverse("incidents:declare")


@pytest.fixture
def drill_plan(plans):
    return response_plan_update(plan=plans["internal-tooling"], actor=None, is_drill=True)


def listed_plans(response) -> set[str]:
    return {plan.name for plan in response.context["plans"]}


@pytest.mark.django_db
def test_the_declare_page_offers_drill_plans_only_for_a_drill(support_client, plans, drill_plan):
    real = support_client.get(DECLARE)
    assert drill_plan.name not in listed_plans(real)
    assert "website-outage" in listed_plans(real)
    assert 'id="drill-banner"' not in real.content.decode()

    drill = support_client.get(DECLARE, {"drill": "1"})
    assert listed_plans(drill) == {drill_plan.name}
    page = drill.content.decode()
    assert 'id="drill-banner"' in page
    assert '<input type="hidden" name="drill" value="True"' in page
    # A search stays among drill plans, and the real incident's list is cached apart from the drill's.
    assert listed_plans(support_client.get(DECLARE, {"drill": "1", "q": "tool"})) == {drill_plan.name}
    assert drill_plan.name not in listed_plans(support_client.get(DECLARE, {"q": "tool"}))


@pytest.mark.django_db
def test_a_link_to_a_drill_plan_opens_the_page_for_a_drill(support_client, drill_plan):
    response = support_client.get(DECLARE, {"plan": drill_plan.name})
    assert response.context["drill"] is True
    assert response.context["plan"] == drill_plan


@pytest.mark.django_db
def test_declaring_a_drill_marks_the_declaration(support_client, drill_plan):
    data = {**declare_post(drill_plan), "drill": "True"}
    response = support_client.post(DECLARE, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    declaration = Declaration.objects.get()
    assert declaration.is_drill
    assert declaration.audit_events.get(action="declaration.queued").details["drill"] is True


@pytest.mark.django_db
def test_a_drill_plan_is_refused_for_a_real_incident_and_the_other_way_round(support_client, plans, drill_plan):
    real_with_drill_plan = support_client.post(DECLARE, declare_post(drill_plan))
    assert real_with_drill_plan.context["form"].errors["response_plan"] == [validators.REAL_PLAN_ONLY]
    drill_with_real_plan = support_client.post(DECLARE, {**declare_post(plans["website-outage"]), "drill": "True"})
    assert drill_with_real_plan.context["form"].errors["response_plan"] == [validators.DRILL_PLAN_ONLY]
    assert not Declaration.objects.exists()


@pytest.mark.django_db
def test_a_drills_title_leaves_room_for_the_prefix(support_client, drill_plan):
    title = "x" * (validators.DRILL_TITLE_MAX_LENGTH + 1)
    response = support_client.post(DECLARE, {**declare_post(drill_plan, title=title), "drill": "True"})
    assert response.context["form"].errors["title"] == [
        f"A drill's title can be at most {validators.DRILL_TITLE_MAX_LENGTH} characters (it has "
        f"{len(title)}): AWS receives it with “[DRILL] ” in front."
    ]


@pytest.mark.django_db
def test_the_declaration_page_labels_a_drill(support_client, drill_plan, plans):
    support_client.post(DECLARE, {**declare_post(drill_plan), "drill": "True"})
    drill = Declaration.objects.get()
    page = support_client.get(drill.get_absolute_url()).content.decode()
    assert 'id="drill-banner"' in page and "This is a drill." in page
    assert "<title>Drill · Queued · Declaration" in page
    assert 'data-tab-title="Drill · Queued · Declaration' in page
    drill.state, drill.incident_record_arn = Declaration.State.STARTED, "arn:aws:ssm-incidents::1:incident-record/x/y"
    drill.save()
    started = support_client.get(drill.get_absolute_url()).content.decode()
    assert "The drill is open in Incident Manager" in started

    support_client.post(DECLARE, declare_post(plans["website-outage"]))
    real = Declaration.objects.exclude(pk=drill.pk).get()
    page = support_client.get(real.get_absolute_url()).content.decode()
    assert "drill-banner" not in page and "Drill ·" not in page


@pytest.mark.django_db
def test_an_admin_marks_a_drill_plan_and_it_is_audited(portal_admin_client, plans):
    plan = plans["security-event"]
    form = {"is_visible": "on", "is_drill": "on", "display_name": "", "when_to_use": "", "order": "0"}
    response = portal_admin_client.post(reverse("incidents:plan-edit", args=[plan.pk]), form)
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.is_drill
    event = AuditEvent.objects.filter(action="response_plan.curated", response_plan=plan).latest("id")
    assert event.details["is_drill"] == {"from": False, "to": True}
    listing = portal_admin_client.get(reverse("incidents:plan-list")).content.decode()
    assert '<span class="drill-tag">Drill plan</span>' in listing
    edit = portal_admin_client.get(reverse("incidents:plan-edit", args=[plan.pk])).content.decode()
    assert re.search(r"<input type=\"checkbox\" name=\"is_drill\"[^>]* checked", edit)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_drill_reaches_aws_titled_as_a_drill(support_client, drill_plan, sandbox, ssm_incidents):
    support_client.post(DECLARE, {**declare_post(drill_plan), "drill": "True"})
    declaration = wait_for_state(Declaration.objects.get(), Declaration.State.STARTED)
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert record["title"] == "[DRILL] " + drill_plan.template_title
    (call,) = sandbox.calls()
    assert json.loads(call["params"]["triggerDetails"]["rawData"])["drill"] is True


def test_a_drills_title_in_aws_keeps_its_prefix_and_fits():
    assert drill_title("DB failover") == "[DRILL] DB failover"
    assert drill_title("[drill] Already marked") == "[drill] Already marked"
    long_plan_title = "p" * validators.TITLE_MAX_LENGTH
    sent = drill_title(long_plan_title)
    assert len(sent) == validators.TITLE_MAX_LENGTH
    assert sent.startswith("[DRILL] ppp") and sent.endswith("…")
