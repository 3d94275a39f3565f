"""Syncing response plans from AWS into the portal."""

import pytest
from django.core.management import call_command

from incidents.models import AuditEvent, ResponsePlan
from incidents.services.plans import response_plans_sync


def _create_plan(ssm_incidents, name, title="Queue backlog", impact=3):
    return ssm_incidents.create_response_plan(
        name=name,
        displayName=name.replace("-", " ").title(),
        incidentTemplate={"title": title, "impact": impact, "summary": "Messages are piling up."},
    )["arn"]


@pytest.mark.django_db
def test_sync_adds_new_plans_hidden_updates_changes_and_flags_deletions(ssm_incidents):
    arn = _create_plan(ssm_incidents, "queue-backlog")
    result = response_plans_sync()
    assert arn in result.created
    plan = ResponsePlan.objects.get(arn=arn)
    assert (plan.is_visible, plan.template_title, plan.template_impact) == (False, "Queue backlog", 3)
    assert plan.template_summary == "Messages are piling up."

    ssm_incidents.update_response_plan(arn=arn, incidentTemplateTitle="Queue backlog growing", incidentTemplateImpact=2)
    result = response_plans_sync()
    assert result.updated == [arn]
    plan.refresh_from_db()
    assert (plan.template_title, plan.template_impact) == ("Queue backlog growing", 2)
    change = AuditEvent.objects.filter(response_plan=plan, action="response_plan.changed_in_aws").get()
    assert change.details["template_title"] == {"from": "Queue backlog", "to": "Queue backlog growing"}

    ssm_incidents.delete_response_plan(arn=arn)
    result = response_plans_sync()
    assert result.deleted == [arn]
    plan.refresh_from_db()
    assert plan.deleted_in_aws


@pytest.mark.django_db
def test_sync_command_reports_what_it_did(capsys):
    call_command("sync_response_plans")
    output = capsys.readouterr().out
    assert "new (hidden until shown)" in output
    assert ResponsePlan.objects.filter(name="website-outage").exists()
