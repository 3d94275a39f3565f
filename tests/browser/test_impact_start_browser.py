"""The declare page's "Impact started at" and drill mode in a real browser: the time is typed in the browser's own
time zone, which the page names and sends; it reaches AWS as the trigger's timestamp."""

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone
from playwright.sync_api import expect

from incidents.models import Declaration
from incidents.services.plans import response_plan_update
from tests.browser.conftest import assert_accessible

STATUS = "#status .state-badge"
TOKYO = ZoneInfo("Asia/Tokyo")


def open_declare(page, live_server, query=""):
    page.goto(f"{live_server.url}/declare/{query}")
    page.wait_for_function("window.PortalDeclare !== undefined && window.htmx !== undefined")


def test_the_impact_start_is_typed_in_the_browsers_zone(open_as, support_user, live_server, plans, sandbox):
    page = open_as(support_user, timezone_id="Asia/Tokyo")
    open_declare(page, live_server)
    # The page names the browser's zone (the server alone would say the portal's, UTC) and sends it.
    expect(page.locator("#impact-start-zone")).to_have_text("Asia/Tokyo")
    expect(page.locator("input[name=time_zone]")).to_have_value("Asia/Tokyo")
    started = (timezone.now() - timedelta(hours=2)).replace(second=0, microsecond=0)
    typed = started.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
    picker = page.locator("#id_impact_started_at")
    # The picker offers only the allowed days, in the browser's own clock.
    assert picker.get_attribute("max") >= typed > picker.get_attribute("min")

    page.get_by_role("radio", name=re.compile("^Website outage")).check()
    picker.fill(typed)
    assert_accessible(page, "declare page with an impact start")
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)

    declaration = Declaration.objects.get()
    assert declaration.impact_started_at == started
    (call,) = sandbox.calls()
    assert call["params"]["triggerDetails"]["timestamp"] == started.timestamp()
    expect(page.locator("#declaration-facts")).to_contain_text(f"Impact started{started:%Y-%m-%d %H:%M} UTC")


def test_a_future_time_comes_back_with_the_error_at_the_field_and_the_zone_kept(
    open_as, support_user, live_server, plans
):
    page = open_as(support_user, timezone_id="America/Los_Angeles")
    open_declare(page, live_server)
    page.get_by_role("radio", name=re.compile("^Website outage")).check()
    later = (timezone.now() + timedelta(hours=3)).astimezone(ZoneInfo("America/Los_Angeles"))
    page.locator("#id_impact_started_at").fill(later.strftime("%Y-%m-%dT%H:%M"))
    page.click("button.submit-declare")
    expect(page.locator("#impact-start-error")).to_contain_text("The impact cannot start in the future")
    expect(page.locator("#id_impact_started_at")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#impact-start-zone")).to_have_text("America/Los_Angeles")
    assert not Declaration.objects.exists()


def test_without_javascript_the_page_names_the_portals_zone(page_without_js, live_server, plans):
    page_without_js.goto(f"{live_server.url}/declare/")
    expect(page_without_js.locator("#impact-start-zone")).to_have_text("UTC")


def test_a_drill_is_declared_from_the_drill_mode(page, live_server, plans):
    drill_plan = response_plan_update(plan=plans["internal-tooling"], actor=None, is_drill=True)
    open_declare(page, live_server)
    page.click("#declare-drill")
    expect(page.locator("#drill-banner")).to_be_visible()
    page.wait_for_function("window.PortalDeclare !== undefined")
    expect(page.locator("#plan-options input[name=response_plan]")).to_have_count(1)
    page.locator("#plan-search-input").fill("website")
    expect(page.locator("#plan-options")).to_contain_text("No response plan matches")
    page.locator("#plan-search-input").fill("")
    page.get_by_role("radio", name=re.compile(f"^{drill_plan.label}")).check()
    expect(page.locator("#declare-summary")).to_contain_text(drill_plan.label)
    page.click("button.submit-declare")
    page.wait_for_url(re.compile(r"/declarations/\d+/$"))
    expect(page.locator(STATUS)).to_have_text("Started", timeout=20_000)
    expect(page).to_have_title(re.compile(r"^Drill · Started · Declaration"))
    expect(page.locator("#drill-banner")).to_contain_text("This is a drill.")
    assert Declaration.objects.get().is_drill
