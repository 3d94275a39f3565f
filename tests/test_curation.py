"""Admins curate response plans: sync from AWS (button, command, beat), show/hide, wording, order, groups."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command

from incidents import roles
from incidents.models import AuditEvent, ResponsePlan
from incidents.services.plans import response_plan_update, response_plans_sync
from portal.celery import app
from tests.helpers import declare_post, make_declaration


def _create_plan(ssm_incidents, name):
    return ssm_incidents.create_response_plan(
        name=name, displayName=name.title(), incidentTemplate={"title": f"{name} trouble", "impact": 3}
    )["arn"]


@pytest.mark.django_db
def test_sync_button_brings_new_plans_in_hidden_and_says_what_changed(portal_admin_client, ssm_incidents):
    _create_plan(ssm_incidents, "search-broken")
    response = portal_admin_client.post("/plans/sync/", follow=True)
    html = response.content.decode()
    assert "Synced from AWS:" in html and "new (hidden until shown)" in html
    plan = ResponsePlan.objects.get(name="search-broken")
    assert not plan.is_visible
    discovered = AuditEvent.objects.get(action="response_plan.discovered", response_plan=plan)
    assert discovered.actor_label == "ada.admin"


@pytest.mark.django_db
def test_sync_button_reports_an_aws_failure(portal_admin_client, sandbox):
    sandbox.inject(operation="ListResponsePlans", deny_next=1)
    response = portal_admin_client.post("/plans/sync/", follow=True)
    assert "Could not read response plans from AWS" in response.content.decode()


@pytest.mark.django_db
def test_sync_needs_a_post(portal_admin_client):
    assert portal_admin_client.get("/plans/sync/").status_code == 405


@pytest.mark.django_db
def test_plans_page_lists_deleted_hidden_and_last_used(portal_admin_client, plans, support_user, ssm_incidents):
    arn = _create_plan(ssm_incidents, "short-lived")
    response_plans_sync()
    ssm_incidents.delete_response_plan(arn=arn)
    response_plans_sync()
    used = make_declaration(declared_by=support_user, plan=plans["website-outage"])
    html = portal_admin_client.get("/plans/").content.decode()
    assert "Deleted in AWS — cannot be chosen" in html
    assert used.created_at.strftime("%Y-%m-%d %H:%M") in html
    assert "Never" in html


@pytest.mark.django_db
def test_hiding_a_plan_removes_it_from_the_declare_form(portal_admin_client, support_client, plans):
    plan = plans["security-event"]
    assert plan.label in support_client.get("/declare/").content.decode()
    response = portal_admin_client.post(
        f"/plans/{plan.pk}/",
        {"display_name": "", "when_to_use": "", "order": plan.order},  # is_visible unticked
    )
    assert response.status_code == 302
    html = support_client.get("/declare/").content.decode()
    assert f'name="response_plan" value="{plan.pk}"' not in html
    refused = support_client.post("/declare/", declare_post(plan))
    assert "not available to you" in refused.content.decode()
    event = AuditEvent.objects.get(action="response_plan.curated", response_plan=plan, actor__isnull=False)
    assert event.details == {"is_visible": {"from": True, "to": False}}


@pytest.mark.django_db
def test_every_curated_field_is_saved_and_audited(portal_admin_client, plans):
    plan = plans["website-outage"]
    order_before = plan.order
    managers = Group.objects.get(name=roles.MANAGER)
    response = portal_admin_client.post(
        f"/plans/{plan.pk}/",
        {
            "is_visible": "on",
            "display_name": "Website down",
            "when_to_use": "Customers cannot reach the site.",
            "order": "-5",
            "allowed_groups": [managers.pk],
        },
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.display_name, plan.when_to_use, plan.order) == ("Website down", "Customers cannot reach the site.", -5)
    assert list(plan.allowed_groups.all()) == [managers]
    event = AuditEvent.objects.get(action="response_plan.curated", response_plan=plan, actor__username="ada.admin")
    assert event.details["allowed_groups"] == {"from": [], "to": [roles.MANAGER]}
    assert event.details["display_name"] == {"from": "", "to": "Website down"}
    assert event.details["order"] == {"from": order_before, "to": -5}
    assert event.ip_address == "127.0.0.1"
    # The edit page shows the plan's own history, each change as before → after.
    page = portal_admin_client.get(f"/plans/{plan.pk}/").content.decode()
    assert "response_plan.curated" in page
    assert '<span class="nowrap">display_name:</span> “” → Website down' in page
    assert f'<span class="nowrap">order:</span> {order_before} → -5' in page
    assert f'<span class="nowrap">allowed_groups:</span> none → {roles.MANAGER}' in page
    assert "{&#x27;from&#x27;" not in page


@pytest.mark.django_db
def test_saving_without_changes_writes_no_event(portal_admin_client, plans):
    plan = plans["website-outage"]
    before = AuditEvent.objects.count()
    portal_admin_client.post(
        f"/plans/{plan.pk}/",
        {"is_visible": "on", "display_name": "", "when_to_use": plan.when_to_use, "order": plan.order},
    )
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_plan_limited_to_managers_is_not_offered_to_support_staff(
    portal_admin_client, support_client, manager_client, plans
):
    plan = plans["payments-degraded"]
    managers = Group.objects.get(name=roles.MANAGER)
    response_plan_update(plan=plan, actor=None, allowed_groups=[managers])
    assert f'name="response_plan" value="{plan.pk}"' not in support_client.get("/declare/").content.decode()
    assert f'name="response_plan" value="{plan.pk}"' in manager_client.get("/declare/").content.decode()


@pytest.mark.django_db
def test_a_plan_deleted_in_aws_cannot_be_shown(portal_admin_client, ssm_incidents):
    arn = _create_plan(ssm_incidents, "gone-soon")
    response_plans_sync()
    ssm_incidents.delete_response_plan(arn=arn)
    response_plans_sync()
    plan = ResponsePlan.objects.get(arn=arn)
    response = portal_admin_client.post(f"/plans/{plan.pk}/", {"is_visible": "on", "order": "0"})
    assert response.status_code == 200
    assert "deleted in AWS" in response.content.decode()
    plan.refresh_from_db()
    assert not plan.is_visible


@pytest.mark.django_db
def test_bad_curation_input_is_named_at_the_field(portal_admin_client, plans):
    plan = plans["website-outage"]
    response = portal_admin_client.post(f"/plans/{plan.pk}/", {"order": "lots", "display_name": "x" * 201})
    form = response.context["form"]
    assert "order" in form.errors and "display_name" in form.errors


# --- The periodic sync -----------------------------------------------------------------------------------


def test_every_task_has_an_explicit_queue_route():
    import incidents.tasks  # noqa: F401 - registers the tasks

    ours = sorted(name for name in app.tasks if name.startswith("incidents."))
    assert ours, "no tasks found"
    missing = [name for name in ours if name not in settings.CELERY_TASK_ROUTES]
    assert not missing, f"tasks without a queue route: {missing}"


def test_beat_syncs_plans_on_a_configurable_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["sync-response-plans"]
    assert entry["task"] in app.tasks
    assert entry["schedule"] == settings.PORTAL_PLAN_SYNC_INTERVAL
    assert entry["options"]["expires"] <= settings.PORTAL_PLAN_SYNC_INTERVAL


@pytest.mark.django_db
def test_the_beat_task_syncs(ssm_incidents):
    from incidents.tasks import sync_response_plans

    arn = _create_plan(ssm_incidents, "beat-found-me")
    sync_response_plans.apply().get()
    assert ResponsePlan.objects.filter(arn=arn, is_visible=False).exists()


@pytest.mark.django_db
def test_the_beat_task_survives_an_aws_outage(sandbox, caplog):
    from incidents.tasks import sync_response_plans

    sandbox.inject(operation="ListResponsePlans", deny_next=1)
    sync_response_plans.apply().get()
    assert "response plan sync failed" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_sync_from_its_queue(celery_worker, ssm_incidents):
    import time

    from incidents.tasks import sync_response_plans

    arn = _create_plan(ssm_incidents, "worker-found-me")
    sync_response_plans.delay()
    deadline = time.monotonic() + 20
    while not ResponsePlan.objects.filter(arn=arn).exists():
        assert time.monotonic() < deadline, "the worker did not sync"
        time.sleep(0.1)


@pytest.mark.django_db
def test_the_command_syncs_too(ssm_incidents, capsys):
    arn = _create_plan(ssm_incidents, "command-found-me")
    call_command("sync_response_plans")
    assert "new (hidden until shown)" in capsys.readouterr().out
    assert ResponsePlan.objects.filter(arn=arn).exists()
