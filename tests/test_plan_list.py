"""The admins' list of response plans: reordering with ↑/↓ and showing/hiding straight from it (plain forms, and htmx
swapping the table in place), and its search, which matches what the declare page's search matches."""

import re

import pytest
from django.core.management import call_command

from incidents.errors import PortalError
from incidents.models import AuditEvent, ResponsePlan
from incidents.services.plans import response_plan_move, response_plan_update, response_plans_sync

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "plan-table"}


def declare_order(client) -> list[int]:
    """The plans as the declare page offers them, top to bottom."""
    page = client.get("/declare/").content.decode()
    return [int(pk) for pk in re.findall(r'name="response_plan" value="(\d+)"', page)]


def list_order(client, query: str = "") -> list[int]:
    page = client.get("/plans/", {"q": query} if query else {}).content.decode()
    return [int(pk) for pk in re.findall(r'<tr id="plan-(\d+)"', page)]


def test_moving_a_plan_up_moves_it_on_the_declare_page_and_is_audited(portal_admin_client, support_client, plans):
    before = declare_order(support_client)  # also fills the declare page's cached plan list
    moving, passed = ResponsePlan.objects.get(pk=before[2]), ResponsePlan.objects.get(pk=before[1])

    response = portal_admin_client.post(f"/plans/{moving.pk}/move/", {"direction": "up"})

    assert response.status_code == 302
    assert response["Location"] == f"/plans/#plan-{moving.pk}"
    assert f"Moved “{moving.label}” up." in portal_admin_client.get(response["Location"]).content.decode()
    after = declare_order(support_client)
    assert after == [before[0], before[2], before[1], *before[3:]]
    assert list_order(portal_admin_client)[: len(after)] == after
    event = AuditEvent.objects.get(action="response_plan.moved")
    assert (event.response_plan_id, event.actor_label, event.ip_address) == (moving.pk, "ada.admin", "127.0.0.1")
    assert event.details["direction"] == "up"
    assert event.details["passed"] == passed.label


def test_after_a_move_every_plan_has_its_own_place(portal_admin_client, plans):
    # Synced plans all start at 0 here and there (as before the portal numbered new plans): ties broken by name.
    ResponsePlan.objects.update(order=0)
    last = list_order(portal_admin_client)[-1]
    portal_admin_client.post(f"/plans/{last}/move/", {"direction": "up"})
    orders = list(ResponsePlan.objects.order_by("order").values_list("order", flat=True))
    assert orders == list(range(1, len(orders) + 1))
    assert list_order(portal_admin_client)[-2] == last


def test_the_first_plan_cannot_move_up_and_says_so(portal_admin_client, plans):
    first = list_order(portal_admin_client)[0]
    page = portal_admin_client.get("/plans/").content.decode()
    up_button = re.search(rf'action="/plans/{first}/move/".*?<button[^>]*value="up"[^>]*>', page, re.S)[0]
    assert "disabled" in up_button
    orders = dict(ResponsePlan.objects.values_list("pk", "order"))

    response = portal_admin_client.post(f"/plans/{first}/move/", {"direction": "up"}, follow=True)

    assert "is already the first of the shown plans" in response.content.decode()
    assert dict(ResponsePlan.objects.values_list("pk", "order")) == orders
    assert not AuditEvent.objects.filter(action="response_plan.moved").exists()


def test_plans_move_among_plans_of_their_kind(portal_admin_client, plans):
    """A hidden plan is never offered to move above a shown one (the shown ones are the declare page's order)."""
    order = list_order(portal_admin_client)
    response_plan_update(plan=ResponsePlan.objects.get(pk=order[-1]), actor=None, is_visible=False)
    first_hidden = list_order(portal_admin_client)[-1]
    response = portal_admin_client.post(f"/plans/{first_hidden}/move/", {"direction": "up"}, follow=True)
    assert "is already the first of the hidden plans" in response.content.decode()


def test_a_move_needs_a_direction_and_a_post(portal_admin_client, plans):
    plan = plans["website-outage"]
    assert portal_admin_client.get(f"/plans/{plan.pk}/move/").status_code == 405
    response = portal_admin_client.post(f"/plans/{plan.pk}/move/", {"direction": "sideways"}, follow=True)
    assert "Move a plan up or down." in response.content.decode()
    assert portal_admin_client.post("/plans/999999/move/", {"direction": "up"}).status_code == 404


def test_with_htmx_a_move_answers_the_table_with_the_used_control_focused(portal_admin_client, plans):
    order = list_order(portal_admin_client)
    moving = ResponsePlan.objects.get(pk=order[1])

    response = portal_admin_client.post(f"/plans/{moving.pk}/move/", {"direction": "up"}, **HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page
    assert '<div id="plan-table"' in page
    assert re.findall(r'<tr id="plan-(\d+)"', page)[:2] == [str(moving.pk), str(order[0])]
    # Now first, its ↑ cannot be used: the focus goes to its ↓, the only autofocus of the table.
    [focused] = re.findall(r"<button[^>]*autofocus[^>]*>.*?</button>", page, re.S)
    assert 'value="down"' in focused and f"Move {moving.label} down" in focused
    # What happened is said in the page's status line (swapped out of band).
    assert re.search(r'<p id="plan-status"[^>]*hx-swap-oob="true">Moved “[^”]+” up\.</p>', page)


def test_hiding_and_showing_a_plan_from_the_list(portal_admin_client, support_client, plans):
    plan = plans["payments-degraded"]
    assert plan.pk in declare_order(support_client)

    response = portal_admin_client.post(f"/plans/{plan.pk}/visibility/", {"is_visible": "0"})

    assert response.status_code == 302
    assert f"“{plan.label}” is now hidden" in portal_admin_client.get(response["Location"]).content.decode()
    assert plan.pk not in declare_order(support_client)
    event = AuditEvent.objects.get(action="response_plan.curated", response_plan=plan, actor__isnull=False)
    assert event.details == {"is_visible": {"from": True, "to": False}}

    page = portal_admin_client.post(f"/plans/{plan.pk}/visibility/", {"is_visible": "1"}, **HTMX).content.decode()
    assert f"“{plan.label}” is now shown to people declaring." in page
    assert re.search(rf'<button type="submit" class="secondary compact" autofocus>Hide<span[^>]*> {plan.label}', page)
    assert plan.pk in declare_order(support_client)


def test_a_plan_deleted_in_aws_cannot_be_shown_from_the_list(portal_admin_client, ssm_incidents):
    arn = ssm_incidents.create_response_plan(name="gone-soon", incidentTemplate={"title": "Gone", "impact": 3})["arn"]
    response_plans_sync()
    ssm_incidents.delete_response_plan(arn=arn)
    response_plans_sync()
    plan = ResponsePlan.objects.get(arn=arn)
    page = portal_admin_client.get("/plans/").content.decode()
    row = re.search(rf'<tr id="plan-{plan.pk}".*?</tr>', page, re.S)[0]
    assert "/visibility/" not in row and "/move/" not in row

    response = portal_admin_client.post(f"/plans/{plan.pk}/visibility/", {"is_visible": "1"}, follow=True)

    assert "deleted in AWS; it cannot be shown" in response.content.decode()
    plan.refresh_from_db()
    assert not plan.is_visible


def test_a_new_plan_from_aws_arrives_at_the_end_of_the_list(portal_admin_client, plans, ssm_incidents):
    ssm_incidents.create_response_plan(name="brand-new", incidentTemplate={"title": "New", "impact": 3})
    call_command("sync_response_plans")
    new = ResponsePlan.objects.get(name="brand-new")
    assert new.order > max(plan.order for plan in ResponsePlan.objects.exclude(pk=new.pk))
    response_plan_update(plan=new, actor=None, is_visible=True)
    assert list_order(portal_admin_client)[-1] == new.pk


def test_moves_are_written_by_the_service_alone_in_one_transaction(plans, portal_admin_user):
    """Scripts and the page share the same rule (the service), and a refused move writes nothing."""
    first = ResponsePlan.objects.order_by("order", "name").first()
    with pytest.raises(PortalError):
        response_plan_move(plan=first, direction="up", actor=portal_admin_user)
    assert not AuditEvent.objects.filter(action="response_plan.moved").exists()


# --- Search: the plans list and the declare page find the same plans ------------------------------------------


def test_the_plans_list_search_matches_the_when_to_use_note(portal_admin_client, plans):
    plan = plans["data-pipeline-delay"]
    response_plan_update(plan=plan, actor=None, when_to_use="Nightly reports arrive late at the warehouse.")

    found = list_order(portal_admin_client, "reports warehouse")

    assert found == [plan.pk]
    page = portal_admin_client.get("/plans/", {"q": "reports warehouse"}).content.decode()
    assert "1 plan matches “reports warehouse”" in page
    assert "/move/" not in page  # a searched list hides neighbours: reorder on the whole list


def test_the_declare_page_search_matches_the_when_to_use_note_too(portal_admin_client, support_client, plans):
    plan = plans["data-pipeline-delay"]
    response_plan_update(plan=plan, actor=None, when_to_use="Nightly reports arrive late at the warehouse.")
    page = support_client.get("/declare/", {"q": "reports warehouse"}).content.decode()
    assert re.findall(r'name="response_plan" value="(\d+)"', page) == [str(plan.pk)]
    # Whatever the words, both searches find the same plans.
    for query in ("reports", "payment", "website down", "security", "zzz"):
        on_declare = [
            int(pk)
            for pk in re.findall(
                r'name="response_plan" value="(\d+)"', support_client.get("/declare/", {"q": query}).content.decode()
            )
        ]
        assert sorted(on_declare) == sorted(list_order(portal_admin_client, query)), query


def test_the_plans_list_search_with_htmx_answers_the_table_only(portal_admin_client, plans):
    page = portal_admin_client.get("/plans/", {"q": "payment"}, **HTMX).content.decode()
    assert "<html" not in page
    assert re.findall(r'<tr id="plan-(\d+)"', page) == [str(plans["payments-degraded"].pk)]


def test_showing_a_plan_from_a_searched_list_keeps_the_search(portal_admin_client, plans):
    plan = plans["payments-degraded"]
    response = portal_admin_client.post(f"/plans/{plan.pk}/visibility/", {"is_visible": "0", "q": "payment"})
    assert response["Location"] == f"/plans/?q=payment#plan-{plan.pk}"
    page = portal_admin_client.post(
        f"/plans/{plan.pk}/visibility/", {"is_visible": "1", "q": "payment"}, **HTMX
    ).content.decode()
    assert re.findall(r'<tr id="plan-(\d+)"', page) == [str(plan.pk)]


def test_the_list_numbers_the_shown_plans_by_their_place_on_the_declare_page(portal_admin_client, plans):
    response_plan_update(plan=plans["security-event"], actor=None, is_visible=False)
    page = portal_admin_client.get("/plans/").content.decode()
    shown = len(plans) - 1
    assert re.findall(r'<span class="plan-place">(\d+)</span>', page) == [str(n) for n in range(1, shown + 1)]
