"""Where drills meet the actions on a started incident and joining: a drill stays a drill in AWS whatever is changed
from the portal."""

import pytest
from django.urls import reverse

from incidents import validators
from incidents.errors import PortalError
from incidents.models import Declaration
from incidents.services.actions import incident_record_update
from incidents.services.declarations import declaration_create
from incidents.services.plans import response_plan_update
from tests.helpers import pretend_started, wait_for_action


@pytest.fixture
def drill_plan(plans):
    return response_plan_update(plan=plans["internal-tooling"], actor=None, is_drill=True)


def drill_of(user, plan, title="Failover rehearsal") -> Declaration:
    declaration, _ = declaration_create(declared_by=user, response_plan=plan, title=title, is_drill=True)
    return declaration


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("celery_worker")
def test_a_drills_new_title_reaches_aws_with_its_drill_prefix(support_client, support_user, drill_plan, ssm_incidents):
    declaration = wait_for_action(drill_of(support_user, drill_plan), "started", "failed")
    assert declaration.state == "started", declaration.failure_reason

    response = support_client.post(
        reverse("incidents:declaration-update", kwargs={"declaration_id": declaration.pk}),
        {"idempotency_key": "c" * 32, "title": "Failover rehearsal, region B"},
    )

    assert response.status_code == 302
    action = wait_for_action(declaration.actions.get(), "sent", "failed")
    assert action.state == "sent", action.failure_reason
    record = ssm_incidents.get_incident_record(arn=declaration.incident_record_arn)["incidentRecord"]
    assert record["title"] == "[DRILL] Failover rehearsal, region B"


@pytest.mark.django_db
def test_a_drills_new_title_leaves_room_for_the_prefix(support_user, drill_plan):
    declaration = pretend_started(drill_of(support_user, drill_plan))
    too_long = "x" * (validators.DRILL_TITLE_MAX_LENGTH + 1)

    with pytest.raises(PortalError) as refused:
        incident_record_update(declaration=declaration, requested_by=support_user, title=too_long)

    assert refused.value.field == "title"
    assert "[DRILL]" in refused.value.message
    assert not declaration.actions.exists()
    action, _ = incident_record_update(
        declaration=declaration, requested_by=support_user, title="x" * validators.DRILL_TITLE_MAX_LENGTH
    )
    assert action.payload["title"] == "[DRILL] " + "x" * validators.DRILL_TITLE_MAX_LENGTH


@pytest.mark.django_db
def test_the_change_form_of_a_drill_says_the_prefix_stays(support_client, support_user, drill_plan, plans):
    drill = pretend_started(drill_of(support_user, drill_plan))
    real, _ = declaration_create(declared_by=support_user, response_plan=plans["website-outage"], title="Real")
    real = pretend_started(real, arn=drill.incident_record_arn + "-real")

    def hint(declaration):
        page = support_client.get(declaration.get_absolute_url()).content.decode()
        start = page.index('id="update-title-hint"')
        return page[start : page.index("</p>", start)]

    assert "[DRILL]" in hint(drill)
    assert "[DRILL]" not in hint(real)
