"""The admins' plans list in a real browser: reordering and showing/hiding by keyboard, in place with JavaScript
and by plain forms without it; the impact examples as people choosing an impact see them."""

import re

from playwright.sync_api import expect

from incidents import roles
from incidents.models import IMPACT_EXAMPLES, AuditEvent, ResponsePlan
from tests.browser.conftest import assert_accessible, screenshot
from tests.conftest import make_user


def rows(page) -> list[str]:
    return page.locator(".plans-table tbody tr strong").all_inner_texts()


def test_an_admin_reorders_and_hides_plans_by_keyboard_without_leaving_the_list(
    open_as, live_server, django_user_model, plans
):
    admin = make_user(django_user_model, "ada.admin", roles.ADMIN)
    page = open_as(admin)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/plans/")
    page.wait_for_function("window.htmx !== undefined")
    before = rows(page)
    third = before[2]
    page.evaluate("window.notReloaded = true")  # gone if the page were loaded again

    page.get_by_role("button", name=f"Move {third} up").focus()
    page.keyboard.press("Enter")

    expect(page.locator("#plan-status")).to_have_text(f"Moved “{third}” up.")
    assert rows(page) == [before[0], third, before[1], *before[3:]]
    # The same control keeps the focus, so pressing Enter again moves the plan on: to the top.
    expect(page.get_by_role("button", name=f"Move {third} up")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".plans-table tbody tr strong").first).to_have_text(third)
    # At the top its ↑ cannot be used: the focus is on its ↓.
    expect(page.get_by_role("button", name=f"Move {third} up")).to_be_disabled()
    expect(page.get_by_role("button", name=f"Move {third} down")).to_be_focused()

    page.get_by_role("button", name=f"Hide {before[0]}").click()
    expect(page.locator("#plan-status")).to_have_text(f"“{before[0]}” is now hidden: it cannot be chosen.")
    expect(page.get_by_role("button", name=f"Show {before[0]}")).to_be_focused()
    assert page.evaluate("window.notReloaded") is True
    assert AuditEvent.objects.filter(action="response_plan.moved").count() == 2
    assert not ResponsePlan.objects.get(name=_name_of(before[0])).is_visible
    assert_accessible(page, "plans list after moves")
    screenshot(page, "plans-list-reordered")

    # The declare page offers the plans in the new order.
    page.goto(f"{live_server.url}/declare/")
    offered = page.locator(".plan-option .plan-name").all_inner_texts()
    assert offered[0] == third
    assert before[0] not in offered


def test_without_javascript_the_controls_are_plain_forms(open_as, live_server, django_user_model, plans):
    admin = make_user(django_user_model, "ada.admin", roles.ADMIN)
    page = open_as(admin, java_script_enabled=False)
    page.goto(f"{live_server.url}/plans/")
    before = rows(page)
    page.get_by_role("button", name=f"Move {before[0]} down").click()
    expect(page.locator(".messages")).to_contain_text(f"Moved “{before[0]}” down.")
    assert re.search(r"/plans/#plan-\d+$", page.url)
    assert rows(page)[:2] == [before[1], before[0]]

    page.fill("#plan-list-search", "payment")
    page.get_by_role("button", name="Search", exact=True).click()
    assert rows(page) == ["Payments degraded"]
    page.get_by_role("button", name="Hide Payments degraded").click()
    expect(page.locator(".messages")).to_contain_text("“Payments degraded” is now hidden")
    assert rows(page) == ["Payments degraded"]  # still searched
    assert "q=payment" in page.url


def test_the_impact_choices_show_their_examples(page, live_server, plans):
    page.goto(f"{live_server.url}/declare/")
    critical = page.get_by_role("radio", name=re.compile("^1 Critical"))
    # The example is part of what a screen reader announces for the choice.
    description = page.locator("#" + critical.get_attribute("aria-describedby"))
    expect(description).to_contain_text(f"For example: {IMPACT_EXAMPLES[1]}")
    expect(page.locator(".impact-example")).to_have_count(5)


def _name_of(label: str) -> str:
    return next(plan.name for plan in ResponsePlan.objects.all() if plan.label == label)


def test_on_a_phone_each_plan_is_a_card_with_full_size_controls(open_as, live_server, django_user_model, plans):
    admin = make_user(django_user_model, "ada.admin", roles.ADMIN)
    page = open_as(admin)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/plans/")
    assert page.evaluate("document.querySelector('main').scrollWidth") <= 390
    name = page.locator(".plans-table tbody tr strong").first
    assert name.bounding_box()["height"] < 30, "the plan's name is on one line, not broken letter by letter"
    for control in ("Move Website outage up", "Hide Website outage"):
        box = page.get_by_role("button", name=control).bounding_box()
        assert box["width"] >= 44 and box["height"] >= 44, control
    screenshot(page, "plans-list-phone")
